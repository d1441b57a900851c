"""The one-shot bilevel problem of sec. 4.3 and the depth study of Fig. 7 plot 4 on small instances."""

import math

import numpy as np
import pytest
import torch
from torch.utils._pytree import tree_leaves, tree_map

from truncback.runtime.determinism import configure_torch, write_npz
from truncback.experiments.omniglot.depth import depth_study, geometric_fit, rho_in_effect, with_regulariser_in_effect
from truncback.experiments.omniglot.model import (
    Constraints,
    adapted_names,
    flat_hyperparameters,
    forward,
    initial_hyperparameters,
    nested_hyperparameters,
    one_shot_problem,
    regulariser,
)
from truncback.experiments.omniglot.tasks import Task
from truncback.hypergrad.reference import unrolled_autograd
from truncback.hypergrad import dynamics, krmd_all_depths, krmd, rmd, trees


BOUNDS = Constraints(gamma_max=0.5, rho_min=0.01)
"""Bounds well away from the values these small synthetic problems start at."""


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread, as the pipeline runs (several threads on a loaded machine are much slower)."""
    configure_torch(1)


def random_task(generator, dtype=torch.float64, ways=5, query=2) -> Task:
    return Task(
        torch.rand(ways, 1, 28, 28, generator=generator, dtype=dtype),
        torch.arange(ways),
        torch.rand(ways * query, 1, 28, 28, generator=generator, dtype=dtype),
        torch.arange(ways).repeat_interleave(query),
    )


@pytest.mark.parametrize("batch_norm", [True, False])
def test_hyperparameters_and_network_shapes(batch_norm):
    lam = initial_hyperparameters(
        filters=6, ways=5, batch_norm=batch_norm, init_rho=0.5, init_gamma=0.2, constraints=BOUNDS, seed=1
    )
    names = ["l3.weight", "l4.weight", "head.weight", "head.bias"]
    if not batch_norm:
        names = ["l3.weight", "l3.bias", "l4.weight", "l4.bias", "head.weight", "head.bias"]
    assert adapted_names(lam["c"]) == names
    assert torch.allclose(BOUNDS.rho(lam), torch.full((len(names),), 0.5))
    assert math.isclose(float(BOUNDS.gamma(lam)), 0.2, rel_tol=1e-6)
    assert lam["l2"]["weight"].shape == (6, 6, 3, 3)
    logits = forward(torch.rand(7, 1, 28, 28), lam["c"], lam, batch_norm)
    assert logits.shape == (7, 5)
    again = initial_hyperparameters(6, 5, batch_norm, 0.5, 0.2, BOUNDS, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(tree_leaves(lam), tree_leaves(again)))


@pytest.mark.parametrize("batch_norm", [True, False])
def test_saved_hyperparameters_round_trip_through_the_file_in_the_order_rho_pairs_with(tmp_path, batch_norm):
    """The depth study reloads the full-RMD run's lam from the .npz the run wrote, whose arrays are
    stored sorted ("c.head..." before "c.l3..."): the reloaded lam must pair each rho_j with the same
    layer as the trained one (theta_rho is matched to c by position), or the regulariser changes."""
    lam = initial_hyperparameters(4, 3, batch_norm, 0.5, 0.2, BOUNDS, seed=0, dtype=torch.float64)
    lam["theta_rho"] = torch.linspace(-2.0, 1.0, len(lam["theta_rho"]), dtype=torch.float64)
    write_npz(tmp_path / "hparams.npz", **flat_hyperparameters(lam))
    like = initial_hyperparameters(4, 3, batch_norm, 0.1, 0.1, BOUNDS, seed=5, dtype=torch.float64)
    with np.load(tmp_path / "hparams.npz") as saved:
        back = nested_hyperparameters(dict(saved), like=like, dtype=torch.float64)
    assert adapted_names(back["c"]) == adapted_names(lam["c"])
    assert [name for name in flat_hyperparameters(back)] == [name for name in flat_hyperparameters(lam)]
    for name, array in flat_hyperparameters(back).items():
        assert np.array_equal(array, flat_hyperparameters(lam)[name]), name
    generator = torch.Generator().manual_seed(0)
    w = tree_map(lambda c: c + torch.rand(c.shape, generator=generator, dtype=c.dtype), lam["c"])
    assert torch.equal(regulariser(w, back, False, 0.01), regulariser(w, lam, False, 0.01))


def test_saved_hyperparameters_of_another_network_are_refused_by_name():
    lam = initial_hyperparameters(4, 3, True, 0.5, 0.2, BOUNDS, seed=0)
    flat = flat_hyperparameters(lam)
    flat["c.l5.weight"] = flat.pop("c.l4.weight")
    with pytest.raises(ValueError, match=r"missing \['c.l4.weight'\], unexpected \['c.l5.weight'\]"):
        nested_hyperparameters(flat, like=lam)


def test_every_hyperparameter_gets_a_gradient_and_the_shared_layers_a_direct_one():
    generator = torch.Generator().manual_seed(0)
    lam = initial_hyperparameters(4, 5, True, 0.5, 0.1, BOUNDS, seed=0, dtype=torch.float64)
    problem = one_shot_problem(random_task(generator), T=3, batch_norm=True, constraints=BOUNDS)
    exact = rmd(problem, lam)
    for name, leaf in zip(flat_hyperparameters(lam), tree_leaves(exact)):
        assert float(leaf.abs().max()) > 0, f"d f / d {name} is zero"
    direct = krmd(problem, lam, 0)  # grad_lam f alone: nn(x; w_T, lam) depends on lambda_l1, lambda_l2
    assert float(direct["l1"]["weight"].abs().max()) > 0 and float(direct["l2"]["weight"].abs().max()) > 0
    assert float(direct["c"]["l3"]["weight"].abs().max()) == 0 and float(direct["theta_gamma"]) == 0


def test_without_regulariser_c_enters_only_through_w0_so_truncation_drops_its_whole_gradient():
    """With rho = 0, B_t has no c part for t >= 1; d f / d c is B_0 alpha_0 alone, which eq. (8)
    leaves out for every K < T."""
    generator = torch.Generator().manual_seed(1)
    lam = initial_hyperparameters(4, 5, True, 0.5, 0.1, BOUNDS, seed=0, dtype=torch.float64)
    problem = one_shot_problem(random_task(generator), T=4, batch_norm=True, constraints=BOUNDS, rho_zero=True)
    truncated, exact = krmd(problem, lam, 3), rmd(problem, lam)
    assert trees.norm(truncated["c"]) == 0 and trees.norm(exact["c"]) > 0
    assert trees.norm(truncated["theta_rho"]) == 0 and trees.norm(exact["theta_rho"]) == 0
    regularised = krmd(one_shot_problem(random_task(generator), 4, True, BOUNDS), lam, 3)
    assert trees.norm(regularised["c"]) > 0


def test_geometric_fit_recovers_the_rate_of_a_geometric_sequence():
    errors = [0.8 * 0.7**K for K in range(12)] + [0.0]
    fit = geometric_fit(errors)
    assert math.isclose(fit["rate"], 0.7, rel_tol=1e-9) and math.isclose(fit["r2"], 1.0)
    assert fit["depths"] == [0, 11]
    with pytest.raises(ValueError, match="at least two positive errors"):
        geometric_fit([0.5, 0.0, 0.0])


def test_with_regulariser_the_truncation_error_decays_geometrically_with_depth():
    """Prop. 3.1: g_S is strongly convex near w_T when rho is large enough, so the relative error of
    h_{T-K} falls geometrically with K; without the regulariser it falls far more slowly."""
    generator = torch.Generator().manual_seed(2)
    lam = initial_hyperparameters(
        4, 5, True, init_rho=1.0, init_gamma=0.1, constraints=BOUNDS, seed=0, dtype=torch.float64
    )
    study = depth_study(lam, [random_task(generator)], T=12, batch_norm=True, constraints=BOUNDS)
    positive, zero = study["rho_positive"], study["rho_zero"]
    errors = np.asarray(positive["mean"])
    assert np.all(np.diff(errors[:-1]) < 0)
    assert positive["fit"]["rate"] < 0.9 and positive["fit"]["r2"] > 0.95
    assert errors[-2] < 0.25 * errors[0]
    assert zero["fit"]["rate"] > positive["fit"]["rate"] + 0.05


def test_raising_rho_puts_the_regulariser_in_effect_and_the_decay_with_depth_appears():
    """A learnt rho gamma near 0 leaves the model in effect unregularised: rho > 0 and rho = 0 decay
    alike. Raised to rho* (where (1 - 2 gamma rho*)^T = 0.1), rho alone changes: gamma, c and the other
    hyperparameters stay, rho_j above rho* stays, and with rho > 0 the error now decays faster than
    with rho = 0."""
    generator = torch.Generator().manual_seed(2)
    T = 12
    lam = initial_hyperparameters(
        4, 5, True, init_rho=0.02, init_gamma=0.05, constraints=BOUNDS, seed=0, dtype=torch.float64
    )
    theta_rho = lam["theta_rho"].clone()
    theta_rho[0] = math.log(3.0 - BOUNDS.rho_min)  # one rho_j already above rho*
    lam = {**lam, "theta_rho": theta_rho}
    raised, floor = with_regulariser_in_effect(lam, BOUNDS, T)
    gamma = float(BOUNDS.gamma(lam))
    assert math.isclose((1 - 2 * gamma * floor) ** T, 0.1, rel_tol=1e-12) and floor == rho_in_effect(gamma, T)
    before, after = BOUNDS.rho(lam), BOUNDS.rho(raised)
    assert math.isclose(float(after[0]), 3.0, rel_tol=1e-12) and float(before[1]) < floor
    assert torch.allclose(after[1:], torch.full_like(after[1:], floor), rtol=1e-12, atol=0)
    assert float(BOUNDS.gamma(raised)) == gamma and all(raised[key] is lam[key] for key in lam if key != "theta_rho")
    task = [random_task(generator)]
    weak = depth_study(lam, task, T=T, batch_norm=True, constraints=BOUNDS)
    strong = depth_study(raised, task, T=T, batch_norm=True, constraints=BOUNDS)
    assert abs(weak["rho_positive"]["fit_without_c"]["rate"] - weak["rho_zero"]["fit_without_c"]["rate"]) < 0.03
    assert strong["rho_positive"]["fit_without_c"]["rate"] < strong["rho_zero"]["fit_without_c"]["rate"] - 0.08


def test_the_depth_study_reference_is_autograd_through_the_unrolled_loop():
    """The depth study measures every h_{T-K} against the last entry of one reverse pass; that entry
    (B_0 included) must be d_lam f, here computed independently by plain autograd."""
    generator = torch.Generator().manual_seed(3)
    lam = initial_hyperparameters(
        4, 3, True, init_rho=1.0, init_gamma=0.1, constraints=BOUNDS, seed=1, dtype=torch.float64
    )
    problem = one_shot_problem(random_task(generator, ways=3), T=5, batch_norm=True, constraints=BOUNDS)
    path, reference = krmd_all_depths(problem, lam), unrolled_autograd(problem, lam)
    error = trees.norm(trees.sub(path[-1], reference)) / trees.norm(reference)
    assert error < 1e-10
    assert trees.norm(trees.sub(path[0], reference)) / trees.norm(reference) > 1e-3  # K = 0 is not exact


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_parametrisation_keeps_gamma_below_its_bound_and_rho_above_its_floor(dtype):
    """gamma = gamma_max sigmoid(theta) <= gamma_max and rho = rho_min + exp(theta) >= rho_min for every
    theta, extremes included; strictly inside wherever sigmoid(theta) < 1 and exp(theta) > 0 in ``dtype``."""
    bounds = Constraints(gamma_max=0.006, rho_min=0.01)
    extremes = torch.tensor([-1e30, -1e4, -800.0, -100.0, -30.0, -1.0, 0.0, 1.0, 15.0, 30.0, 100.0, 1e4, 1e30])
    generator = torch.Generator().manual_seed(0)
    thetas = torch.cat([extremes, 50 * torch.randn(1000, generator=generator)]).to(dtype)
    gamma = bounds.gamma({"theta_gamma": thetas})
    rho = bounds.rho({"theta_rho": thetas})
    assert bool(torch.all((gamma >= 0) & (gamma <= bounds.gamma_max))) and bool(torch.all(rho >= bounds.rho_min))
    inside = thetas <= 15  # sigmoid(theta) < 1 in float32 and float64
    assert bool(torch.all(gamma[inside] < bounds.gamma_max))
    assert bool(torch.all(rho[thetas >= -20] > bounds.rho_min))  # exp(theta) above half an ulp of rho_min
    for value in (1e-9, 0.003, 0.0059999):
        assert float(bounds.gamma({"theta_gamma": torch.tensor(bounds.theta_gamma(value))})) == pytest.approx(value)
    for value in (0.010001, 1.0, 50.0):
        assert float(bounds.rho({"theta_rho": torch.tensor(bounds.theta_rho(value))})) == pytest.approx(value)
    for bad in (0.0, 0.006, 0.1):
        with pytest.raises(ValueError, match="must lie strictly between 0 and gamma_max=0.006"):
            bounds.theta_gamma(bad)
    with pytest.raises(ValueError, match="rho=0.01 must exceed rho_min=0.01"):
        bounds.theta_rho(0.01)
    with pytest.raises(ValueError, match="gamma_max=0.0 must be a positive number"):
        Constraints(0.0, 0.1)
    with pytest.raises(ValueError, match="rho_min=-1 must be a non-negative number"):
        Constraints(0.1, -1)


def test_the_exact_hypergradient_through_the_bounds_is_autograd_through_the_unrolled_loop_and_finite_differences():
    """Full RMD with gamma = gamma_max sigmoid(theta_gamma) and rho_j = rho_min + exp(theta_rho_j): equal to
    plain autograd through the unrolled loop (float64), and its theta components to central differences
    of f(w_T(lam), lam), which share no derivative code with either."""
    bounds = Constraints(gamma_max=0.05, rho_min=0.3)
    generator = torch.Generator().manual_seed(4)
    lam = initial_hyperparameters(4, 3, True, 0.8, 0.03, bounds, seed=2, dtype=torch.float64)
    lam["theta_rho"] = torch.tensor([-1.0, 0.5, 0.0, 1.5], dtype=torch.float64)
    problem = one_shot_problem(random_task(generator, ways=3), T=5, batch_norm=True, constraints=bounds)
    exact, reference = rmd(problem, lam), unrolled_autograd(problem, lam)
    assert trees.norm(trees.sub(exact, reference)) / trees.norm(reference) < 1e-10

    def f(hparams):
        w = dynamics.run(problem, hparams, dynamics.initial_state(problem, hparams), 0, problem.T)
        return float(problem.outer(w, hparams))

    step = 1e-5
    for name, index in [("theta_gamma", ()), *[("theta_rho", (j,)) for j in range(4)]]:
        plus, minus = dict(lam), dict(lam)
        plus[name], minus[name] = lam[name].clone(), lam[name].clone()
        plus[name][index] += step
        minus[name][index] -= step
        difference = (f(plus) - f(minus)) / (2 * step)
        assert float(exact[name][index]) == pytest.approx(difference, rel=1e-5, abs=1e-10), (name, index)
    assert abs(float(exact["theta_gamma"])) > 1e-6 and float(exact["theta_rho"].abs().min()) > 0
