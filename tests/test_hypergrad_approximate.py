"""Approximate methods: AID (CG and fixed point) against the implicit gradient of a random strongly
convex quadratic; FOM and UFOM against the exact hypergradient."""

import torch

from hypergrad_problems import toy_exact, toy_problem
from truncback.hypergrad import BilevelProblem, aid_cg, aid_fp, fom, gradient_descent, krmd, rmd, ufom


RATE = 1.0 / 20.0


def random_quadratic_at_optimum(rng):
    """g(w, lam) = 1/2 w^T H w - w^T P lam with H SPD of random size M (eigenvalues 1..20), started at
    w* = H^-1 P lam and stepped with rate 1/20. f(w, lam) = 1/2 ||w - target||^2 + c^T lam.
    Implicit gradient: c + P^T H^-1 (w* - target)."""
    M = int(torch.randint(4, 13, (), generator=rng))
    N = int(torch.randint(2, 7, (), generator=rng))
    Q, _ = torch.linalg.qr(torch.randn(M, M, generator=rng, dtype=torch.float64))
    eigenvalues = torch.linspace(1.0, 20.0, M, dtype=torch.float64)
    H = Q @ torch.diag(eigenvalues) @ Q.T
    P = torch.randn(M, N, generator=rng, dtype=torch.float64)
    target = torch.randn(M, generator=rng, dtype=torch.float64)
    c = torch.randn(N, generator=rng, dtype=torch.float64)
    lam = torch.randn(N, generator=rng, dtype=torch.float64)
    problem = BilevelProblem(
        init=lambda lam: torch.linalg.solve(H, P @ lam),
        step=gradient_descent(lambda w, lam: 0.5 * w @ H @ w - w @ (P @ lam), RATE),
        outer=lambda w, lam: 0.5 * torch.sum((w - target) ** 2) + c @ lam,
        T=3,
    )
    w_star = torch.linalg.solve(H, P @ lam)
    implicit = c + P.T @ torch.linalg.solve(H, w_star - target)
    return problem, lam, implicit, M, (H, P, c, w_star - target)


def truncated_neumann_series(H, P, c, outer_gradient, K):
    """AID-FP after K iterations in closed form: c + P^T rate sum_{k<K} A^k grad_w f, with A = I - rate H
    (the step's Jacobian in w) and rate P its Jacobian in lam; the geometric sum is (I - A^K) (rate H)^-1."""
    identity = torch.eye(H.shape[0], dtype=H.dtype)
    A = identity - RATE * H
    return c + P.T @ ((identity - torch.linalg.matrix_power(A, K)) @ torch.linalg.solve(H, outer_gradient))


def test_aid_approaches_the_implicit_gradient_and_cg_is_exact_after_M_iterations(rng):
    """AID-FP is the truncated Neumann series, whose error is at most ||P|| 0.95^K ||H^-1 grad_w f||
    (A's eigenvalues lie in [0, 0.95]); it need not fall at every K, since P^T projects the error."""
    for _ in range(3):
        problem, lam, implicit, M, (H, P, c, outer_gradient) = random_quadratic_at_optimum(rng)
        scale = float(implicit.norm())
        cg_exact = aid_cg(problem, lam, M)
        assert float((cg_exact - implicit).norm()) <= 1e-8 * scale
        adjoint_norm = float(torch.linalg.solve(H, outer_gradient).norm())
        for K in (1, 10, 100, 1000):
            h = aid_fp(problem, lam, K)
            expected = truncated_neumann_series(H, P, c, outer_gradient, K)
            assert torch.allclose(h, expected, rtol=1e-10, atol=1e-12 * scale), K
            bound = float(torch.linalg.matrix_norm(P, ord=2)) * (1 - RATE) ** K * adjoint_norm
            assert float((h - implicit).norm()) <= bound * (1 + 1e-9) + 1e-13 * scale, K
        assert float((h - implicit).norm()) <= 1e-8 * scale  # K = 1000
        cg_errors = [float((aid_cg(problem, lam, K) - implicit).norm()) for K in (1, M // 2, M)]
        assert cg_errors[-1] < cg_errors[0]


def test_aid_fixed_point_equals_krmd_when_A_and_B_are_constant(rng):
    """On the toy (quadratic g), both give the order-K Taylor series of eq. (12)."""
    problem = toy_problem()
    lam = torch.randn(2, generator=rng, dtype=torch.float64)
    for K in (0, 1, 5, 40):
        assert torch.allclose(aid_fp(problem, lam, K), krmd(problem, lam, K), rtol=1e-12, atol=1e-14)


def test_aid_cg_far_past_convergence_stays_exact(rng):
    """Hundreds of iterations beyond M (the AID-vs-ITD comparison's k = t): once the residual is at
    rounding level the iterate stays, instead of failing on directions that underflow to zero."""
    for _ in range(3):
        problem, lam, implicit, M, _ = random_quadratic_at_optimum(rng)
        h = aid_cg(problem, lam, 400 * M)
        assert float((h - implicit).norm()) <= 1e-8 * float(implicit.norm())


def test_aid_cg_stops_early_at_the_tolerance(rng):
    problem, lam, implicit, M, _ = random_quadratic_at_optimum(rng)
    _, info = aid_cg(problem, lam, 10 * M, tol=1e-6, return_info=True)
    assert len(info.alpha_norms) <= M + 1
    assert info.alpha_norms[-1] <= 1e-6 * info.alpha_norms[0] * 100


def small_problem_with_curvature():
    """T = 1, lam = (w_0, b): w_1 = w_0 - 0.3 (H w_0 - b), f = ||sin w_1||^2. A = I - 0.3 H != I."""
    H = torch.tensor([[2.0, 0.3], [0.3, 1.0]], dtype=torch.float64)
    return BilevelProblem(
        init=lambda lam: lam[:2],
        step=lambda w, lam, t: w - 0.3 * (H @ w - lam[2:]),
        outer=lambda w, lam: torch.sum(torch.sin(w) ** 2),
        T=1,
    )


def test_ufom_is_unbiased(rng):
    """Each UFOM draw is FOM, or with probability q the corrected FOM + (exact - FOM) / q: so its mean
    is exact. Checked as such: every draw is one of the two values (exact from full RMD), the
    corrected one in a fraction of draws within 4 binomial standard errors of q, and the mean of the
    draws within 4 standard errors of the exact hypergradient and not of FOM."""
    problem = small_problem_with_curvature()
    lam = torch.randn(4, generator=rng, dtype=torch.float64)
    exact, first_order = rmd(problem, lam), fom(problem, lam)
    assert float((exact - first_order).norm()) > 1e-3  # otherwise the test could not fail
    q, n = 0.2, 4000
    corrected = first_order + (exact - first_order) / q
    samples = torch.stack([ufom(problem, lam, q, generator=rng) for _ in range(n)])
    is_corrected = (samples - corrected).norm(dim=1) <= 1e-12 * float(corrected.norm())
    is_first_order = (samples - first_order).norm(dim=1) <= 1e-12 * float(first_order.norm())
    assert bool((is_corrected | is_first_order).all())
    assert abs(float(is_corrected.double().mean()) - q) <= 4 * (q * (1 - q) / n) ** 0.5
    standard_error = samples.std(dim=0) / n**0.5
    assert torch.all((samples.mean(dim=0) - exact).abs() <= 4 * standard_error + 1e-12)
    assert torch.all((samples.mean(dim=0) - first_order).abs()[:2] > 4 * standard_error[:2])


def test_ufom_with_q_one_is_exact_and_fom_is_exact_only_without_curvature(rng):
    problem = small_problem_with_curvature()
    lam = torch.randn(4, generator=rng, dtype=torch.float64)
    assert torch.allclose(ufom(problem, lam, 1.0, generator=rng), rmd(problem, lam), rtol=1e-12)
    # Theory: FOM drops A_t = I - gamma Hessian, so it is exact iff the Hessian vanishes.
    slope = torch.tensor([1.0, -2.0], dtype=torch.float64)
    linear = BilevelProblem(
        init=lambda lam: lam[:2],
        step=lambda w, lam, t: w - 0.3 * (slope - lam[2:]),
        outer=lambda w, lam: torch.sum(torch.sin(w) ** 2),
        T=4,
    )
    assert torch.allclose(fom(linear, lam), rmd(linear, lam), rtol=1e-12)
    toy = toy_problem()
    toy_lam = torch.randn(2, generator=rng, dtype=torch.float64)
    exact, _ = toy_exact(toy_lam)
    assert float((fom(toy, toy_lam) - exact).norm()) > 0.1 * float(exact.norm())
