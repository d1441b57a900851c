"""Fixtures and parsers: the seeded generator writes real formats that the parsers read back, the
same bytes for the same seed; prepared .npz files are reproducible; checksums accept a re-compressed
gzip by its payload; malformed files fail with the file named."""

import gzip
import io
import pickle
import tarfile
import zipfile

import numpy as np
import pytest

from truncback.data import ChecksumError, load_prepared
from truncback.data.checksums import file_digests, payload_digests, verify
from truncback.data.errors import FormatError
from truncback.data.fixtures import SIZES, FixtureSize, write_fixture, write_fixtures
from truncback.data.layout import fixture_path
from truncback.data.parsers import parse_cifar, parse_omniglot, read_idx
from truncback.data.prepare import prepare, save_arrays
from truncback.data.sources import Digests, archive, archives_of, recipes

SIZE = FixtureSize(train=30, test=10, alphabets=2, characters=3)


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory):
    """Every smoke-scale fixture, prepared: {name: arrays}."""
    root = tmp_path_factory.mktemp("smoke")
    write_fixtures("smoke", [fixture_path("smoke", item, root) for item in archives_of("smoke", "fixture")], seed=0)
    prepared = {}
    for entry in recipes("smoke"):
        sources = [fixture_path("smoke", archive(key), root) for key in entry.archives]
        prepared[entry.name] = load_prepared(prepare("smoke", entry.name, sources, root / f"{entry.name}.npz"))
    return prepared


def test_smoke_fixtures_parse_to_the_documented_arrays(smoke_data):
    size = SIZES["smoke"]
    expected_shapes = {
        "mnist_train": (size.train, 28, 28),
        "mnist_test": (size.test, 28, 28),
        "cifar10_train": (size.train, 32, 32, 3),
        "cifar10_test": (size.test, 32, 32, 3),
        "cifar100_train": (size.train, 32, 32, 3),
        "cifar100_test": (size.test, 32, 32, 3),
        "omniglot_background": (size.alphabets * size.characters * 20, 28, 28),
        "omniglot_evaluation": (size.alphabets * size.characters * 20, 28, 28),
    }
    assert set(smoke_data) == set(expected_shapes)
    for name, arrays in smoke_data.items():
        assert arrays["images"].shape == expected_shapes[name] and arrays["images"].dtype == np.uint8, name
        assert arrays["labels"].shape == (len(arrays["images"]),) and arrays["labels"].dtype == np.int64, name
    assert np.bincount(smoke_data["mnist_train"]["labels"]).tolist() == [size.train // 10] * 10
    cifar100 = smoke_data["cifar100_test"]
    assert cifar100["labels"].max() < 100 and len(cifar100["label_names"]) == 100
    np.testing.assert_array_equal(cifar100["coarse_labels"], cifar100["labels"] // 5)
    omniglot = smoke_data["omniglot_background"]
    assert set(omniglot) == {"images", "labels", "alphabet", "character", "drawing", "alphabet_names"}
    assert np.bincount(omniglot["labels"]).tolist() == [20] * (size.alphabets * size.characters)
    assert np.bincount(omniglot["drawing"]).tolist() == [size.alphabets * size.characters] * 20
    assert set(np.unique(omniglot["images"])) <= {0, 255}


def test_fixture_classes_are_distinguishable(smoke_data):
    """Nearest class mean on the train part beats chance by far on the test part."""
    train, test = smoke_data["mnist_train"], smoke_data["mnist_test"]

    def flat(images):
        return images.reshape(len(images), -1).astype(float)

    means = np.stack([flat(train["images"])[train["labels"] == c].mean(0) for c in range(10)])
    predicted = np.argmin(((flat(test["images"])[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert np.mean(predicted == test["labels"]) > 0.9


@pytest.mark.parametrize(
    "key", ["mnist_train_images", "mnist_train_labels", "cifar10", "cifar100", "omniglot_evaluation"]
)
def test_fixtures_are_reproducible_from_the_seed(key, tmp_path):
    first = write_fixture(key, tmp_path / "a" / archive(key).filename, seed=5, size=SIZE).read_bytes()
    again = write_fixture(key, tmp_path / "b" / archive(key).filename, seed=5, size=SIZE).read_bytes()
    other = write_fixture(key, tmp_path / "c" / archive(key).filename, seed=6, size=SIZE).read_bytes()
    assert first == again and first != other


def test_fixtures_have_the_real_layouts(tmp_path):
    cifar10 = write_fixture("cifar10", tmp_path / "cifar-10-python.tar.gz", seed=0, size=SIZE)
    with tarfile.open(cifar10, "r:gz") as tar:
        assert tar.getnames() == [
            "cifar-10-batches-py",
            "cifar-10-batches-py/batches.meta",
            *[f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)],
            "cifar-10-batches-py/test_batch",
        ]
    omniglot = write_fixture("omniglot_background_small1", tmp_path / "images_background_small1.zip", seed=0, size=SIZE)
    with zipfile.ZipFile(omniglot) as archive_file:
        names = archive_file.namelist()
        assert names[:4] == [
            "images_background_small1/",
            "images_background_small1/Fixture_Alphabet_01/",
            "images_background_small1/Fixture_Alphabet_01/character01/",
            "images_background_small1/Fixture_Alphabet_01/character01/0001_01.png",
        ]
        assert archive_file.read(names[3]).startswith(b"\x89PNG")
    labels = write_fixture("mnist_test_labels", tmp_path / "t10k-labels-idx1-ubyte.gz", seed=0, size=SIZE)
    with gzip.open(labels) as stream:
        assert stream.read(8) == bytes([0, 0, 8, 1, 0, 0, 0, SIZE.test])


def test_prepared_files_are_byte_reproducible(tmp_path):
    arrays = {
        "images": np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        "labels": np.array([3, 1]),
        "alphabet_names": np.array(["Latin", "Greek"]),
    }
    first, second = save_arrays(tmp_path / "a.npz", arrays), save_arrays(tmp_path / "b.npz", arrays)
    assert first.read_bytes() == second.read_bytes()
    loaded = load_prepared(first)
    assert loaded.keys() == arrays.keys()
    for key, value in arrays.items():
        np.testing.assert_array_equal(loaded[key], value)


def test_recompressed_gzip_verifies_by_its_payload(tmp_path):
    original = write_fixture("mnist_test_labels", tmp_path / "t10k-labels-idx1-ubyte.gz", seed=0, size=SIZE)
    recompressed = tmp_path / "copy" / original.name
    recompressed.parent.mkdir()
    recompressed.write_bytes(gzip.compress(gzip.decompress(original.read_bytes()), compresslevel=1, mtime=123))
    assert recompressed.read_bytes() != original.read_bytes()
    item = archive("mnist_test_labels")
    recorded = item.__class__(
        item.key,
        item.group,
        item.filename,
        item.urls,
        Digests(**file_digests(original)),
        Digests(**payload_digests(original)),
    )
    assert verify(original, recorded) == "file"
    assert verify(recompressed, recorded) == "decompressed payload"
    wrong_payload = item.__class__(
        item.key, item.group, item.filename, item.urls, recorded.digests, Digests(md5="0" * 32)
    )
    with pytest.raises(ChecksumError, match="decompressed payload md5"):
        verify(recompressed, wrong_payload)


def test_idx_with_a_wrong_header_fails_naming_the_file(tmp_path):
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(b"\x01\x02\x03\x04" + bytes(16)))
    with pytest.raises(FormatError, match="t10k-images-idx3-ubyte.gz is not an IDX file"):
        read_idx(bad)
    short = tmp_path / "short.gz"
    short.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 9]) + bytes(3)))
    with pytest.raises(FormatError, match="short.gz: IDX header says shape"):
        read_idx(short)


def test_cifar_pickle_that_would_run_code_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name in ("cifar-10-batches-py/batches.meta", "cifar-10-batches-py/test_batch"):
            data = pickle.dumps({b"labels": Exploit()})
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(FormatError, match="builtins.print is not allowed"):
        parse_cifar(path, "cifar10", "test")


def test_cifar_tarball_without_a_batch_fails_naming_it(tmp_path):
    path = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(path, "w:gz"):
        pass
    with pytest.raises(FormatError, match="lacks member.*cifar-100-python/meta.*cifar-100-python/train"):
        parse_cifar(path, "cifar100", "train")


@pytest.mark.parametrize(
    "name, reader",
    [
        ("t10k-images-idx3-ubyte.gz", read_idx),
        ("cifar-10-python.tar.gz", lambda p: parse_cifar(p, "cifar10", "test")),
        ("images_background.zip", parse_omniglot),
    ],
)
def test_a_file_that_is_not_an_archive_fails_naming_it(name, reader, tmp_path):
    path = tmp_path / name
    path.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(FormatError, match=f"{name} is not a readable"):
        reader(path)


def test_omniglot_zip_with_an_unexpected_layout_fails_naming_the_member(tmp_path):
    path = tmp_path / "images_background.zip"
    with zipfile.ZipFile(path, "w") as archive_file:
        archive_file.writestr("images_background/Latin/a.png", b"")
    with pytest.raises(FormatError, match="member images_background/Latin/a.png"):
        parse_omniglot(path)
