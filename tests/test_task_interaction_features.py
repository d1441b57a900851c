"""Features for task interaction: the plain-torch ResNet-18 takes a torchvision-named state dict
strictly, the weights file is checked and its absence explained, and the `features` command writes
the same cached .npz twice."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from truncback.cli import main as cli
from truncback.runtime.determinism import write_npz
from truncback.data.resnet18 import for_inference, load_resnet18
from truncback.experiments.task_interaction.features import FeatureSettings, extract


def torchvision_resnet18_shapes() -> dict:
    """Names and shapes of torchvision.models.resnet18()'s state dict, written out from its definition."""
    shapes = {"conv1.weight": (64, 3, 7, 7)}

    def batch_norm(prefix, channels):
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (channels,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    batch_norm("bn1", 64)
    inplanes = 64
    for layer, planes in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            prefix, channels_in = f"layer{layer}.{block}", inplanes if block == 0 else planes
            shapes[f"{prefix}.conv1.weight"] = (planes, channels_in, 3, 3)
            batch_norm(f"{prefix}.bn1", planes)
            shapes[f"{prefix}.conv2.weight"] = (planes, planes, 3, 3)
            batch_norm(f"{prefix}.bn2", planes)
            if block == 0 and layer > 1:
                shapes[f"{prefix}.downsample.0.weight"] = (planes, channels_in, 1, 1)
                batch_norm(f"{prefix}.downsample.1", planes)
        inplanes = planes
    shapes["fc.weight"], shapes["fc.bias"] = (1000, 512), (1000,)
    return shapes


def weights_file(folder, state) -> Path:
    """``state`` saved under torchvision's naming, resnet18-<first 8 hex digits of its SHA-256>.pth."""
    path = folder / "resnet18.pth"
    torch.save(state, path)
    named = folder / f"resnet18-{hashlib.sha256(path.read_bytes()).hexdigest()[:8]}.pth"
    path.rename(named)
    return named


@pytest.fixture(scope="module")
def generated_state():
    generator = torch.Generator().manual_seed(0)
    state = {}
    for name, shape in torchvision_resnet18_shapes().items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(7)
        elif name.endswith("running_var"):
            state[name] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[name] = 0.05 * torch.randn(shape, generator=generator)
    return state


def test_a_torchvision_named_state_dict_loads_strictly_and_gives_512_features(tmp_path, generated_state):
    assert len(generated_state) == 122
    model = load_resnet18(weights_file(tmp_path, generated_state))
    loaded = model.state_dict()
    assert sorted(loaded) == sorted(generated_state)
    assert all(torch.equal(loaded[name], value) for name, value in generated_state.items())
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    settings = FeatureSettings(image_size=64, batch_size=2)
    features = extract(images, settings, model)
    assert features.shape == (3, 512) and features.dtype == np.float32 and np.all(features >= 0)
    alone = extract(images[2:], settings, model)  # eval mode: batch norm uses the stored statistics
    np.testing.assert_allclose(alone[0], features[2], rtol=1e-5, atol=1e-6)


def test_the_inference_copy_folds_batch_norm_and_gives_the_model_s_features(tmp_path, generated_state):
    """Batch norm folded into the convolutions (none left), channels-last weights: the features the
    model's own layers compute, in float64 to rounding, on the model's own (contiguous) input."""
    model = load_resnet18(weights_file(tmp_path, generated_state)).double()
    fast = for_inference(model)
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in fast.modules())
    assert fast.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert any(isinstance(module, torch.nn.BatchNorm2d) for module in model.modules())  # a copy
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        expected = model.features(x)
        got = fast.features(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_a_weights_file_whose_digest_contradicts_its_name_is_refused(tmp_path, generated_state):
    path = weights_file(tmp_path, generated_state)
    corrupt = path.with_name("resnet18-00000000.pth")
    path.rename(corrupt)
    with pytest.raises(ValueError, match=r"resnet18-00000000.pth: SHA-256 [0-9a-f]{64} does not start with 00000000"):
        load_resnet18(corrupt)


@pytest.fixture
def prepared(tmp_path, torch_state_restored):
    rng = np.random.default_rng(1)
    return write_npz(
        tmp_path / "cifar_test.npz",
        images=rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8),
        labels=np.arange(6, dtype=np.int64) % 3,
    )


def test_random_features_are_cached_reproducibly_and_say_what_they_are(tmp_path, prepared):
    settings = '{"extractor": "random", "random_dim": 16, "seed": 3}'
    outputs = [tmp_path / "one.npz", tmp_path / "two.npz"]
    for output in outputs:
        assert cli(["features", "--data", str(prepared), "--output", str(output), "--settings", settings]) == 0
    assert outputs[0].read_bytes() == outputs[1].read_bytes()
    with np.load(outputs[0]) as content:
        assert content["features"].shape == (6, 16) and np.all(content["features"] >= 0)
        np.testing.assert_array_equal(content["labels"], np.arange(6) % 3)
        assert not content["pretrained"].item()
        assert "random" in content["extractor"].item()
    other = extract(np.load(prepared)["images"], FeatureSettings(extractor="random", random_dim=16, seed=4))
    assert not np.allclose(other, np.load(outputs[0])["features"])


def test_resnet_features_without_weights_stop_naming_the_file_its_rule_and_url(tmp_path, prepared, capsys):
    assert (
        cli(
            [
                "features",
                "--data",
                str(prepared),
                "--output",
                str(tmp_path / "f.npz"),
                "--settings",
                '{"extractor": "resnet18"}',
            ]
        )
        == 1
    )
    assert (
        "extractor resnet18 needs --weights, the path of resnet18-f37072fd.pth (rule "
        "data_archive_resnet18_weights fetches it from https://download.pytorch.org/models/resnet18-f37072fd.pth)"
    ) in capsys.readouterr().err
    assert not (tmp_path / "f.npz").exists()
    with pytest.raises(ValueError, match=r"extractor='resnet'; choose one of \['resnet18', 'random'\]"):
        FeatureSettings.from_dict({"extractor": "resnet"})


def test_drawn_features_are_those_of_the_rows_the_trials_draw_and_a_run_drawing_another_is_refused(tmp_path, capsys):
    """``--drawn``: the training split's features only for the rows trials 0..TRIALS-1 draw (equal to
    the features of every row there, zero elsewhere), every test row; a trial beyond those is refused
    naming the file, before it trains."""
    from truncback.experiments.task_interaction.subsets import drawn_rows, per_class_split, trial_seed

    rng = np.random.default_rng(2)
    labels = np.arange(60, dtype=np.int64) % 3
    train = write_npz(
        tmp_path / "train.npz", images=rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8), labels=labels
    )
    test = write_npz(
        tmp_path / "test.npz", images=rng.integers(0, 256, (9, 32, 32, 3), dtype=np.uint8), labels=labels[:9]
    )
    settings = '{"extractor": "random", "random_dim": 8}'
    every, drawn = [tmp_path / "every_train.npz", tmp_path / "every_test.npz"], [tmp_path / "a.npz", tmp_path / "b.npz"]
    base = ["features", "--data", str(train), str(test), "--settings", settings]
    assert cli([*base, "--output", *map(str, every)]) == 0
    assert cli([*base, "--output", *map(str, drawn), "--drawn", "cifar10", "2", "4", "3"]) == 0
    rows = np.concatenate(
        [np.concatenate(per_class_split(labels, 4, 3, trial_seed("cifar10", trial))) for trial in range(2)]
    )
    expected_rows = np.unique(rows)
    np.testing.assert_array_equal(drawn_rows(labels, "cifar10", 2, 4, 3), expected_rows)
    assert 21 <= len(expected_rows) < 60  # two draws of 21 rows among 60 overlap at most partly
    with np.load(every[0]) as all_rows, np.load(drawn[0]) as some:
        np.testing.assert_array_equal(np.flatnonzero(some["computed"]), expected_rows)
        np.testing.assert_array_equal(some["features"][expected_rows], all_rows["features"][expected_rows])
        assert not np.delete(some["features"], expected_rows, axis=0).any() and all_rows["computed"].all()
    with np.load(every[1]) as all_test, np.load(drawn[1]) as some_test:
        np.testing.assert_array_equal(some_test["features"], all_test["features"])
    run = [
        "task-interaction",
        "--train",
        str(drawn[0]),
        "--test",
        str(drawn[1]),
        "--dataset",
        "cifar10",
        "--method",
        "krmd-K1",
        "--settings",
        '{"train_per_class": 4, "val_per_class": 3, "T": 2, "max_hyper_iterations": 1}',
        "--output",
    ]
    assert cli([*run, str(tmp_path / "trial1.json"), "--trial", "1"]) == 0
    seeds = [
        trial
        for trial in range(2, 40)
        if not set(per_class_split(labels, 4, 3, trial_seed("cifar10", trial))[0]) <= set(expected_rows)
    ]
    capsys.readouterr()
    assert cli([*run, str(tmp_path / "late.json"), "--trial", str(seeds[0])]) != 0
    assert f"a.npz: trial {seeds[0]} of cifar10 draws" in capsys.readouterr().err
    assert not (tmp_path / "late.json").exists()
