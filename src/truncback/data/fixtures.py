"""Synthetic, format-faithful stand-ins for the archives, made from a seed: gzip IDX files, CIFAR
python pickles in a .tar.gz, Omniglot zips of 105x105 1-bit PNGs, a ResNet-18 state dict. They carry
the real file names (but for a name stating a digest) and are read by the same parsers as the real
archives; only their size and content differ.

Content is learnable, so experiments on fixtures behave like experiments: each class has a random
low-resolution prototype, each example is its upsampled prototype plus noise; each Omniglot
character is a few random strokes, each drawing a jittered copy. Every file is byte-identical for a
given (seed, size): fixed gzip/tar/zip timestamps, and one random stream per file derived from
(seed, dataset part), so writing a subset of the files gives the same bytes as writing them all.
"""

import gzip
import io
import pickle
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from truncback.runtime.atomic import atomic_path
from truncback.data.errors import UnknownNameError
from truncback.data.sources import Archive, archive, archive_named

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
OMNIGLOT_SIDE = 105
DRAWERS = 20


@dataclass(frozen=True)
class FixtureSize:
    """Examples per part (MNIST, and CIFAR unless ``cifar`` gives its own (train, test)) and, per
    Omniglot zip, ``alphabets`` x ``characters`` unless ``omniglot`` lists (zip key, alphabets,
    characters in all) for it; the characters are then spread over the alphabets as evenly as
    possible, the first alphabets taking one more (the real alphabets have 14 to 55)."""

    train: int
    test: int
    alphabets: int = 4
    characters: int = 5
    cifar: tuple[int, int] | None = None
    omniglot: tuple[tuple[str, int, int], ...] = ()

    def cifar_parts(self) -> tuple[int, int]:
        return self.cifar or (self.train, self.test)

    def characters_per_alphabet(self, key: str) -> list[int]:
        for name, alphabets, characters in self.omniglot:
            if name == key:
                return [characters // alphabets + (a < characters % alphabets) for a in range(alphabets)]
        return [self.characters] * self.alphabets


SIZES = {
    "smoke": FixtureSize(train=500, test=200),
    "quick": FixtureSize(train=10_000, test=2_000),
    # the rehearsal of the paper scale: the published archives' sizes (MNIST 60,000 + 10,000; CIFAR
    # 50,000 + 10,000; Omniglot 964 characters in 30 alphabets and 659 in 20, 20 drawings each)
    "published": FixtureSize(
        train=60_000,
        test=10_000,
        cifar=(50_000, 10_000),
        omniglot=(("omniglot_background", 30, 964), ("omniglot_evaluation", 20, 659)),
    ),
}


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


def _balanced_labels(rng, n: int, classes: int) -> np.ndarray:
    return rng.permutation(np.arange(n) % classes)


def _prototypes(seed: int, dataset: str, classes: int, side: int, channels: int, cell: int) -> np.ndarray:
    """int16 [classes, side, side, channels]: one random ``cell``-times upsampled pattern per class,
    shared by the train and test parts of ``dataset``."""
    coarse = _rng(seed, f"{dataset}_prototypes").integers(0, 256, (classes, side // cell, side // cell, channels))
    return coarse.repeat(cell, axis=1).repeat(cell, axis=2).astype(np.int16)


def _pattern_images(rng, prototypes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """uint8 [N, side, side, channels]: each label's prototype plus uniform noise."""
    noise = rng.integers(-48, 49, (len(labels), *prototypes.shape[1:]), dtype=np.int16)
    return np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8)


def _write_gzip(path: Path, name: str, content: bytes) -> None:
    with atomic_path(path) as temporary, open(temporary, "wb") as raw:
        with gzip.GzipFile(filename=name, mode="wb", fileobj=raw, mtime=0) as stream:
            stream.write(content)


def _write_mnist(path: Path, item: Archive, seed: int, size: FixtureSize, part: str, field: str) -> None:
    rng = _rng(seed, f"mnist_{part}")
    labels = _balanced_labels(rng, getattr(size, part), 10)
    images = _pattern_images(rng, _prototypes(seed, "mnist", 10, 28, 1, cell=4), labels)[..., 0]
    array = images if field == "images" else labels.astype(np.uint8)
    header = struct.pack(f">BBBB{array.ndim}I", 0, 0, 0x08, array.ndim, *array.shape)
    _write_gzip(path, item.filename, header + array.tobytes())


def _cifar_prototypes(seed: int, dataset: str, classes: int) -> np.ndarray:
    return _prototypes(seed, dataset, classes, 32, 3, cell=4)


def _write_tar_of_pickles(path: Path, members: dict[str, dict]) -> None:
    with atomic_path(path) as temporary, open(temporary, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as compressed:
            with tarfile.open(fileobj=compressed, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                root = tarfile.TarInfo(next(iter(members)).split("/")[0])
                root.type, root.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(root)
                for name, content in members.items():
                    data = pickle.dumps(content, protocol=3)
                    info = tarfile.TarInfo(name)
                    info.size, info.mode = len(data), 0o644
                    tar.addfile(info, io.BytesIO(data))


def _cifar_batch(rng, prototypes, n: int, title: str, labels_of) -> dict:
    """One pickled batch: rows of 3072 bytes (1024 red, 1024 green, 1024 blue)."""
    labels = _balanced_labels(rng, n, len(prototypes))
    rows = _pattern_images(rng, prototypes, labels).transpose(0, 3, 1, 2).reshape(n, 3072)
    return {
        b"batch_label": title.encode(),
        **labels_of(labels),
        b"data": rows,
        b"filenames": [f"fixture_{i:06d}.png".encode() for i in range(n)],
    }


def _write_cifar10(path: Path, item: Archive, seed: int, size: FixtureSize) -> None:
    def labels_of(labels):
        return {b"labels": labels.tolist()}

    prototypes = _cifar_prototypes(seed, "cifar10", 10)
    train_rng, test_rng = _rng(seed, "cifar10_train"), _rng(seed, "cifar10_test")
    train, test = size.cifar_parts()
    batches = {
        f"cifar-10-batches-py/data_batch_{i + 1}": _cifar_batch(
            train_rng, prototypes, len(chunk), f"training batch {i + 1} of 5", labels_of
        )
        for i, chunk in enumerate(np.array_split(np.arange(train), 5))
    }
    _write_tar_of_pickles(
        path,
        {
            "cifar-10-batches-py/batches.meta": {
                b"num_cases_per_batch": train // 5,
                b"num_vis": 3072,
                b"label_names": [f"fixture_class_{c}".encode() for c in range(10)],
            },
            **batches,
            "cifar-10-batches-py/test_batch": _cifar_batch(
                test_rng, prototypes, test, "testing batch 1 of 1", labels_of
            ),
        },
    )


def _write_cifar100(path: Path, item: Archive, seed: int, size: FixtureSize) -> None:
    def labels_of(labels):
        return {b"fine_labels": labels.tolist(), b"coarse_labels": (labels // 5).tolist()}

    prototypes = _cifar_prototypes(seed, "cifar100", 100)
    train, test = size.cifar_parts()
    _write_tar_of_pickles(
        path,
        {
            "cifar-100-python/meta": {
                b"fine_label_names": [f"fixture_class_{c:02d}".encode() for c in range(100)],
                b"coarse_label_names": [f"fixture_superclass_{c:02d}".encode() for c in range(20)],
            },
            "cifar-100-python/train": _cifar_batch(
                _rng(seed, "cifar100_train"), prototypes, train, "training batch 1 of 1", labels_of
            ),
            "cifar-100-python/test": _cifar_batch(
                _rng(seed, "cifar100_test"), prototypes, test, "testing batch 1 of 1", labels_of
            ),
        },
    )


def _omniglot_png(rng, strokes) -> bytes:
    image = Image.new("1", (OMNIGLOT_SIDE, OMNIGLOT_SIDE), 1)
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        jittered = np.clip(stroke + rng.normal(0, 2.5, stroke.shape), 0, OMNIGLOT_SIDE - 1)
        draw.line([tuple(point) for point in jittered], fill=0, width=3)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _zip_entry(archive_file: zipfile.ZipFile, name: str, data: bytes | None) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    if data is None:
        info.external_attr = (0o40755 << 16) | 0x10
        archive_file.writestr(info, b"")
    else:
        info.external_attr, info.compress_type = 0o644 << 16, zipfile.ZIP_DEFLATED
        archive_file.writestr(info, data)


def _write_omniglot(path: Path, item: Archive, seed: int, size: FixtureSize) -> None:
    rng = _rng(seed, item.key)
    root = item.filename.removesuffix(".zip")
    with atomic_path(path) as temporary, zipfile.ZipFile(temporary, "w") as archive_file:
        _zip_entry(archive_file, f"{root}/", None)
        character_id = 0
        for a, characters in enumerate(size.characters_per_alphabet(item.key)):
            alphabet = f"{root}/Fixture_Alphabet_{a + 1:02d}"
            _zip_entry(archive_file, f"{alphabet}/", None)
            for c in range(characters):
                character_id += 1
                folder = f"{alphabet}/character{c + 1:02d}"
                _zip_entry(archive_file, f"{folder}/", None)
                strokes = [rng.uniform(15, 90, (rng.integers(2, 5), 2)) for _ in range(rng.integers(1, 4))]
                for drawer in range(1, DRAWERS + 1):
                    _zip_entry(
                        archive_file, f"{folder}/{character_id:04d}_{drawer:02d}.png", _omniglot_png(rng, strokes)
                    )


def _write_resnet18_weights(path: Path, item: Archive, seed: int, size: FixtureSize) -> None:
    """A state dict of torchvision's ResNet-18 shapes and names (PyTorch's default initialisation
    from ``seed``), loadable like the real weights file; same bytes for the same seed."""
    import torch

    from truncback.data.resnet18 import ResNet18

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state = ResNet18().state_dict()
    buffer = io.BytesIO()  # not a file: torch.save names the archive's root after the file
    torch.save(state, buffer)
    with atomic_path(path) as temporary:
        temporary.write_bytes(buffer.getvalue())


Writer = Callable[[Path, Archive, int, FixtureSize], None]
"""A fixture writer: (path, archive, seed, size)."""

WRITERS: dict[str, Writer] = {
    "mnist_train_images": partial(_write_mnist, part="train", field="images"),
    "mnist_train_labels": partial(_write_mnist, part="train", field="labels"),
    "mnist_test_images": partial(_write_mnist, part="test", field="images"),
    "mnist_test_labels": partial(_write_mnist, part="test", field="labels"),
    "cifar10": _write_cifar10,
    "cifar100": _write_cifar100,
    "omniglot_background": _write_omniglot,
    "omniglot_evaluation": _write_omniglot,
    "omniglot_background_small1": _write_omniglot,
    "omniglot_background_small2": _write_omniglot,
    "resnet18_weights": _write_resnet18_weights,
}


def write_fixture(key: str, path, seed: int, size: FixtureSize) -> Path:
    """Write the synthetic stand-in of archive ``key`` (e.g. ``cifar10``) to ``path``, atomically."""
    item = archive(key)
    WRITERS[key](Path(path), item, seed, size)
    return Path(path)


def write_fixtures(scale: str, paths, seed: int) -> list[Path]:
    """Write, at ``scale``'s fixture size, the stand-in of each archive named by a path's file name."""
    if scale not in SIZES:
        raise UnknownNameError(f"no fixture size for scale {scale!r}; known: {', '.join(SIZES)}")
    return [write_fixture(archive_named(Path(path).name).key, path, seed, SIZES[scale]) for path in paths]
