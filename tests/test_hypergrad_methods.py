"""Methods as data: every spec of METHODS computes what its closed form on the toy problem says, bad
specs are named before anything runs, labels round-trip, the AID solvers are pluggable and CG refuses
an operator that is not positive definite."""

import pytest
import torch

from hypergrad_problems import TOY_G, TOY_GAMMA, TOY_T, toy_exact, toy_problem
from truncback.hypergrad import (
    METHODS,
    BilevelProblem,
    aid,
    conjugate_gradient,
    display_name,
    gradient_descent,
    hypergradient,
    is_exact,
    label,
    parse_spec,
    resolve,
)


def toy_closed_forms(lam, K):
    """On the toy, A = I - gamma G and B = gamma G are constant and B_0 = 0, so with g = grad_w f(w_T):
    h_{T-K} = (I - A^K) g (eq. 8), AID-FP with K iterations gives the same, AID-CG with K >= 2 (the
    dimension) solves (I - A) v = g exactly, so B v = g; FOM replaces every A by I: T gamma G g."""
    exact, g = toy_exact(lam)
    A = 1 - TOY_GAMMA * torch.tensor(TOY_G, dtype=lam.dtype)
    truncated = (1 - A**K) * g
    return {
        "rmd": exact,
        "unrolled": exact,
        "checkpointed": exact,
        "fmd": exact,
        "krmd": truncated,
        "aid_fp": truncated,
        "aid_cg": g,
        "fom": TOY_T * (1 - A) * g,
        "ufom": exact,
    }


SPECS = [
    {"name": "rmd"},
    {"name": "unrolled"},
    {"name": "checkpointed", "every": 7},
    {"name": "fmd"},
    {"name": "krmd", "K": 3},
    {"name": "aid_fp", "K": 3},
    {"name": "aid_cg", "K": 2},
    {"name": "fom"},
    {"name": "ufom", "q": 1.0},
]


def test_every_method_has_a_spec_under_test():
    assert sorted(spec["name"] for spec in SPECS) == sorted(METHODS)


@pytest.mark.parametrize("spec", SPECS, ids=label)
def test_each_spec_computes_its_closed_form_on_the_toy(spec, rng):
    lam = torch.randn(2, generator=rng, dtype=torch.float64)
    expected = toy_closed_forms(lam, spec.get("K", 0))[spec["name"]]
    h = hypergradient(toy_problem(), lam, spec, generator=rng)
    assert torch.allclose(h, expected, rtol=1e-10, atol=1e-12), (h, expected)


def test_a_name_with_keyword_options_is_the_same_spec(rng):
    lam = torch.randn(2, generator=rng, dtype=torch.float64)
    assert torch.equal(
        hypergradient(toy_problem(), lam, "krmd", K=4), hypergradient(toy_problem(), lam, {"name": "krmd", "K": 4})
    )


@pytest.mark.parametrize(
    "spec, T, message",
    [
        ({"name": "nope"}, None, r"method 'nope' is unknown; choose one of \['aid_cg'"),
        ({"name": "krmd"}, None, r"method 'krmd' needs option\(s\) \['K'\]"),
        ({"name": "krmd", "K": 1, "q": 0.5}, None, r"method 'krmd' takes no option\(s\) \['q'\]; its options: \['K'\]"),
        ({"name": "rmd", "K": 5}, None, r"method 'rmd' takes no option\(s\) \['K'\]; its options: none"),
        ({"name": "krmd", "K": 11}, 10, r"option K=11 is larger than the number of lower-level steps T=10"),
        ({"name": "krmd", "K": 2.0}, None, r"option K must be an int, got 2.0"),
        ({"name": "aid_cg", "K": -1}, None, r"option K must be >= 0, got K=-1"),
        ({"name": "ufom", "q": 0}, None, r"option q must be > 0.0, got q=0.0"),
        ({"name": "ufom", "q": 1.5}, None, r"option q must be <= 1.0, got q=1.5"),
        ({"K": 5}, None, r"a method spec is a dict with a 'name'"),
    ],
)
def test_a_bad_spec_is_named(spec, T, message):
    with pytest.raises(ValueError, match=message):
        resolve(spec, T)


def test_hypergradient_checks_K_against_the_problem():
    with pytest.raises(ValueError, match="K=11 is larger than the number of lower-level steps T=10"):
        hypergradient(toy_problem(T=10), torch.ones(2, dtype=torch.float64), {"name": "krmd", "K": 11})


@pytest.mark.parametrize(
    "spec, text, shown",
    [
        ({"name": "krmd", "K": 5}, "krmd-K5", "5-RMD"),
        ({"name": "rmd"}, "rmd", "Full RMD"),
        ({"name": "aid_cg", "K": 10}, "aid_cg-K10", "AID-CG (K=10)"),
        ({"name": "aid_cg", "K": 10, "tol": 1e-6}, "aid_cg-K10-tol1e-06", "AID-CG (K=10)"),
        ({"name": "ufom", "q": 0.2}, "ufom-q0.2", "UFOM (q=0.2)"),
        ({"name": "fom"}, "fom", "FOM"),
    ],
)
def test_labels_name_the_options_and_parse_back(spec, text, shown):
    assert label(spec) == text
    assert parse_spec(text) == resolve(spec)
    assert parse_spec(
        f'{{"name": "{spec["name"]}"' + "".join(f', "{k}": {v}' for k, v in spec.items() if k != "name") + "}"
    ) == resolve(spec)
    assert display_name(spec) == shown


def test_full_depth_krmd_is_exact_and_shown_as_full_rmd():
    assert is_exact({"name": "krmd", "K": 20}, T=20) and display_name({"name": "krmd", "K": 20}, T=20) == "Full RMD"
    assert not is_exact({"name": "krmd", "K": 5}, T=20) and not is_exact({"name": "aid_cg", "K": 50}, T=20)
    with pytest.raises(ValueError, match="'-nope3' does not start with an option of 'krmd'"):
        parse_spec("krmd-nope3")


def test_a_caller_solver_plugs_into_aid(rng):
    """A dense direct solve of (I - A) v = g, written here, gives the implicit gradient g exactly on the toy."""
    calls = []

    def direct(matvec, rhs, iterations, norms=None):
        calls.append(iterations)
        columns = torch.stack([matvec(e) for e in torch.eye(len(rhs), dtype=rhs.dtype)], dim=1)
        return torch.linalg.solve(columns, rhs)

    lam = torch.randn(2, generator=rng, dtype=torch.float64)
    _, g = toy_exact(lam)
    assert torch.allclose(aid(toy_problem(), lam, 7, solve=direct), g, rtol=1e-12)
    assert calls == [7]
    assert torch.allclose(aid(toy_problem(), lam, 2, solve=conjugate_gradient), g, rtol=1e-10)


def test_cg_stops_at_non_positive_curvature_instead_of_returning_garbage():
    """Gradient descent on a concave g: I - A = gamma * Hessian is negative definite."""
    H = torch.tensor([-1.0, -2.0], dtype=torch.float64)
    problem = BilevelProblem(
        init=lambda lam: torch.zeros(2, dtype=lam.dtype),
        step=gradient_descent(lambda w, lam: 0.5 * torch.sum(H * w * w) - w @ lam, 0.1),
        outer=lambda w, lam: torch.sum(torch.sin(w) ** 2),
        T=5,
    )
    lam = torch.tensor([1.0, -0.5], dtype=torch.float64)
    with pytest.raises(ValueError, match="conjugate gradient met non-positive curvature"):
        hypergradient(problem, lam, {"name": "aid_cg", "K": 2})
    assert torch.all(torch.isfinite(hypergradient(problem, lam, {"name": "aid_fp", "K": 2})))


@pytest.mark.parametrize("spec", SPECS, ids=label)
def test_alpha_norms_false_leaves_out_the_norms_and_nothing_else(spec, rng):
    """The harnesses read no alpha norm and ask for none: the same hypergradient, bit for bit, the same
    loss and states, and no per-step norm; the default still records them where a method has any."""
    problem, lam = toy_problem(), torch.randn(2, generator=rng, dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    with_norms, info = hypergradient(problem, lam, spec, return_info=True, generator=generator)
    generator = torch.Generator().manual_seed(0)
    without, lean = hypergradient(problem, lam, spec, return_info=True, alpha_norms=False, generator=generator)
    assert torch.equal(with_norms, without)
    assert (lean.outer_loss, lean.states_held) == (info.outer_loss, info.states_held)
    assert torch.equal(lean.final_state, info.final_state)
    assert lean.alpha_norms == []
    if spec["name"] in ("rmd", "checkpointed", "krmd", "aid_fp", "aid_cg", "ufom"):
        assert info.alpha_norms and all(norm > 0 for norm in info.alpha_norms)
