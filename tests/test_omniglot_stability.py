"""The stability measurements behind gamma's bound and rho's floor (docs/measurements/omniglot_stability.md):
the Lanczos curvature estimate against a dense eigendecomposition, the lower-level measurements against
closed forms on a quadratic problem, the command on fixture data, and the defaults' bound at the smoke
network."""

import math

import pytest
import torch

from experiment_data import omniglot_arrays
from truncback.experiments.omniglot.model import initial_hyperparameters
from truncback.experiments.omniglot.settings import OmniglotSettings
from truncback.experiments.omniglot.stability import (
    extreme_eigenvalues,
    lower_level,
    main,
    omniglot_at,
    omniglot_tasks,
)
from truncback.hypergrad import BilevelProblem, gradient_descent
from truncback.runtime.determinism import configure_torch, derive_seed, write_npz


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    configure_torch(1)


@pytest.fixture(scope="module")
def omniglot(tmp_path_factory):
    return omniglot_arrays(tmp_path_factory.mktemp("omniglot"))


def symmetric(eigenvalues, seed=0):
    generator = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(
        torch.randn(len(eigenvalues), len(eigenvalues), generator=generator, dtype=torch.float64)
    )
    return basis @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ basis.T


def test_lanczos_finds_the_extreme_eigenvalues_of_a_tree_shaped_quadratic():
    spectrum = [-3.0, -1.0] + [0.1 * k for k in range(20)] + [7.5]
    A = symmetric(spectrum)

    def loss(w):
        x = torch.cat([w["a"].reshape(-1), w["b"]])
        return 0.5 * x @ A @ x  # a tree input; the Hessian is A everywhere

    w = {"a": torch.zeros(4, 5, dtype=torch.float64), "b": torch.zeros(3, dtype=torch.float64)}
    lowest, highest = extreme_eigenvalues(loss, w, steps=23)
    assert lowest == pytest.approx(-3.0, abs=1e-8) and highest == pytest.approx(7.5, abs=1e-8)
    low, high = extreme_eigenvalues(loss, w, steps=10)  # fewer steps: bounds from inside the spectrum
    assert -3.0 - 1e-9 <= low and high <= 7.5 + 1e-9


def test_lower_level_measurements_match_the_closed_forms_of_a_quadratic():
    """g = 1/2 (w - lam)^T G (w - lam), G = diag(4, 1), f = 1/2 ||w||^2, w_0 = 0: A = I - gamma G for every
    step, so growth = ||A^T ... A^T w_T|| / ||w_T||, beta = 4 everywhere and g(w_T) / g(w_0) is (1 - gamma G)^2T."""
    G = torch.diag(torch.tensor([4.0, 1.0], dtype=torch.float64))
    gamma, T = 0.1, 6
    problem = BilevelProblem(
        init=lambda lam: torch.zeros(2, dtype=torch.float64),
        step=gradient_descent(lambda w, lam: 0.5 * (w - lam) @ G @ (w - lam), gamma),
        outer=lambda w, lam: 0.5 * w @ w,
        T=T,
    )
    lam = torch.tensor([1.0, 2.0], dtype=torch.float64)
    measured = lower_level(problem, lam, gamma, steps=2)
    contraction = torch.diag(1 - gamma * torch.diag(G))
    w_T = (torch.eye(2, dtype=torch.float64) - torch.linalg.matrix_power(contraction, T)) @ lam
    adjoint = torch.linalg.matrix_power(contraction, T) @ w_T
    assert measured["gamma_beta_0"] == pytest.approx(0.4) and measured["gamma_beta_path"] == pytest.approx(0.4)
    assert (measured["lowest_0"], measured["highest_0"]) == (pytest.approx(1.0), pytest.approx(4.0))
    assert measured["growth"] == pytest.approx(float(adjoint.norm() / w_T.norm()), rel=1e-12)
    residual = torch.linalg.matrix_power(contraction, T) @ lam  # w_T - lam
    ratio = float(residual @ G @ residual) / float(lam @ G @ lam)
    assert measured["loss_ratio"] == pytest.approx(ratio, rel=1e-12)
    d_lam = (torch.eye(2, dtype=torch.float64) - torch.linalg.matrix_power(contraction, T)) @ w_T
    assert measured["hypergradient_norm"] == pytest.approx(float(d_lam.norm()), rel=1e-12)


def test_the_default_bound_keeps_the_smoke_lower_level_inside_gamma_beta_below_one(omniglot):
    """At gamma = 0.99 gamma_max and rho at its floor, on the smoke scale's network (4 filters, 3-way,
    T = 30), gamma beta stays below 1 along the lower-level path and the reverse pass does not blow up."""
    settings = OmniglotSettings.from_dict(
        {"ways": 3, "query_per_class": 2, "meta_train_classes": 10, "filters": 4, "T": 30}
    )
    corner = OmniglotSettings.from_dict(
        {
            **{k: getattr(settings, k) for k in ("ways", "query_per_class", "meta_train_classes", "filters", "T")},
            "init_gamma": 0.99 * settings.gamma_max,
            "init_rho": settings.rho_min + 1e-3,
        }
    )
    lam = initial_hyperparameters(
        corner.filters,
        corner.ways,
        corner.batch_norm,
        corner.init_rho,
        corner.init_gamma,
        corner.constraints(),
        derive_seed("omniglot", 0, 0),
        torch.float64,
    )
    rows = omniglot_at(lam, omniglot_tasks(*omniglot, corner, 2), corner, steps=15)
    assert all(row["gamma_beta_path"] < 1 and math.isfinite(row["hypergradient_norm"]) for row in rows)
    assert all(row["growth"] < 10 and row["loss_ratio"] < 1 for row in rows)


def test_the_command_writes_the_measurement_page(omniglot, tmp_path):
    background, evaluation = tmp_path / "background.npz", tmp_path / "evaluation.npz"
    for path, arrays in zip((background, evaluation), omniglot):
        write_npz(path, **arrays)
    output = tmp_path / "measurements" / "stability.md"
    settings = '{"ways": 3, "query_per_class": 2, "meta_train_classes": 10, "filters": 4, "T": 4}'
    variants = (
        '[{"name": "unbounded", "settings": {"gamma_max": 1e9, "rho_min": 0.0, "init_gamma": 0.1}},'
        ' {"name": "static", "settings": {}, "train": false}]'
    )
    argv = ["--background", str(background), "--evaluation", str(evaluation), "--settings", settings]
    argv += ["--variants", variants, "--tasks", "2", "--iterations", "2", "--steps", "5", "--output", str(output)]
    assert main(argv) == 0
    page = output.read_text()
    assert "python -m truncback.experiments.omniglot.stability --background background.npz" in page
    rows = [line for line in page.splitlines() if line.startswith(("| unbounded |", "| static |"))]
    # at the initial lam: both; the meta-training row (2 iterations); at the final lam: the trained one
    assert len(rows) == 4 and rows[2].startswith("| unbounded | 2 |")
