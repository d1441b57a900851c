"""The real subsets in ../shared/datasets (skipped when that folder is absent): checksums, parsing,
and the quick scale's data_dir route through the command line."""

from pathlib import Path

import numpy as np
import pytest

from truncback.cli import main
from truncback.data import load_prepared
from truncback.data.checksums import verify
from truncback.data.layout import raw_path
from truncback.data.parsers import parse_mnist, parse_omniglot
from truncback.data.sources import archive, archives_of
from truncback.experiments.omniglot.tasks import meta_split

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is absent (only on the project machine)")
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_test_files_verify_by_payload_and_parse():
    images, labels = SHARED / "mnist" / "t10k-images-idx3-ubyte.gz", SHARED / "mnist" / "t10k-labels-idx1-ubyte.gz"
    assert verify(images, archive("mnist_test_images")) == "decompressed payload"
    assert verify(labels, archive("mnist_test_labels")) == "decompressed payload"
    arrays = parse_mnist(images, labels)
    assert arrays["images"].shape == (10000, 28, 28) and arrays["images"].dtype == np.uint8
    assert np.bincount(arrays["labels"]).tolist() == MNIST_TEST_COUNTS


def test_omniglot_small1_has_136_characters_of_20_drawings():
    path = SHARED / "omniglot" / "images_background_small1.zip"
    assert verify(path, archive("omniglot_background_small1")) == "file"
    arrays = parse_omniglot(path)
    assert arrays["images"].shape == (136 * 20, 28, 28) and arrays["images"].dtype == np.uint8
    assert np.bincount(arrays["labels"]).tolist() == [20] * 136
    assert np.bincount(arrays["drawing"]).tolist() == [136] * 20
    assert len(arrays["alphabet_names"]) == 5 and arrays["alphabet"].max() == 4
    assert len({(a, c) for a, c in zip(arrays["alphabet"], arrays["character"])}) == 136


def test_quick_scale_runs_offline_from_data_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for item in archives_of("quick", "real"):
        assert (
            main(
                ["data-fetch", item.key, "--scale", "quick", "--data-dir", str(SHARED), "--output", str(raw_path(item))]
            )
            == 0
        )
        assert raw_path(item).is_file() and not raw_path(item).is_symlink()
    small2 = raw_path(archive("omniglot_background_small2"))
    assert (
        main(["data-prepare", "omniglot_evaluation", str(small2), "--scale", "quick", "--output", "evaluation.npz"])
        == 0
    )
    evaluation = load_prepared("evaluation.npz")
    assert evaluation["images"].shape == (156 * 20, 28, 28)
    assert np.bincount(evaluation["labels"]).tolist() == [20] * 156


def test_small2_s_characters_that_small1_also_holds_are_not_meta_tested():
    """small1 and small2 are two subsets of Omniglot's background set: the alphabets they share (by name)
    are left out of the meta-test pool, every character of them, and nothing else."""
    small1, small2 = (
        parse_omniglot(SHARED / "omniglot" / f"images_background_{name}.zip") for name in ("small1", "small2")
    )
    shared = set(small1["alphabet_names"]) & set(small2["alphabet_names"])
    assert shared, "the two subsets share alphabets"
    shared_ids = [i for i, name in enumerate(small2["alphabet_names"]) if name in shared]
    shared_characters = len({c for a, c in zip(small2["alphabet"], small2["labels"]) if a in shared_ids})
    _, test = meta_split(small1, small2, "files", 1, split_seed=0)
    assert len(test.members) == 156 - shared_characters
