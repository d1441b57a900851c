"""The toy problem of sec. 4.1: the engine's K-RMD on it agrees with the closed forms (w_T, h_{T-K},
d_lam f), the hand-written step is gradient descent on g, and the bound (10) holds everywhere."""

import numpy as np
import pytest
import torch

from truncback.experiments.toy.settings import ToySettings
from truncback.experiments.toy.problem import ToyProblem, bilevel_problem, inner_loss
from truncback.hypergrad import BilevelProblem, gradient_descent, krmd, rmd

T, GAMMA = 100, 0.1


def random_lam(rng, scale=3.0):
    return scale * (2 * torch.rand(2, generator=rng, dtype=torch.float64) - 1)


@pytest.mark.parametrize("objective", ["f", "f_tilde"])
@pytest.mark.parametrize("K", [0, 1, 2, 17, T])
def test_engine_krmd_equals_the_closed_form(rng, objective, K):
    lam = random_lam(rng)
    h, info = krmd(bilevel_problem(T, GAMMA, objective), lam, K=K, return_info=True)
    closed = ToyProblem(T, GAMMA, objective)
    np.testing.assert_allclose(h.numpy(), closed.truncated(lam.numpy(), K), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(info.final_state.numpy(), closed.final_state(lam.numpy()), rtol=1e-12)
    assert info.outer_loss == pytest.approx(float(closed.value(lam.numpy())), rel=1e-12)


@pytest.mark.parametrize("objective", ["f", "f_tilde"])
def test_engine_rmd_is_the_exact_hypergradient(rng, objective):
    lam = random_lam(rng)
    exact = ToyProblem(T, GAMMA, objective).exact(lam.numpy())
    np.testing.assert_allclose(rmd(bilevel_problem(T, GAMMA, objective), lam).numpy(), exact, rtol=1e-10, atol=1e-12)


def test_the_step_is_gradient_descent_on_g(rng):
    lam = random_lam(rng)
    handwritten = bilevel_problem(T, GAMMA, "f")
    generic = BilevelProblem(
        init=handwritten.init, step=gradient_descent(inner_loss, GAMMA), outer=handwritten.outer, T=T
    )
    for K in (1, 9):
        torch.testing.assert_close(krmd(handwritten, lam, K=K), krmd(generic, lam, K=K), rtol=1e-12, atol=1e-14)


def test_truncation_error_lies_under_the_bound_of_eq_10_on_a_grid():
    closed = ToyProblem(T, GAMMA, "f")
    axis = np.linspace(-3, 3, 13)
    lam = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
    exact = closed.exact(lam)
    for K in range(T + 1):
        error = np.linalg.norm(closed.truncated(lam, K) - exact, axis=-1)
        assert np.all(error <= closed.bound(lam, K) + 1e-12)


def test_f_has_no_direct_term_and_f_tilde_has_one():
    lam = np.array([0.3, -0.7])
    np.testing.assert_array_equal(ToyProblem(T, GAMMA, "f").truncated(lam, 0), [0.0, 0.0])
    np.testing.assert_allclose(ToyProblem(T, GAMMA, "f_tilde").truncated(lam, 0), 10 * (lam - [1.0, 0.0]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"objective": "g"}, "objective='g' is unknown"),
        ({"gamma": 1.5}, "gamma must lie in (0, 1/beta]"),
        ({"T": 0}, "T must be a positive int"),
    ],
)
def test_bad_problem_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[").replace("]", r"\]")):
        ToyProblem(**{"T": T, "gamma": GAMMA, **kwargs})


SETTINGS = {
    "T": 10,
    "gamma": 0.1,
    "bound_point": [1, 1],
    "start": [0, 1],
    "hyper_iterations": 5,
    "K_values": [1, 10],
    "first_step_norm": 0.6,
    "ratio_iterations": 3,
    "grid_extent": 1.0,
    "grid_points": 5,
    "optimum_starts": 2,
    "optimum_iterations": 3,
    "optimum_rate": 0.02,
}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"bogus": 1}, r"unknown toy setting\(s\) \['bogus'\]"),
        ({"K_values": [2, 5]}, "must include 1"),
        ({"K_values": [1, 11]}, r"lie in \[1, T=10\]"),
        ({"ratio_iterations": 7}, r"ratio_iterations=7 must lie in \[1, hyper_iterations \+ 1 = 6\]"),
    ],
)
def test_bad_toy_settings_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        ToySettings.from_dict({**SETTINGS, **change})
