"""Hypercleaning at smoke scale: on the synthetic MNIST fixture with half the training labels
corrupted, K-RMD hyper-optimisation lowers the validation loss and down-weights corrupted examples;
Table 2 summarises several seeds as mean ± std."""

import pytest
import torch

from test_pipeline_config import load, merged
from truncback.data.fixtures import write_fixtures
from truncback.data.parsers import parse_mnist
from truncback.experiments.hypercleaning import HypercleaningSettings, run_hypercleaning
from truncback.determinism import derive_seed
from truncback.experiments.hypercleaning_problem import cleaning_problem, corrupted_f1, make_cleaning_data
from truncback.hypergrad import rmd
from truncback.reports.hypercleaning_table import hypercleaning_table
from truncback.tables import mean_std


@pytest.fixture(scope="module")
def smoke_digits(tmp_path_factory):
    """The smoke scale's MNIST fixture (the same generator and parser as the pipeline)."""
    folder = tmp_path_factory.mktemp("mnist")
    paths = [folder / name for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")]
    write_fixtures("smoke", paths, seed=0)
    arrays = parse_mnist(*paths)
    return arrays["images"], arrays["labels"]


def smoke_settings():
    config = merged(load("config.yaml"), load("smoke.yaml"))["hypercleaning"]
    return HypercleaningSettings.from_dict(config["settings"]), config["K_values"]


def test_smoke_scale_lowers_the_loss_and_down_weights_corrupted_examples(smoke_digits):
    settings, K_values = smoke_settings()
    data = make_cleaning_data(*smoke_digits, settings.n_train, settings.n_val, settings.n_test,
                              settings.corrupted_fraction, derive_seed("hypercleaning", 0, 0))
    problem = cleaning_problem(data, settings.T, settings.lr, settings.weight_decay)
    first_exact = float(rmd(problem, torch.zeros(settings.n_train)).norm())
    for K in (min(K_values), settings.T):
        result = run_hypercleaning(*smoke_digits, settings, K, seed=0, log=lambda message: None)
        losses = result["curve"]["outer_loss"]
        assert losses[-1] < 0.9 * losses[0]
        final = result["final"]
        assert final["mean_weight_corrupted"] < final["mean_weight_clean"]
        assert final["val_loss"] < result["baseline"]["val_loss"]
        exact = result["exact"]
        assert exact["iteration"] == [*range(0, settings.hyper_iterations, settings.exact_every),
                                      settings.hyper_iterations - 1]
        assert abs(exact["grad_norm"][0] - first_exact) <= 1e-5 * first_exact  # taken at lam_0, before the step
        if K == settings.T:
            assert all(abs(c - 1) < 1e-5 for c in exact["cosine"])


def test_split_corrupts_exactly_the_requested_fraction_to_other_classes(smoke_digits):
    images, labels = smoke_digits
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


def test_unknown_setting_is_named():
    with pytest.raises(ValueError, match=r"unknown hypercleaning setting\(s\) \['hyper_lrr'\]"):
        HypercleaningSettings.from_dict({"hyper_lrr": 1.0})


def test_table_2_gives_mean_and_std_over_seeds_with_a_baseline_row_per_split(smoke_digits):
    settings, _ = smoke_settings()
    short = HypercleaningSettings(**{**settings.__dict__, "hyper_iterations": 4, "exact_every": 2})
    runs = [run_hypercleaning(*smoke_digits, short, K, seed=seed, log=lambda message: None)
            for K in (1, short.T) for seed in (0, 1)]
    frame, caption = hypercleaning_table(runs)
    assert list(frame["Method"]) == ["no cleaning (λ = 0)", "1-RMD", "Full RMD"]
    assert "mean ± std over 2 seed(s)" in caption
    for row, K in ((1, 1), (2, short.T)):
        accuracies = [run["final"]["test_acc"] for run in runs if run["K"] == K]
        assert frame["Test Acc."][row] == mean_std(accuracies, 2) and " ± " in frame["Test Acc."][row]
    baselines = [run["baseline"]["test_acc"] for run in runs if run["K"] == 1]
    assert baselines[0] != baselines[1]  # each seed draws its own split
    assert frame["Test Acc."][0] == mean_std(baselines, 2)
    assert frame["States held"][1] == "2" and frame["States held"][2] == str(short.T + 1)
