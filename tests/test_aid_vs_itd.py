"""The AID-vs-ITD companion experiment: its exact references checked against independent computations,
its raw results at smoke size, and the claims read from them."""

import math

import numpy as np
import pytest
import torch

from truncback.experiments.aid_vs_itd import problems
from truncback.experiments.aid_vs_itd.analysis import fitted_rate, iterations_to
from truncback.experiments.aid_vs_itd.run import compare
from truncback.experiments.aid_vs_itd.settings import AidVsItdSettings, spec_at
from truncback.hypergrad import rmd
from truncback.reproduction.claims import FAIL, NOT_RUN, PASS, aid_cg_fewest_iterations, aid_fp_itd_same_rate
from truncback.reproduction.evidence import Evidence

SMOKE = AidVsItdSettings.from_dict(
    {
        "iterations": [1, 5, 10, 20, 40],
        "ridge_features": 10,
        "ridge_train": 30,
        "ridge_val": 30,
        "mnist_train": 40,
        "mnist_val": 40,
    }
)


def tiny_images(count, rng):
    """Seeded 4x4 'images' with labels in 0..9: small enough for a dense Hessian of W (10 x 17)."""
    return rng.integers(0, 256, size=(count, 4, 4), dtype=np.uint8), rng.integers(0, 10, size=count)


def dense_implicit_gradient(inner, outer, w_star, lam):
    """d_lam f = -(d_lam grad_w g)^T H^{-1} grad_w f with H and the mixed derivative as dense matrices."""
    flat = w_star.reshape(-1)

    def inner_flat(v, lam_):
        return inner(v.reshape(w_star.shape), lam_)

    H = torch.func.hessian(inner_flat)(flat, lam)
    mixed = torch.func.jacrev(torch.func.grad(inner_flat), argnums=1)(flat, lam)
    grad_f = torch.func.grad(lambda v: outer(v.reshape(w_star.shape), lam))(flat)
    return -mixed.T @ torch.linalg.solve(H, grad_f)


@pytest.mark.parametrize("name", ["logistic", "hypercleaning"])
def test_the_newton_cg_reference_equals_a_dense_implicit_solve(name):
    images, labels = tiny_images(81, np.random.default_rng(3))
    case = getattr(problems, name)(SMOKE, images, labels)
    template = case.problem(1)
    dense = dense_implicit_gradient(template.step.inner_loss, template.outer, case.w_star, case.lam)
    assert case.reference["grad_w_g_norm"] <= SMOKE.reference_tolerance
    torch.testing.assert_close(case.exact, dense, rtol=1e-8, atol=1e-12)


def test_ridge_closed_form_is_the_limit_of_back_propagation_through_many_steps():
    case = problems.ridge(SMOKE)
    steps = math.ceil(math.log(1e-13) / math.log(case.rate_bound))
    torch.testing.assert_close(rmd(case.problem(steps), case.lam), case.exact, rtol=1e-9, atol=1e-12)


def test_from_the_solution_aid_cg_is_exact_after_as_many_iterations_as_weights():
    """On the quadratic, CG solves the d x d system in d iterations: k = 20 >= d = 10 at float64."""
    result, timing = compare(problems.ridge(SMOKE), SMOKE, log=lambda line: None)
    warm_cg = next(entry for entry in result["methods"]["warm"] if entry["spec"]["name"] == "aid_cg")
    assert max(warm_cg["error"][SMOKE.iterations.index(20) :]) < 1e-8
    cold = {entry["spec"]["name"]: entry["error"] for entry in result["methods"]["cold"]}
    assert all(b < a for a, b in zip(cold["rmd"], cold["rmd"][1:])), "ITD's error falls with t"
    assert set(timing["seconds"]) == {"cold", "warm"}


def test_spec_at_gives_aid_k_equal_to_t_and_caps_krmd():
    assert spec_at({"name": "aid_cg"}, 30) == {"name": "aid_cg", "K": 30}
    assert spec_at({"name": "aid_fp", "K": 5}, 30) == {"name": "aid_fp", "K": 5}
    assert spec_at({"name": "krmd", "K": 10}, 4) == {"name": "krmd", "K": 4}
    with pytest.raises(ValueError, match=r"aid_vs_itd methods\[0\].*unknown"):
        AidVsItdSettings.from_dict({"methods": [{"name": "newton"}]})


def test_iterations_to_and_fitted_rate_read_a_geometric_error():
    grid = list(range(0, 200, 10))
    errors = [0.9**t for t in grid]
    assert abs(fitted_rate(grid, errors) - 0.9) < 1e-12
    assert iterations_to(grid, errors, 1e-4) == 90  # 0.9^90 = 7.6e-5, 0.9^80 = 2.2e-4
    assert iterations_to([0, 1, 2, 3], [1.0, 1e-5, 1.0, 1e-5], 1e-4) == 3, "the first t from which it stays below"
    assert iterations_to([0, 1, 2], [1.0, 1e-5, 1.0], 1e-4) is None
    assert fitted_rate(grid[:2], errors[:2]) is None


def fake_result(cold: dict, warm: dict, grid=(10, 20, 30, 40, 50, 60)) -> dict:
    def entries(curves):
        return [
            {"spec": {"name": name}, "label": name, "display": name, "error": list(errors)}
            for name, errors in curves.items()
        ]

    return {
        "problem": "fake",
        "iterations": list(grid),
        "rate_bound": 0.9,
        "settings": {"tolerances": [1e-2, 1e-4]},
        "methods": {"cold": entries(cold), "warm": entries(warm)},
    }


def test_the_companion_claims_pass_and_fail_on_the_numbers_they_name():
    grid = (10, 20, 30, 40, 50, 60)
    geometric = [0.8**t for t in grid]
    faster = [0.5**t for t in grid]
    slower = [0.9**t for t in grid]
    good = fake_result(
        {"rmd": geometric, "aid_fp": geometric, "aid_cg": faster},
        {"rmd": geometric, "aid_fp": geometric, "aid_cg": faster},
    )
    assert aid_cg_fewest_iterations(Evidence("quick", aid_vs_itd=[good])).verdict == PASS
    assert aid_fp_itd_same_rate(Evidence("quick", aid_vs_itd=[good])).verdict == PASS
    bad = fake_result(
        {"rmd": faster, "aid_fp": slower, "aid_cg": geometric},
        {"rmd": geometric, "aid_fp": geometric, "aid_cg": faster},
    )
    assert aid_cg_fewest_iterations(Evidence("quick", aid_vs_itd=[bad])).verdict == FAIL
    verdict = aid_fp_itd_same_rate(Evidence("quick", aid_vs_itd=[bad]))
    assert verdict.verdict == FAIL and "0.50000" in verdict.evidence
    flat = fake_result(
        {"rmd": [0.5] * 6, "aid_fp": [0.5] * 6, "aid_cg": [0.5] * 6},
        {"rmd": [0.5] * 6, "aid_fp": [0.5] * 6, "aid_cg": [0.5] * 6},
    )
    assert aid_fp_itd_same_rate(Evidence("quick", aid_vs_itd=[flat])).verdict == NOT_RUN
    assert aid_cg_fewest_iterations(Evidence("quick")).verdict == NOT_RUN


def test_the_step_s_curvature_is_the_largest_eigenvalue_even_where_a_symmetric_start_misses_it():
    """g(w) = w^T A w / 2 with A = I + u u^T, u = (1, -1, 0, 0) orthogonal to the all-ones vector: A's
    largest eigenvalue 1 + |u|^2 = 3 lies along u, and from all ones (an eigenvector of eigenvalue 1)
    the iteration would stay at 1 in exact arithmetic, as it does with cross-entropy's class symmetry."""
    u = torch.tensor([1.0, -1.0, 0.0, 0.0], dtype=torch.float64)
    A = torch.eye(4, dtype=torch.float64) + torch.outer(u, u)

    def inner(w, lam):
        return 0.5 * w @ A @ w + 0.0 * lam.sum()

    found = problems.largest_curvature(inner, torch.zeros(4, dtype=torch.float64), torch.zeros(1, dtype=torch.float64))
    assert found == pytest.approx(float(torch.linalg.eigvalsh(A)[-1]), rel=1e-9)
    assert found == pytest.approx(3.0, rel=1e-9)
