"""Hypercleaning at smoke scale: on the synthetic MNIST fixture with half the training labels
corrupted, hyper-optimisation lowers the validation loss and down-weights corrupted examples; the
exact gradient it records is autograd through the unrolled loop; Table 2 summarises several seeds as
mean ± std."""

import pytest
import torch

from experiment_data import smoke_digits
from test_pipeline_config import load, merged
from truncback.experiments.hypercleaning.problem import cleaning_problem, corrupted_f1, make_cleaning_data
from truncback.experiments.hypercleaning.run import run_hypercleaning
from truncback.experiments.hypercleaning.settings import HypercleaningSettings
from truncback.experiments.hypercleaning.table import hypercleaning_table
from truncback.hypergrad.reference import unrolled_autograd
from truncback.runtime import harness
from truncback.runtime.harness import exact_comparisons
from truncback.runtime.measure import timed
from truncback.runtime.determinism import derive_seed
from truncback.io.tables import mean_std


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    arrays = smoke_digits(tmp_path_factory.mktemp("mnist"))
    return arrays["images"], arrays["labels"]


def smoke_settings(**change):
    section = merged({}, load("smoke.yaml"))["hypercleaning"]
    return HypercleaningSettings.from_dict({**section["settings"], **change}), section["methods"]


def quiet(message):
    pass


def test_smoke_scale_lowers_the_loss_and_down_weights_corrupted_examples(digits, monkeypatch):
    settings, methods = smoke_settings()
    data = make_cleaning_data(
        *digits,
        settings.n_train,
        settings.n_val,
        settings.n_test,
        settings.corrupted_fraction,
        derive_seed("hypercleaning", 0, 0),
    )
    reference = unrolled_autograd(
        cleaning_problem(data, settings.T, settings.lr, settings.weight_decay), torch.zeros(settings.n_train)
    )
    measured: list[float] = []

    def spied_timed(function, *args, **kwargs):
        value, seconds = timed(function, *args, **kwargs)
        measured.append(seconds)
        return value, seconds

    monkeypatch.setattr(harness, "timed", spied_timed)
    for method in (methods[0], {"name": "rmd"}):
        measured.clear()
        result, timing, _ = run_hypercleaning(*digits, settings, method, seed=0, log=quiet)
        losses = result.run.train["outer_loss"]
        assert losses[-1] < 0.9 * losses[0]
        assert result.final["mean_weight_corrupted"] < result.final["mean_weight_clean"]
        assert result.final["val_loss"] < result.baseline["val_loss"]
        exact = result.run.exact
        assert exact["iteration"] == [
            *range(0, settings.hyper_iterations, settings.exact_every),
            settings.hyper_iterations - 1,
        ]
        # taken at lam_0 = 0, before the first step: autograd through the unrolled loop
        assert exact["grad_norm"][0] == pytest.approx(float(reference.norm()), rel=1e-4)
        assert timing.timed_iterations == settings.hyper_iterations - 1
        # what the rehearsal's estimate multiplies: the exact comparisons the loop made, as counted for the paper scale
        assert (
            timing.exact_comparisons
            == len(exact["iteration"])
            == exact_comparisons(settings.hyper_iterations, settings.exact_every)
        )
        # the hypergradients' time is the sum of those timed (all but the profiled first), within their iterations'
        assert len(measured) == timing.timed_iterations and timing.seconds == sum(measured)
        assert timing.iteration_seconds >= timing.seconds
    assert result.run.train["hypergradient_norm"][0] == pytest.approx(float(reference.norm()), rel=1e-4)


def test_split_corrupts_exactly_the_requested_fraction_to_other_classes(digits):
    images, labels = digits
    data = make_cleaning_data(images, labels, 200, 100, 100, 0.5, seed=3)
    assert int(data.corrupted.sum()) == 100
    assert torch.all((data.y_train != data.y_train_clean) == data.corrupted)
    assert data.x_train.shape == (200, 785) and torch.all(data.x_train[:, -1] == 1)
    with pytest.raises(ValueError, match="exceeds the 500 examples"):
        make_cleaning_data(images, labels, 400, 100, 100, 0.5, seed=3)


def test_f1_of_the_threshold_rule():
    corrupted = torch.tensor([True, True, False, False])
    assert corrupted_f1(torch.tensor([-5.0, -5.0, 0.0, 0.0]), corrupted, -3.0) == 1.0
    assert corrupted_f1(torch.tensor([-5.0, 0.0, -5.0, 0.0]), corrupted, -3.0) == 0.5
    assert corrupted_f1(torch.zeros(4), corrupted, -3.0) == 0.0


def test_unknown_setting_and_bad_method_are_named(digits):
    with pytest.raises(ValueError, match=r"unknown hypercleaning setting\(s\) \['hyper_lrr'\]"):
        HypercleaningSettings.from_dict({"hyper_lrr": 1.0})
    settings, _ = smoke_settings()
    with pytest.raises(ValueError, match="option K=21 is larger than the number of lower-level steps T=20"):
        run_hypercleaning(*digits, settings, {"name": "krmd", "K": 21}, seed=0, log=quiet)


def test_table_2_gives_mean_and_std_over_seeds_with_a_baseline_row_per_split(digits):
    settings, _ = smoke_settings(hyper_iterations=4, exact_every=2)
    runs = [
        run_hypercleaning(*digits, settings, method, seed=seed, log=quiet)
        for method in ({"name": "krmd", "K": 1}, {"name": "aid_cg", "K": 3})
        for seed in (0, 1)
    ]
    frame, caption = hypercleaning_table([r for r, _, _ in runs], [t.per_iteration() for _, t, _ in runs])
    assert list(frame["Method"]) == ["no cleaning (λ = 0)", "1-RMD", "AID-CG (K=3)"]
    assert "mean ± std over 2 seed(s)" in caption
    for row, name in ((1, "krmd"), (2, "aid_cg")):
        accuracies = [r.final["test_acc"] for r, _, _ in runs if r.method["name"] == name]
        assert frame["Test Acc."][row] == mean_std(accuracies, 2) and " ± " in frame["Test Acc."][row]
    baselines = [r.baseline["test_acc"] for r, _, _ in runs if r.method["name"] == "krmd"]
    assert baselines[0] != baselines[1]  # each seed draws its own split
    assert frame["Test Acc."][0] == mean_std(baselines, 2)
    assert frame["States held"][1] == "2" and frame["States held"][2] == "1"
