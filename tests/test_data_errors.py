"""Failures name what is at fault: unknown names, files missing from data_dir or from disk."""

import numpy as np
import pytest

from truncback.cli import main
from truncback.data import ChecksumError, MissingFileError, UnknownNameError, load_prepared, prepared_path
from truncback.data.fixtures import FixtureSize, write_fixture
from truncback.data.local import copy_from_data_dir
from truncback.data.sources import archive


def test_unknown_dataset_name_is_named(capsys):
    with pytest.raises(UnknownNameError, match="unknown dataset at scale 'quick': 'mnist_train'; known: mnist_test"):
        prepared_path("quick", "mnist_train")
    assert main(["data-prepare", "svhn_train", "x.tar.gz", "--scale", "full", "--output", "y.npz"]) == 1
    assert "'svhn_train'" in capsys.readouterr().err
    assert main(["data-fetch", "svhn", "--output", "svhn.tar.gz"]) == 1
    assert "unknown archive 'svhn'; known: mnist_train_images" in capsys.readouterr().err


def test_unknown_scale_is_named():
    with pytest.raises(UnknownNameError, match="unknown scale 'paper'; known: full, offline, quick, smoke, rehearsal"):
        prepared_path("paper", "mnist_test")


def test_file_missing_from_data_dir_is_named_with_the_expected_names(tmp_path, capsys):
    output = tmp_path / "raw" / "cifar-10-python.tar.gz"
    assert main(["data-fetch", "cifar10", "--scale", "full", "--data-dir", str(tmp_path), "--output", str(output)]) == 1
    message = capsys.readouterr().err
    assert f"data_dir {tmp_path} has no cifar-10-python.tar.gz" in message
    assert str(tmp_path / "cifar10" / "cifar-10-python.tar.gz") in message
    assert (
        "mnist/train-images-idx3-ubyte.gz, mnist/train-labels-idx1-ubyte.gz, mnist/t10k-images-idx3-ubyte.gz, "
        "mnist/t10k-labels-idx1-ubyte.gz, cifar10/cifar-10-python.tar.gz, cifar100/cifar-100-python.tar.gz, "
        "omniglot/images_background.zip, omniglot/images_evaluation.zip"
    ) in message
    assert not output.parent.exists()


def test_data_dir_file_is_found_at_top_level_and_checked(tmp_path):
    """A file of the right name but wrong content is refused, and nothing is copied."""
    write_fixture("mnist_test_labels", tmp_path / "t10k-labels-idx1-ubyte.gz", seed=0, size=FixtureSize(10, 10))
    target = tmp_path / "raw" / "t10k-labels-idx1-ubyte.gz"
    with pytest.raises(ChecksumError, match=r"checksum mismatch: .*t10k-labels-idx1-ubyte.gz.*decompressed payload"):
        copy_from_data_dir(archive("mnist_test_labels"), tmp_path, target)
    assert not target.exists() and not list(target.parent.glob(".*.part"))


def test_prepare_with_a_missing_archive_names_it(tmp_path, capsys):
    missing = tmp_path / "cifar-100-python.tar.gz"
    assert (
        main(["data-prepare", "cifar100_test", str(missing), "--scale", "smoke", "--output", str(tmp_path / "out.npz")])
        == 1
    )
    assert f"{missing} does not exist (needed for cifar100_test at scale smoke)" in capsys.readouterr().err
    assert not (tmp_path / "out.npz").exists()


def test_prepare_with_wrongly_named_archives_says_what_it_needs(capsys):
    assert main(["data-prepare", "mnist_test", "a.gz", "--scale", "quick", "--output", "o.npz"]) == 1
    assert (
        "mnist_test at scale quick is made from t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (in that order)"
    ) in capsys.readouterr().err


def test_loading_a_missing_prepared_file_names_it(tmp_path):
    with pytest.raises(MissingFileError, match="prepared data file .*mnist_test.npz does not exist"):
        load_prepared(tmp_path / "mnist_test.npz")
    np.savez(tmp_path / "ok.npz", labels=np.arange(3))
    assert load_prepared(tmp_path / "ok.npz")["labels"].tolist() == [0, 1, 2]
