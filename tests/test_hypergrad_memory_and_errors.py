"""Memory claims counted, not timed (K-RMD holds O(K) states whatever T is, checkpointing O(sqrt T)),
and bad arguments rejected with a ValueError naming them."""

import math
import weakref

import pytest
import torch

from hypergrad_problems import toy_problem
from truncback.hypergrad import BilevelProblem, aid_cg, aid_fp, checkpointed, fmd, fom, hypergradient, krmd, rmd, ufom


class CountingStep:
    """Wraps a step and records the largest number of its outputs alive at any call."""

    def __init__(self, step):
        self.step, self.alive, self.peak = step, weakref.WeakSet(), 0

    def __call__(self, w, lam, t):
        self.peak = max(self.peak, len(self.alive))
        out = self.step(w, lam, t)
        self.alive.add(out)
        return out


def counted(problem, T):
    step = CountingStep(problem.step)
    return BilevelProblem(problem.init, step, problem.outer, T), step


@pytest.mark.parametrize("K", [1, 5])
def test_krmd_holds_K_plus_one_states_whatever_T(K):
    lam = torch.ones(2, dtype=torch.float64)
    peaks, reported = [], []
    for T in (20, 80, 320):
        problem, step = counted(toy_problem(), T)
        _, info = krmd(problem, lam, K, return_info=True)
        peaks.append(step.peak)
        reported.append(info.states_held)
    assert peaks == [K + 1] * 3, peaks
    assert reported == [K + 1] * 3


def test_checkpointing_holds_order_sqrt_T_states_and_full_rmd_order_T():
    lam = torch.ones(2, dtype=torch.float64)
    for T in (16, 100, 400):
        problem, step = counted(toy_problem(), T)
        _, info = checkpointed(problem, lam, return_info=True)
        assert step.peak <= 2 * math.ceil(math.sqrt(T)) + 1, (T, step.peak)
        assert info.states_held <= 2 * math.ceil(math.sqrt(T)) + 1
        problem, step = counted(toy_problem(), T)
        rmd(problem, lam)
        assert step.peak == T


@pytest.mark.parametrize("method", [fom, lambda p, lam: ufom(p, lam, 1.0), lambda p, lam: aid_fp(p, lam, 5)])
def test_first_order_and_implicit_methods_hold_constant_state(method):
    lam = torch.ones(2, dtype=torch.float64)
    for T in (10, 40):
        problem, step = counted(toy_problem(), T)
        method(problem, lam)
        assert step.peak <= 3


def test_bad_arguments_raise_value_errors_naming_them():
    problem, lam = toy_problem(T=10), torch.ones(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="K must be >= 0"):
        krmd(problem, lam, -1)
    with pytest.raises(ValueError, match="K=11 is larger than .* T=10"):
        krmd(problem, lam, 11)
    with pytest.raises(ValueError, match="K must be an int"):
        krmd(problem, lam, 2.5)
    with pytest.raises(ValueError, match="K must be >= 0"):
        aid_cg(problem, lam, -3)
    for q in (0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="q must be a probability"):
            ufom(problem, lam, q)
    with pytest.raises(ValueError, match="chunk_size"):
        fmd(problem, lam, chunk_size=0)
    with pytest.raises(ValueError, match="every"):
        checkpointed(problem, lam, every=0)
    with pytest.raises(ValueError, match="method 'nope' is unknown"):
        hypergradient(problem, lam, "nope")
    with pytest.raises(ValueError, match="hparams: leaf 0 must be a floating-point tensor"):
        rmd(problem, torch.ones(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="T must be a non-negative int"):
        BilevelProblem(problem.init, problem.step, problem.outer, -1)


def test_mismatched_shapes_are_named():
    lam = torch.ones(2, dtype=torch.float64)
    toy = toy_problem(T=5)
    growing = BilevelProblem(toy.init, lambda w, lam, t: torch.cat([w, w]), toy.outer, 5)
    with pytest.raises(ValueError, match=r"step\(w, hparams, t\) output .* shape \(4,\), expected \(2,\)"):
        rmd(growing, lam)
    split = BilevelProblem(toy.init, lambda w, lam, t: (w, w), toy.outer, 5)
    with pytest.raises(ValueError, match="structure .* does not match the expected .*same nesting"):
        krmd(split, lam, 2)
    vector_outer = BilevelProblem(toy.init, toy.step, lambda w, lam: w**2, 5)
    with pytest.raises(ValueError, match=r"outer must return a scalar tensor, got \(2,\)"):
        rmd(vector_outer, lam)
