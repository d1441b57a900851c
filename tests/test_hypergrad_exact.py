"""Exact methods against exact references: the toy's closed form (sec. 4.1) and plain autograd
through the unrolled loop on a non-quadratic problem; K-RMD against the bound (10) of Prop. 3.1."""

import pytest
import torch
from torch.utils._pytree import tree_leaves

from hypergrad_problems import TOY_GAMMA, TOY_T, toy_exact, toy_problem, weighted_logistic_problem
from truncback.hypergrad import checkpointed, fmd, krmd, krmd_all_depths, rmd, unrolled
from truncback.hypergrad.reference import unrolled_autograd


def relative_error(estimate, reference):
    est, ref = (
        torch.cat([x.flatten() for x in tree_leaves(estimate)]),
        torch.cat([x.flatten() for x in tree_leaves(reference)]),
    )
    return float((est - ref).norm() / ref.norm())


EXACT_METHODS = {
    "rmd": rmd,
    "unrolled": unrolled,
    "checkpointed": checkpointed,
    "fmd": fmd,
    "krmd(T)": lambda problem, lam: krmd(problem, lam, problem.T),
}


@pytest.mark.parametrize("name", EXACT_METHODS)
def test_exact_methods_match_the_toy_closed_form(name, rng):
    problem = toy_problem()
    for _ in range(3):
        lam = 3 * torch.randn(2, generator=rng, dtype=torch.float64)
        exact, _ = toy_exact(lam)
        assert relative_error(EXACT_METHODS[name](problem, lam), exact) < 1e-10


def test_truncation_error_obeys_the_bound_of_prop_3_1_and_decreases_with_K(rng):
    problem = toy_problem()
    alpha, m_b = 0.5, TOY_GAMMA  # g is 1/2-strongly convex; B_t = gamma G so ||B_t|| = gamma
    for lam in (torch.ones(2, dtype=torch.float64), 3 * torch.randn(2, generator=rng, dtype=torch.float64)):
        exact, grad_w = toy_exact(lam)
        path = krmd_all_depths(problem, lam)
        for K in (0, 1, 2, 7, 30, TOY_T):
            assert torch.allclose(krmd(problem, lam, K), path[K], rtol=1e-13, atol=1e-15)
        errors = [float((h - exact).norm()) for h in path]
        for K, error in enumerate(errors):
            bound = (1 - TOY_GAMMA * alpha) ** K / (TOY_GAMMA * alpha) * float(grad_w.norm()) * m_b
            assert error <= bound * (1 + 1e-12), f"K={K}: error {error} above bound {bound}"
        assert all(later < earlier for earlier, later in zip(errors[:-1], errors[1:]) if earlier > 1e-12)
        assert errors[-1] < 1e-12 * float(exact.norm())


def test_exact_methods_match_unrolled_autograd_on_a_non_quadratic_problem(rng):
    problem, hparams = weighted_logistic_problem(rng)
    reference = unrolled_autograd(problem, hparams)
    assert all(float(x.abs().max()) > 0 for x in tree_leaves(reference))
    for name, method in EXACT_METHODS.items():
        estimate = method(problem, hparams)
        for est, ref in zip(tree_leaves(estimate), tree_leaves(reference)):
            assert est.shape == ref.shape
            assert float((est - ref).abs().max()) <= 1e-9 * max(1.0, float(ref.abs().max())), name


def test_krmd_depth_zero_is_the_direct_gradient_and_truncation_drops_the_initialisation(rng):
    problem, hparams = weighted_logistic_problem(rng, T=6)
    direct = krmd(problem, hparams, 0)
    expected_direct = 0.02 * hparams[0]
    assert torch.allclose(direct[0], expected_direct, rtol=1e-12, atol=0)
    assert float(direct[2].abs().max()) == 0.0  # w_0 enters f only through the dynamics
    h_partial = krmd(problem, hparams, problem.T - 1)
    assert float((h_partial[2] - rmd(problem, hparams)[2]).abs().max()) > 1e-6


def test_float32_follows_the_inputs(rng):
    """The hypergradient keeps the inputs' float32 (the device case needs a GPU: the engine only
    combines tensors derived from the inputs, so it follows their device too)."""
    problem = toy_problem(dtype=torch.float32)
    lam = torch.randn(2, generator=rng).float()
    exact, _ = toy_exact(lam.double())
    for method in (rmd, fmd, checkpointed):
        h = method(problem, lam)
        assert h.dtype == torch.float32
        assert relative_error(h.double(), exact) < 1e-5


def test_module_parameters_as_state_through_functional_call(rng):
    """An nn.Module's parameter dict is the state; lam scales an L2 penalty per parameter tensor."""
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).double()
    x = torch.randn(10, 3, generator=rng, dtype=torch.float64)
    y = torch.randn(10, 1, generator=rng, dtype=torch.float64)
    params = {k: v.detach() for k, v in net.named_parameters()}

    def inner(p, lam):
        fit = torch.mean((torch.func.functional_call(net, p, (x,)) - y) ** 2)
        return fit + sum(torch.exp(log_weight) * torch.sum(v**2) for log_weight, v in zip(lam, p.values()))

    from truncback.hypergrad import BilevelProblem, gradient_descent

    problem = BilevelProblem(
        init=lambda lam: dict(params),
        step=gradient_descent(inner, 0.1),
        outer=lambda p, lam: torch.mean((torch.func.functional_call(net, p, (x[:5],)) - 1) ** 2),
        T=8,
    )
    lam = -torch.rand(4, generator=rng, dtype=torch.float64)
    reference = unrolled_autograd(problem, lam)
    assert relative_error(rmd(problem, lam), reference) < 1e-10
    assert relative_error(fmd(problem, lam), reference) < 1e-10


def test_unrolled_holds_every_state_and_reports_the_same_loss_and_final_state(rng):
    problem, hparams = weighted_logistic_problem(rng)
    _, reference = rmd(problem, hparams, return_info=True)
    _, info = unrolled(problem, hparams, return_info=True)
    assert info.states_held == problem.T + 1 and info.alpha_norms == []
    assert abs(info.outer_loss - reference.outer_loss) <= 1e-12
    for a, b in zip(tree_leaves(info.final_state), tree_leaves(reference.final_state), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
        assert not a.requires_grad


def test_exact_methods_on_the_compiled_forward_match_the_closed_form_and_unrolled_autograd(rng):
    """The fast path (torch.compile'd graph-free forward) at float64: the toy's closed form at 1e-10,
    and unrolled autograd through the plain step at 1e-9 on a hypercleaning-like problem whose step
    size follows a schedule (a new rate every step must not recompile or change the result)."""
    from truncback.hypergrad.synthetic import hypercleaning_parts
    from truncback.hypergrad import BilevelProblem, gradient_descent

    toy = toy_problem(compile=True)
    for _ in range(2):
        lam = 3 * torch.randn(2, generator=rng, dtype=torch.float64)
        for name, method in EXACT_METHODS.items():
            assert relative_error(method(toy, lam), toy_exact(lam)[0]) < 1e-10, name
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the benchmark problem's tensors follow the default dtype
    try:
        parts, lam = hypercleaning_parts(12, n_train=40, n_val=30, seed=1)
        lam = lam + 0.3 * torch.randn(lam.shape, generator=rng, dtype=torch.float64)

        def schedule(lam, t):
            return 0.5 / (1 + t)

        fast = BilevelProblem(parts.init, gradient_descent(parts.inner, schedule, compile=True), parts.outer, parts.T)
        plain = BilevelProblem(parts.init, gradient_descent(parts.inner, schedule), parts.outer, parts.T)
        reference = unrolled_autograd(plain, lam)
        for name, method in {**EXACT_METHODS, "krmd(4)": lambda problem, lam: krmd(problem, lam, 4)}.items():
            expected = reference if name != "krmd(4)" else krmd(plain, lam, 4)
            assert relative_error(method(fast, lam), expected) < 1e-9, name
    finally:
        torch.set_default_dtype(previous)


def test_compiled_pullback_differentiates_a_step_size_that_is_a_hyperparameter(rng):
    """The compiled reverse product with the step size a function of lam (exp of one leaf, over a
    schedule in t): every exact method at float64 against unrolled autograd through the plain step."""
    from truncback.hypergrad import BilevelProblem, gradient_descent

    def randn(*shape):
        return torch.randn(*shape, generator=rng, dtype=torch.float64)

    x, y, x_val, y_val = randn(30, 4), randn(30), randn(20, 4), randn(20)

    def inner(w, lam):
        return torch.mean(torch.sigmoid(lam["weights"]) * torch.log1p(torch.exp(-y * (x @ w))))

    def step_size(lam, t):
        return torch.exp(lam["log_lr"]) / (1 + 0.1 * t)

    def bilevel(compile):
        return BilevelProblem(
            lambda lam: 0.1 * lam["w0"],
            gradient_descent(inner, step_size, compile),
            lambda w, lam: torch.sum((x_val @ w - y_val) ** 2),
            T=10,
        )

    lam = {"weights": randn(30), "log_lr": torch.tensor(0.2, dtype=torch.float64), "w0": randn(4)}
    reference = unrolled_autograd(bilevel(False), lam)
    assert float(reference["log_lr"].abs()) > 1e-3, "the step size must matter for this test"
    for name, method in {**EXACT_METHODS, "krmd(3)": lambda problem, lam: krmd(problem, lam, 3)}.items():
        expected = reference if name != "krmd(3)" else krmd(bilevel(False), lam, 3)
        assert relative_error(method(bilevel(True), lam), expected) < 1e-9, name


def test_compiled_steps_sharing_an_inner_loss_compile_once_and_stay_exact(rng):
    """Problems that differ only in their data (Omniglot's tasks) share one compilation: a second
    problem with new tensors of the same shapes adds no compiled graph, and both match the eager step."""
    from torch._dynamo.utils import counters

    from truncback.hypergrad import BilevelProblem, gradient_descent

    def inner(w, lam, x, y):
        return torch.sum((x @ w - y) ** 2) + torch.sum(torch.exp(lam) * w**2)

    def problem(x, y, compile):
        return BilevelProblem(
            lambda lam: torch.zeros(3, dtype=torch.float64),
            gradient_descent(inner, 0.01, compile, data=(x, y)),
            lambda w, lam: torch.sum(w**2),
            T=6,
        )

    lam = torch.randn(3, generator=rng, dtype=torch.float64)
    graphs = []
    for _ in range(2):
        x, y = torch.randn(5, 3, generator=rng, dtype=torch.float64), torch.randn(5, generator=rng, dtype=torch.float64)
        compiled = rmd(problem(x, y, True), lam)
        graphs.append(counters["stats"]["unique_graphs"])
        assert relative_error(compiled, rmd(problem(x, y, False), lam)) < 1e-12
    assert graphs[1] == graphs[0], "the second problem recompiled"


def test_more_inner_losses_than_dynamos_recompile_limit_all_run_compiled(rng):
    """Dynamo keeps at most ``recompile_limit`` programs per code object and runs the rest eagerly,
    silently: each inner-loss function's compiled step must have a code object of its own, so that a
    process building many problems (a sweep, the benchmark) keeps compiling them. Each problem's
    K-RMD call makes new graphs and matches the eager step. The limit is lowered to 2 here, so that
    three inner losses exceed it (fewer compilations; inductor's cache is cold on a fresh machine)."""
    from torch._dynamo.utils import counters

    from truncback.hypergrad import BilevelProblem, gradient_descent

    x = torch.randn(20, 3, generator=rng, dtype=torch.float64)
    lam = torch.rand(3, generator=rng, dtype=torch.float64)

    def problem(scale, compile):
        def inner(w, lam):
            return scale * torch.sum((x @ w - 1) ** 2) + torch.sum(lam * w**2)

        return BilevelProblem(
            lambda lam: torch.zeros(3, dtype=torch.float64),
            gradient_descent(inner, 0.01, compile),
            lambda w, lam: torch.sum(w**2),
            T=3,
        )

    limit = 2
    with torch._dynamo.config.patch(recompile_limit=limit):
        for scale in range(1, limit + 2):
            graphs = counters["stats"]["unique_graphs"]
            compiled = krmd(problem(scale, True), lam, 1)
            assert counters["stats"]["unique_graphs"] > graphs, f"inner loss {scale} ran eagerly"
            assert relative_error(compiled, krmd(problem(scale, False), lam, 1)) < 1e-12
