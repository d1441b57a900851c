"""The rehearsal of the paper scale: its configuration keeps every job of the full scale and caps only
counts of work; its synthetic archives have the published sizes (checked where it is cheap) and a
ResNet-18 weights file of the real shapes; features computed for the first images only are zero
elsewhere and say how many were computed. The shrunken rehearsal through Snakemake is in
test_pipeline_smoke.py."""

import copy
import json

import numpy as np
import pytest
import torch
import yaml
from snakemake.utils import validate

from truncback.cli import main as cli
from truncback.tools.config_schema import check_config
from truncback.data.fixtures import SIZES, FixtureSize, write_fixture
from truncback.data.layout import fixture_path, raw_path
from truncback.data.parsers import parse_omniglot
from truncback.data.sources import archive, archives_of, extra_archive_origin
from truncback.rehearsal.caps import RehearsalSettings, rehearsal_config
from truncback.experiments.omniglot.run import tasks_evaluated_at
from truncback.experiments.omniglot.settings import OmniglotRun, OmniglotSettings
from truncback.data.resnet18 import ResNet18, load_resnet18
from truncback.runtime.determinism import write_npz
from workflow_copy import REPO

SCHEMA = str(REPO / "config" / "schema.yaml")


@pytest.fixture
def full_config():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, SCHEMA)  # fills in every default: the paper-scale configuration
    return config


def test_the_rehearsal_has_the_jobs_of_the_full_scale_and_caps_only_work(full_config):
    capped = rehearsal_config(full_config)
    assert check_config(capped) == check_config(full_config)  # the same run labels in every experiment
    caps = RehearsalSettings()
    for section in ("hypercleaning", "task_interaction", "omniglot"):
        for key in ("methods", "seeds", "trials", "datasets", "seed", "depth_from", "subsets"):
            assert capped[section].get(key) == full_config[section].get(key)
    assert capped["hypercleaning"]["settings"]["hyper_iterations"] == caps.iterations
    assert capped["task_interaction"]["settings"]["max_hyper_iterations"] == caps.iterations
    assert [run["iterations"] for run in capped["omniglot"]["runs"]] == [caps.iterations] * len(
        full_config["omniglot"]["runs"]
    )
    sizes = {
        "hypercleaning": ("n_train", "n_val", "n_test", "T"),
        "task_interaction": ("T",),
        "omniglot": ("ways", "filters", "T", "meta_train_classes", "query_per_class"),
    }
    for section, keys in sizes.items():
        for key in keys:
            assert capped[section]["settings"].get(key) == full_config[section]["settings"].get(key)
    assert capped["toy"] == full_config["toy"] and capped["complexity"] == full_config["complexity"]
    validate(copy.deepcopy(capped), SCHEMA)


def test_the_rehearsal_takes_every_archive_from_fixtures_and_the_weights_under_a_name_without_a_digest():
    weights = archive("resnet18_weights")
    assert (
        extra_archive_origin("full", weights.key) == "real"
        and extra_archive_origin("rehearsal", weights.key) == "fixture"
    )
    assert archives_of("rehearsal", "real") == []
    assert weights in archives_of("rehearsal", "fixture") and weights in archives_of("full", "real")
    assert fixture_path("rehearsal", weights).name == "resnet18-synthetic.pth"
    assert raw_path(weights).name == "resnet18-f37072fd.pth"


def test_omniglot_characters_are_spread_over_the_published_alphabet_counts(tmp_path):
    published = SIZES["published"]
    for key, alphabets, characters in (("omniglot_background", 30, 964), ("omniglot_evaluation", 20, 659)):
        counts = published.characters_per_alphabet(key)
        assert len(counts) == alphabets and sum(counts) == characters and max(counts) - min(counts) <= 1
    size = FixtureSize(train=0, test=0, omniglot=(("omniglot_background_small1", 3, 7),))
    parsed = parse_omniglot(
        write_fixture("omniglot_background_small1", tmp_path / "images_background_small1.zip", seed=0, size=size)
    )
    assert parsed["images"].shape == (7 * 20, 28, 28)
    assert np.bincount(parsed["alphabet"]).tolist() == [3 * 20, 2 * 20, 2 * 20]


def test_the_weights_stand_in_has_resnet18_shapes_and_repeats_from_its_seed(tmp_path):
    size = SIZES["published"]
    first = write_fixture("resnet18_weights", tmp_path / "a" / "resnet18-synthetic.pth", seed=0, size=size)
    again = write_fixture("resnet18_weights", tmp_path / "b" / "resnet18-synthetic.pth", seed=0, size=size)
    other = write_fixture("resnet18_weights", tmp_path / "c" / "resnet18-synthetic.pth", seed=1, size=size)
    assert first.read_bytes() == again.read_bytes() != other.read_bytes()
    model = load_resnet18(first)  # strict: every name and shape of torchvision's ResNet-18
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ResNet18().parameters())
    assert model.features(torch.zeros(2, 3, 64, 64)).shape == (2, 512)


def test_features_of_the_first_images_only_are_zero_elsewhere_and_counted(tmp_path, torch_state_restored):
    rng = np.random.default_rng(0)
    data = write_npz(
        tmp_path / "cifar.npz", images=rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8), labels=np.arange(7) % 3
    )
    outputs, timing = [tmp_path / "all.npz", tmp_path / "some.npz"], tmp_path / "timing.json"
    for output, limit in zip(outputs, (None, 3)):
        settings = json.dumps({"extractor": "random", "random_dim": 8, "max_images": limit})
        assert (
            cli(
                [
                    "features",
                    "--data",
                    str(data),
                    "--output",
                    str(output),
                    "--settings",
                    settings,
                    "--timing",
                    str(timing),
                ]
            )
            == 0
        )
    everything, some = np.load(outputs[0])["features"], np.load(outputs[1])["features"]
    np.testing.assert_array_equal(some[:3], everything[:3])
    assert not some[3:].any() and everything[3:].any()
    recorded = json.loads(timing.read_text())
    assert (recorded["images"], recorded["images_needed"], recorded["images_computed"]) == (7, 7, 3)
    assert recorded["extract_seconds"] >= 0


def test_omniglot_evaluation_schedule_counts_curves_and_milestones():
    settings = OmniglotSettings(eval_every=500, curve_tasks=120, validation_tasks=120, test_tasks=600)
    run = OmniglotRun({"name": "krmd", "K": 1}, iterations=1200, milestones=(1000, 1200))
    counted = {done: tasks_evaluated_at(done, settings, run) for done in range(1201)}
    assert {done for done, tasks in counted.items() if tasks} == {0, 500, 1000, 1200}
    assert counted[0] == counted[500] == 240 and counted[1000] == counted[1200] == 720
