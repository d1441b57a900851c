"""Parsers from the published archive formats to numpy arrays. They read archives in place (no
extraction to disk) and are the same for real archives and for the synthetic fixtures.

- IDX (MNIST): big-endian header (two zero bytes, a type code, the number of dimensions, one
  uint32 per dimension) then the array; gzip-compressed.
- CIFAR-10/100 "python version": a .tar.gz of pickled dicts with bytes keys; ``data`` rows are
  3072 bytes (1024 red, 1024 green, 1024 blue, each 32x32 row-major). Unpickling is restricted to
  what those pickles need (numpy arrays), so an archive cannot run code.
- Omniglot: a zip ``<root>/<alphabet>/characterNN/<id>_<drawer>.png`` of 105x105 PNGs, resized to
  28x28 as MAML's ``resize_images.py`` does (``Image.resize((28, 28), resample=LANCZOS)`` on the
  image as opened; Pillow resamples the 1-bit PNGs with nearest neighbour whatever filter is asked).
"""

import gzip
import io
import pickle
import re
import tarfile
import zipfile
import zlib

import numpy as np
from PIL import Image

from truncback.data.errors import FormatError

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
CIFAR_MEMBERS = {
    ("cifar10", "train"): [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)],
    ("cifar10", "test"): ["cifar-10-batches-py/test_batch"],
    ("cifar10", "meta"): ["cifar-10-batches-py/batches.meta"],
    ("cifar100", "train"): ["cifar-100-python/train"],
    ("cifar100", "test"): ["cifar-100-python/test"],
    ("cifar100", "meta"): ["cifar-100-python/meta"],
}
OMNIGLOT_SIZE = (28, 28)
OMNIGLOT_PNG = re.compile(r"[^/]+/(?P<alphabet>[^/]+)/character(?P<character>\d+)/\d+_(?P<drawer>\d+)\.png")


def read_idx(path) -> np.ndarray:
    """The array stored in a gzip-compressed IDX file."""
    try:
        with gzip.open(path, "rb") as stream:
            content = stream.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise FormatError(f"{path} is not a readable gzip file ({error})") from error
    ndim = content[3] if len(content) >= 4 else 0
    if len(content) < 4 + 4 * ndim or content[:2] != b"\0\0" or content[2] not in IDX_TYPES:
        raise FormatError(f"{path} is not an IDX file (header {content[:4].hex()})")
    shape = tuple(int(n) for n in np.frombuffer(content, ">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[content[2]])
    offset = 4 + 4 * ndim
    if len(content) - offset != dtype.itemsize * int(np.prod(shape)):
        raise FormatError(f"{path}: IDX header says shape {shape}, payload has {len(content) - offset} bytes")
    return np.frombuffer(content, dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def parse_mnist(images_path, labels_path) -> dict[str, np.ndarray]:
    """MNIST from its image and label IDX files: ``images`` uint8 [N,28,28], ``labels`` int64 [N]."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8 or labels.ndim != 1 or len(labels) != len(images):
        raise FormatError(
            f"{images_path} and {labels_path} are not matching image/label files "
            f"(shapes {images.shape} and {labels.shape})"
        )
    return {"images": images, "labels": labels.astype(np.int64)}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR pickle")
        return super().find_class(module, name)


def _unpickle(path, name: str, stream) -> dict:
    try:
        return _ArrayUnpickler(stream, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise FormatError(f"{path}: member {name} is not a CIFAR pickle ({error})") from error


def _read_tar_members(path, names) -> dict[str, dict]:
    """Unpickle the named members of a .tar.gz in one sequential pass."""
    wanted, found = set(names), {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                if member.name in wanted and member.isfile():
                    found[member.name] = _unpickle(path, member.name, archive.extractfile(member))
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise FormatError(f"{path} is not a readable .tar.gz ({error})") from error
    missing = sorted(wanted - set(found))
    if missing:
        raise FormatError(f"{path} lacks member(s) {', '.join(missing)}")
    return found


def _names(values) -> np.ndarray:
    return np.array([value.decode() for value in values], dtype=str)


def parse_cifar(path, dataset: str, part: str) -> dict[str, np.ndarray]:
    """CIFAR-10 or CIFAR-100 ("cifar10"/"cifar100") train or test part of a python-version tarball:
    ``images`` uint8 [N,32,32,3] (HWC), ``labels`` int64 [N] (fine labels for CIFAR-100),
    ``label_names`` str [classes]; CIFAR-100 adds ``coarse_labels`` and ``coarse_label_names``."""
    batch_names, (meta_name,) = CIFAR_MEMBERS[dataset, part], CIFAR_MEMBERS[dataset, "meta"]
    members = _read_tar_members(path, [*batch_names, meta_name])
    batches, meta = [members[name] for name in batch_names], members[meta_name]
    label_key = b"labels" if dataset == "cifar10" else b"fine_labels"
    try:
        data = np.concatenate([np.asarray(batch[b"data"], np.uint8) for batch in batches])
        result = {
            "images": data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(),
            "labels": np.concatenate([np.asarray(batch[label_key], np.int64) for batch in batches]),
        }
        if dataset == "cifar10":
            result["label_names"] = _names(meta[b"label_names"])
        else:
            result["coarse_labels"] = np.concatenate([np.asarray(b[b"coarse_labels"], np.int64) for b in batches])
            result["label_names"] = _names(meta[b"fine_label_names"])
            result["coarse_label_names"] = _names(meta[b"coarse_label_names"])
    except (KeyError, ValueError) as error:
        raise FormatError(f"{path}: unexpected CIFAR batch content ({error!r})") from error
    if len(result["images"]) != len(result["labels"]):
        raise FormatError(f"{path}: {len(result['images'])} images but {len(result['labels'])} labels")
    return result


def _omniglot_image(path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(archive.read(info))) as image:
            resized = image.resize(OMNIGLOT_SIZE, resample=Image.Resampling.LANCZOS)
    except (OSError, zipfile.BadZipFile) as error:
        raise FormatError(f"{path}: member {info.filename} is not a readable PNG ({error})") from error
    return np.asarray(resized.convert("L"), dtype=np.uint8)


def parse_omniglot(path) -> dict[str, np.ndarray]:
    """An Omniglot images zip, sorted by (alphabet name, character, drawer): ``images`` uint8
    [N,28,28] (white 255 background, black 0 strokes), ``labels`` int64 [N] (character class,
    0..C-1 over the whole zip), ``alphabet`` int64 [N] (index into ``alphabet_names``),
    ``character`` int64 [N] (0-based within its alphabet, from ``characterNN``), ``drawing`` int64
    [N] (0-based drawer, from the ``_NN`` suffix), ``alphabet_names`` str [A]."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise FormatError(f"{path} is not a readable zip file ({error})") from error
    with archive:
        entries = []
        for info in archive.infolist():
            if info.is_dir() or not info.filename.endswith(".png"):
                continue
            match = OMNIGLOT_PNG.fullmatch(info.filename)
            if match is None:
                raise FormatError(f"{path}: member {info.filename} is not <root>/<alphabet>/characterNN/<id>_<NN>.png")
            entries.append((match["alphabet"], int(match["character"]) - 1, int(match["drawer"]) - 1, info))
        if not entries:
            raise FormatError(f"{path} contains no PNG images")
        entries.sort(key=lambda entry: entry[:3])
        images = np.stack([_omniglot_image(path, archive, entry[3]) for entry in entries])
    alphabet_names = sorted({entry[0] for entry in entries})
    alphabet = np.array([alphabet_names.index(entry[0]) for entry in entries], np.int64)
    character = np.array([entry[1] for entry in entries], np.int64)
    _, labels = np.unique(np.stack([alphabet, character], axis=1), axis=0, return_inverse=True)
    return {
        "images": images,
        "labels": labels.reshape(-1).astype(np.int64),
        "alphabet": alphabet,
        "character": character,
        "drawing": np.array([entry[2] for entry in entries], np.int64),
        "alphabet_names": np.array(alphabet_names, dtype=str),
    }
