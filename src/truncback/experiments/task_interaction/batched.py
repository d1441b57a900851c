"""Task interaction's problems batched with explicit tensors: B trials' lower levels as one state
(W, b) of shapes (B, V, d) and (B, V), their hyperparameters (A, rho) as (B, V, V) and (B,), and every
step a handful of batched products (``torch.baddbmm``/``torch.bmm``) over the B members instead of B
small ones, with the step's vector-Jacobian product written out by hand.

What ``hypergrad.batched.ProblemFamily.batched`` builds for ``task_family`` (its ``explicit`` hook); the
generic batch (``torch.func.vmap`` over the members) computes the same numbers with the overhead of a
functional transform on every call, which at task interaction's sizes (V linear models on 512
features, a few hundred examples) is most of a step's time.

For one member, with P = softmax(x W^T + b) (n x V), Y the one-hot labels, R = (P - Y)/n and
C = coupling(A) (symmetric, zero diagonal), the lower level's gradient is

    grad_W g = R^T x + M W,   grad_b g = 1^T R,   M = 4 (diag(C 1) - C) + 2 rho I,

(M is the Hessian of the penalty sum_ij C_ij ||w_i - w_j||^2 + rho ||W||^2, a V x V matrix), and one
step is w' = w - lr grad_w g. For alpha = (U, u), with dZ = x U^T + u and
dR = (P (dZ - rowsum(P dZ)))/n (the softmax's Jacobian, elementwise products), the step's
vector-Jacobian products (eq. 5) are

    A^T alpha = (U - lr (dR^T x + M U),  u - lr 1^T dR)
    B^T alpha = (-lr sym(4 (m 1^T - U W^T) o O),  -2 lr sum(m)),   m_i = <U_i, W_i>,

with O the off-diagonal mask and sym(G) = (G + G^T)/2, the pull-back through C = sym(A) o O.
``tests/test_task_interaction_batched.py`` checks them against autograd, and the batch against each
member's unbatched problem.
"""

import torch


def _off_diagonal(V: int, like: torch.Tensor) -> torch.Tensor:
    return 1.0 - torch.eye(V, dtype=like.dtype, device=like.device)


def penalty_hessian(A: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """M = 4 (diag(C 1) - C) + 2 rho I of each member, C = coupling(A): (B, V, V) from A (B, V, V) and
    rho (B,)."""
    C = 0.5 * (A + A.transpose(1, 2)) * _off_diagonal(A.shape[1], A)
    return torch.diag_embed(4.0 * C.sum(2) + 2.0 * rho[:, None]) - 4.0 * C


def _logits(W, b, x):
    """x W^T + b of each member: (B, n, V)."""
    return torch.baddbmm(b.unsqueeze(1), x, W.transpose(1, 2))


def _softmax_columns_(Z: torch.Tensor, scale: float) -> torch.Tensor:
    """scale * softmax over dim 1 of Z (B, V, n), in place: torch's softmax kernel is slow over a short
    dimension such as CIFAR-10's V = 10 (a millisecond for 10 x 500 x 10 numbers on one core)."""
    Z.sub_(Z.amax(1, keepdim=True)).exp_()
    return Z.mul_(Z.sum(1, keepdim=True).reciprocal_().mul_(scale))


class BatchedTaskStep:
    """The gradient step of B task-interaction members on stacked data ``(x, y, x_val, y_val)``
    (module docstring): ``__call__`` in differentiable torch operations (torch.func and autograd go
    through it), ``without_graph`` and ``pullback`` the forward step and the hand-written
    vector-Jacobian products the reverse passes use (``hypergrad.dynamics``), ``with_graph`` for
    ``unrolled``. These two work on the transposed logits Z^T = W x^T + b (B, V, n), from x^T kept
    contiguous (the faster product on a CPU), and reuse M while lam is the same tensors."""

    def __init__(self, classes: int, lr: float, data: tuple):
        x, y = data[0], data[1]
        self.lr, self.x = float(lr), x
        self.x_t = x.transpose(1, 2).contiguous()
        self.scale = 1.0 / x.shape[1]
        self.target = torch.nn.functional.one_hot(y, classes).to(x.dtype) * self.scale
        self.target_t = self.target.transpose(1, 2).contiguous()
        self.off_diagonal = _off_diagonal(classes, x)
        self._hessian: tuple = ()

    def _residual(self, W, b):
        """R = (softmax(x W^T + b) - Y)/n of each member: (B, n, V)."""
        P = torch.softmax(_logits(W, b, self.x), dim=2)
        return P * self.scale - self.target

    def _penalty_hessian(self, lam) -> torch.Tensor:
        """``penalty_hessian`` at lam, computed once for the same tensors of the same version."""
        A, rho = lam
        key = (A, rho, A._version, rho._version)
        cached = self._hessian
        if not cached or any(a is not b if isinstance(a, torch.Tensor) else a != b for a, b in zip(cached[0], key)):
            self._hessian = cached = (key, penalty_hessian(A, rho))
        return cached[1]

    def _probabilities_t(self, W, b) -> torch.Tensor:
        """P^T / n = softmax(W x^T + b over the classes) / n of each member: (B, V, n)."""
        return _softmax_columns_(torch.baddbmm(b.unsqueeze(2), W, self.x_t), self.scale)

    def __call__(self, w, lam, t):
        (W, b), (A, rho) = w, lam
        R = self._residual(W, b)
        grad_W = torch.baddbmm(torch.bmm(penalty_hessian(A, rho), W), R.transpose(1, 2), self.x)
        return (W - self.lr * grad_W, b - self.lr * R.sum(1))

    @torch.no_grad()
    def without_graph(self, w, lam, t):
        W, b = w
        R_t = self._probabilities_t(W, b).sub_(self.target_t)
        grad_W = torch.bmm(self._penalty_hessian(lam), W).baddbmm_(R_t, self.x)
        return (torch.add(W, grad_W, alpha=-self.lr), torch.add(b, R_t.sum(2), alpha=-self.lr))

    @torch.no_grad()
    def pullback(self, w, lam, t, alpha):
        """(A^T alpha, B^T alpha) at (w, lam) (module docstring), by hand."""
        (W, b), (U, u) = w, alpha
        P_t = self._probabilities_t(W, b)  # P^T / n
        dZ_t = torch.baddbmm(u.unsqueeze(2), U, self.x_t)
        dR_t = dZ_t.sub_((P_t * dZ_t).sum(1, keepdim=True).div_(self.scale)).mul_(P_t)
        hessian_U = torch.bmm(self._penalty_hessian(lam), U).baddbmm_(dR_t, self.x)
        m = (U * W).sum(2)
        G = torch.bmm(U, W.transpose(1, 2)).neg_().add_(m.unsqueeze(2)).mul_(self.off_diagonal)
        return (
            (torch.add(U, hessian_U, alpha=-self.lr), torch.add(u, dR_t.sum(2), alpha=-self.lr)),
            ((G + G.transpose(1, 2)).mul_(-2.0 * self.lr), m.sum(1).mul_(-2.0 * self.lr)),
        )

    def with_graph(self, w, lam, t):
        with torch.enable_grad():
            tracked = tuple(leaf if leaf.requires_grad else leaf.detach().requires_grad_() for leaf in w)
            return self(tracked, lam, t)


def member_losses(w, x_val, y_val) -> torch.Tensor:
    """Each member's mean cross-entropy on its validation examples: (B,)."""
    W, b = w
    Z = _logits(W, b, x_val)
    return (torch.logsumexp(Z, dim=2) - Z.gather(2, y_val.unsqueeze(2)).squeeze(2)).mean(1)


def explicit_batch(classes: int, lr: float):
    """The ``explicit`` hook of ``task_family``: stacked data -> (init, step, outer, member_outer)."""

    def build(data: tuple):
        x, _, x_val, y_val = data
        B, _, d = x.shape

        def init(lam):
            return (x.new_zeros((B, classes, d)), x.new_zeros((B, classes)))

        def outer(w, lam):
            return member_losses(w, x_val, y_val).sum()

        @torch.no_grad()
        def member_outer(w, lam):
            return member_losses(w, x_val, y_val)

        return init, BatchedTaskStep(classes, lr, data), outer, member_outer

    return build
