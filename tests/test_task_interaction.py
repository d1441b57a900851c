"""Task interaction (sec. 4.2.2): the lower-level objective and its constraints, the hypergradient
against autograd through an independently written unrolled descent, the subsets, and the sanity of
a trial's raw results (full RMD's cosine with the exact gradient is 1; K = T is full RMD)."""

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch

from truncback.cli import main as cli
from truncback.runtime.determinism import derive_seed
from experiment_data import paired_classes, write_features
from truncback.experiments.task_interaction.problem import (
    coupling,
    initial_hparams,
    make_task_data,
    project,
    task_coupling_penalty,
    task_problem,
)
from truncback.experiments.task_interaction.run import TaskInteractionResult, run_task_interaction
from truncback.experiments.task_interaction.settings import TaskInteractionSettings
from truncback.experiments.task_interaction.subsets import per_class_split
from truncback.hypergrad import krmd
from truncback.runtime.files import read_result


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: extra threads only contend for the (shared) cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_data(dtype=torch.float64):
    train, test = paired_classes(12, seed=1), paired_classes(10, seed=2)
    return make_task_data(
        train["features"],
        train["labels"],
        test["features"],
        test["labels"],
        train_per_class=3,
        val_per_class=6,
        seed=5,
        dtype=dtype,
    )


def test_coupling_penalty_is_the_sum_over_pairs_of_squared_distances(rng):
    W = torch.randn(5, 7, generator=rng, dtype=torch.float64)
    C = coupling(torch.rand(5, 5, generator=rng, dtype=torch.float64))
    pairs = sum(C[i, j] * torch.sum((W[i] - W[j]) ** 2) for i in range(5) for j in range(5))
    assert torch.allclose(task_coupling_penalty(W, C), pairs, rtol=1e-12)
    assert torch.equal(C, C.T) and torch.all(torch.diagonal(C) == 0)


def reference_hypergradient(data, A, rho, T, lr):
    """d f / d(A, rho) by autograd through T gradient-descent steps on g written out term by term."""
    A, rho = A.detach().clone().requires_grad_(), rho.detach().clone().requires_grad_()
    C = 0.5 * (A + A.T) * (1 - torch.eye(len(A), dtype=A.dtype))
    W = torch.zeros(data.classes, data.x_train.shape[1], dtype=A.dtype, requires_grad=True)
    b = torch.zeros(data.classes, dtype=A.dtype, requires_grad=True)
    for _ in range(T):
        loss = torch.nn.functional.cross_entropy(data.x_train @ W.T + b, data.y_train)
        loss = loss + sum(C[i, j] * ((W[i] - W[j]) ** 2).sum() for i in range(len(C)) for j in range(len(C)))
        loss = loss + rho * (W**2).sum()
        grad_W, grad_b = torch.autograd.grad(loss, (W, b), create_graph=True)
        W, b = W - lr * grad_W, b - lr * grad_b
    outer = torch.nn.functional.cross_entropy(data.x_val @ W.T + b, data.y_val)
    return torch.autograd.grad(outer, (A, rho))


def test_full_depth_hypergradient_matches_autograd_through_the_unrolled_descent(rng):
    data = small_data()
    A = coupling(0.05 * torch.rand(data.classes, data.classes, generator=rng, dtype=torch.float64))
    rho = torch.tensor(0.02, dtype=torch.float64)
    T, lr = 8, 0.1
    h_A, h_rho = krmd(task_problem(data, T, lr), (A, rho), T)
    ref_A, ref_rho = reference_hypergradient(data, A, rho, T, lr)
    assert float(ref_A.abs().max()) > 0 and float(ref_rho.abs()) > 0
    assert torch.allclose(h_A, ref_A, rtol=1e-9, atol=1e-12)
    assert torch.allclose(h_rho, ref_rho, rtol=1e-9, atol=1e-12)


def test_C_stays_symmetric_non_negative_with_a_zero_diagonal_under_adam_and_clipping():
    data = small_data(torch.float32)
    problem = task_problem(data, 10, 0.1)
    hparams = initial_hparams(data.classes, 0.01, 0.01, torch.float32)
    start = hparams[0].detach().clone()
    optimizer = torch.optim.Adam(hparams, lr=0.05)
    for _ in range(6):
        h = krmd(problem, tuple(t.detach() for t in hparams), 3)
        assert torch.equal(h[0], h[0].T) and torch.all(torch.diagonal(h[0]) == 0)
        for tensor, gradient in zip(hparams, h):
            tensor.grad = gradient
        optimizer.step()
        project(hparams)
    A, rho = (t.detach() for t in hparams)
    assert torch.equal(A, A.T) and torch.all(torch.diagonal(A) == 0)
    assert float(A.min()) >= 0 and float(rho) >= 0
    assert not torch.allclose(A, start)


def test_subsets_are_per_class_disjoint_and_fixed_by_the_seed():
    labels = np.arange(100) % 10
    train, val = per_class_split(labels, 3, 4, seed=7)
    assert np.array_equal(np.bincount(labels[train]), np.full(10, 3))
    assert np.array_equal(np.bincount(labels[val]), np.full(10, 4))
    assert not set(train) & set(val)
    again, _ = per_class_split(labels, 3, 4, seed=7)
    other, _ = per_class_split(labels, 3, 4, seed=8)
    assert np.array_equal(train, again) and not np.array_equal(train, other)
    with pytest.raises(ValueError, match="class 0 has 10 examples, fewer than .* = 11"):
        per_class_split(labels, 5, 6, seed=7)


SETTINGS = TaskInteractionSettings(
    compile=False,
    train_per_class=3,
    val_per_class=6,
    T=12,
    C_init=0.001,
    rho_init=0.001,
    hyper_lr=0.02,
    max_hyper_iterations=12,
    patience=4,
    exact_every=3,
    log_every=100,
)


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    """The raw result files of one trial (1-RMD and full RMD), written by the `task-interaction` command."""
    folder = tmp_path_factory.mktemp("task_interaction")
    for split, seed in (("train", 1), ("test", 2)):
        write_features(folder / f"{split}.npz", **paired_classes(12 if split == "train" else 10, seed=seed))
    deterministic = torch.are_deterministic_algorithms_enabled()
    results = []
    for method in ("krmd-K1", "rmd"):
        assert (
            cli(
                [
                    "task-interaction",
                    "--train",
                    str(folder / "train.npz"),
                    "--test",
                    str(folder / "test.npz"),
                    "--dataset",
                    "synthetic",
                    "--settings",
                    json.dumps(asdict(SETTINGS)),
                    "--method",
                    method,
                    "--output",
                    str(folder / f"trial0_{method}.json"),
                ]
            )
            == 0
        )
        results.append(read_result(folder / f"trial0_{method}.json", TaskInteractionResult))
    torch.use_deterministic_algorithms(deterministic)
    return results


def test_raw_results_compare_each_hypergradient_with_autograd_through_the_unrolled_loop(trial):
    """The recorded exact gradient at lam_0 is d f / d(A, rho) by autograd through T steps written out
    term by term; 1-RMD is far from it, and full RMD's own hypergradient is it."""
    train, test = paired_classes(12, seed=1), paired_classes(10, seed=2)
    data = make_task_data(
        train["features"],
        train["labels"],
        test["features"],
        test["labels"],
        SETTINGS.train_per_class,
        SETTINGS.val_per_class,
        derive_seed("task_interaction/synthetic", 0, 0),
        dtype=torch.float32,
    )
    start = initial_hparams(data.classes, SETTINGS.C_init, SETTINGS.rho_init, torch.float32)
    reference = reference_hypergradient(data, *start, SETTINGS.T, SETTINGS.lr)
    norm = float(torch.sqrt(sum(torch.sum(r.double() ** 2) for r in reference)))
    one, full = trial
    for result in trial:
        assert result.run.exact["grad_norm"][0] == pytest.approx(norm, rel=1e-4)
    assert full.run.train["hypergradient_norm"][0] == pytest.approx(norm, rel=1e-4)
    assert len(one.run.exact["relative_error"]) >= 2 and all(e > 1e-3 for e in one.run.exact["relative_error"])
    assert all(-1 - 1e-6 <= c <= 1 + 1e-6 for c in one.run.exact["cosine"])


def test_hyper_optimisation_lowers_the_validation_loss_and_stops_by_the_rule(trial):
    for result in trial:
        losses = result.run.train["outer_loss"]
        assert min(losses) < losses[0]
        assert result.final["val_loss"] == pytest.approx(min(losses), rel=1e-5)
        assert result.iterations == len(losses) <= SETTINGS.max_hyper_iterations
        stopped_early = result.iterations < SETTINGS.max_hyper_iterations
        assert not stopped_early or result.iterations - 1 - result.best_iteration == SETTINGS.patience
        assert result.run.exact["iteration"][-1] == result.iterations - 1
        assert result.sizes == {"train": 18, "val": 36, "test": 60, "classes": 6}
    assert trial[0].baseline == trial[1].baseline  # the same subsets for every method


def test_unknown_setting_and_bad_method_are_named():
    with pytest.raises(ValueError, match=r"unknown task_interaction setting\(s\) \['hyper_lrr'\]"):
        TaskInteractionSettings.from_dict({"hyper_lrr": 1.0})
    with pytest.raises(ValueError, match="option K=13 is larger than the number of lower-level steps T=12"):
        run_task_interaction(
            paired_classes(12), paired_classes(2), "synthetic", SETTINGS, {"name": "krmd", "K": 13}, 0, print
        )
