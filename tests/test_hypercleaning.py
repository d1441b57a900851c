"""Hypercleaning at smoke scale: on separable synthetic digits with half the training labels
corrupted, K-RMD hyper-optimisation lowers the validation loss and down-weights corrupted examples."""

import numpy as np
import pytest
import torch

from truncback.experiments.hypercleaning import HypercleaningSettings, run_hypercleaning
from truncback.experiments.hypercleaning_problem import corrupted_f1, make_cleaning_data


def synthetic_digits(n, seed=0):
    """Ten sparse random 28x28 prototypes (15% of pixels lit, as in MNIST) with pixel noise."""
    rng = np.random.default_rng(seed)
    prototypes = 255.0 * (rng.uniform(size=(10, 28, 28)) < 0.15)
    labels = rng.integers(0, 10, size=n)
    noisy = prototypes[labels] * (rng.uniform(size=(n, 28, 28)) < 0.7) + rng.normal(0, 20, size=(n, 28, 28))
    return np.clip(noisy, 0, 255).astype(np.uint8), labels


SMOKE = HypercleaningSettings(n_train=200, n_val=100, n_test=200, T=10, hyper_iterations=30,
                              exact_every=10, log_every=100)


@pytest.mark.parametrize("K", [1, 10])
def test_hyper_optimisation_lowers_the_loss_and_down_weights_corrupted_examples(K):
    images, labels = synthetic_digits(600)
    result = run_hypercleaning(images, labels, SMOKE, K, seed=0, log=lambda message: None)
    losses = result["curve"]["outer_loss"]
    assert losses[-1] < 0.9 * losses[0]
    final = result["final"]
    assert final["mean_weight_corrupted"] < final["mean_weight_clean"]
    assert final["val_loss"] < result["baseline"]["val_loss"]
    assert len(result["exact"]["grad_norm"]) == 4
    if K == SMOKE.T:
        assert all(abs(c - 1) < 1e-5 for c in result["exact"]["cosine"])


def test_split_corrupts_exactly_the_requested_fraction_to_other_classes():
    images, labels = synthetic_digits(500)
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
