"""Prepared arrays: a recipe's archives parsed once and stored as an uncompressed .npz (written
atomically and byte-reproducibly), and loaded back as a dict of numpy arrays."""

import zipfile
from pathlib import Path

import numpy as np

from truncback.data import parsers
from truncback.runtime.atomic import atomic_path
from truncback.data.checksums import verify
from truncback.data.errors import DataError, MissingFileError
from truncback.data.sources import archive, recipe

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _parse(dataset: str, part: str, paths: list[Path]) -> dict[str, np.ndarray]:
    if dataset == "mnist":
        return parsers.parse_mnist(*paths)
    if dataset in ("cifar10", "cifar100"):
        return parsers.parse_cifar(paths[0], dataset, part)
    return parsers.parse_omniglot(paths[0])


def save_arrays(path, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` as an .npz readable by ``numpy.load``, with fixed timestamps (same arrays,
    same bytes) and atomically."""
    with atomic_path(path) as temporary, zipfile.ZipFile(temporary, "w", zipfile.ZIP_STORED) as archive_file:
        for key, value in arrays.items():
            with archive_file.open(zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_EPOCH), "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
    return Path(path)


def prepare(scale: str, name: str, archive_paths, output) -> Path:
    """Parse the archives of dataset ``name`` at ``scale`` (given in the recipe's order and with
    its file names) into ``output``. Real archives are verified first, so a file placed by hand
    under ``data/raw`` is checked too; fixtures are not (nothing is recorded for them)."""
    entry = recipe(scale, name)
    expected = [archive(key) for key in entry.archives]
    paths = [Path(path) for path in archive_paths]
    if [path.name for path in paths] != [item.filename for item in expected]:
        raise DataError(
            f"{name} at scale {scale} is made from {', '.join(i.filename for i in expected)} "
            f"(in that order), not from {', '.join(str(path) for path in paths) or 'nothing'}"
        )
    for path in paths:
        if not path.is_file():
            raise MissingFileError(f"{path} does not exist (needed for {name} at scale {scale})")
    if entry.origin == "real":
        for path, item in zip(paths, expected):
            verify(path, item)
    return save_arrays(output, _parse(entry.dataset, entry.part, paths))


def load_prepared(path) -> dict[str, np.ndarray]:
    """All arrays of a prepared .npz, loaded into memory (no pickles allowed)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(
            f"prepared data file {path} does not exist; build it with `snakemake {path}` (rules in rules/data.smk)"
        )
    with np.load(path, allow_pickle=False) as content:
        return {key: content[key] for key in content.files}
