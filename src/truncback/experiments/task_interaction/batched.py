"""Task interaction's problems batched with explicit tensors: B trials' lower levels as one state
(W, b, Z^T) of shapes (B, V, d), (B, V) and (B, V, n) (the weights, the biases, and the training logits
they give, see "Logits in the state" below), their hyperparameters (A, rho) as (B, V, V) and (B,), and
every step a handful of batched products (``torch.baddbmm``/``torch.bmm``) over the B members instead
of B small ones, with the step's vector-Jacobian product written out by hand.

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

Kernel form. From w_0 = 0 every step keeps W in the span of the training features' rows: W_t = Q_t x
with Q_t (V x n), because grad_W g = (R^T + M Q) x there. Stepping Q instead of W,

    Q' = Q - lr (R^T + M Q),   b' = b - lr 1^T R,   Z^T = Q K + b,   K = x x^T (n x n),

is the same lower level in other coordinates: f(W_T) and every truncated hypergradient h_K (whose
adjoints are the weights form's times x^T, alpha_Q = alpha_W x^T, so B_t^T alpha_t is unchanged) are the
same numbers, up to rounding, at V (n^2 + V n) multiply-adds a step instead of V (2 d n + V d): three
times fewer for CIFAR-100's trials (n = 300 training examples, d = 512) and four for CIFAR-10's
(n = 500). Its vector-Jacobian products, with dZ^T = U + u (no product: the logits' cotangent is the
state's own),

    A^T alpha = (U - lr (dR^T K + M U),  u - lr 1^T dR),

and B^T alpha as above with W replaced by Q (U W^T = U_Q Q^T). ``explicit_batch`` takes the form with
fewer multiply-adds a step for the members' sizes.

Logits in the state. Both forms carry the training logits Z^T = S X + b of their state (S = W,
X = x^T; or S = Q, X = K) as a third leaf, computed at the end of each step for the next:

    R = softmax(Z) / n - Y / n,   S' = S - lr (M S + R^T X^T),   b' = b - lr 1^T R,   Z'^T = S' X + b'.

The trajectory of (S, b) is the one above (Z^T is what the next step would compute first), and so is
every hypergradient, but a step's vector-Jacobian product no longer recomputes the logits of the state
it is at: for a cotangent (U, u, Omega) of (S', b', Z'^T), with U~ = U + Omega X^T, u~ = u + Omega 1
(the logits' cotangent folded into S' and b') and dR from dZ^T = U~ X + u~ as before,

    (U~ - lr M U~,   u~,   -lr dR^T),   B^T alpha as above with U -> U~:

one product with the data fewer a reverse step (the kernel form's: Omega K instead of Q K and
dR^T K), at the memory of one more (V x n) tensor a stored state. The state's logits also give the lower objective g at no product with the data
(``member_inner``): g = CE(Z) + (1/2) <M, W W^T>, with W W^T = (Z^T - b) Q^T in the kernel form.
"""

import torch

from truncback.hypergrad.batched import ExplicitBatch

FORMS = ("auto", "weights", "kernel")
"""The coordinates of the explicit batch's state: W itself, W = Q x (module docstring), or whichever
takes fewer multiply-adds a step (``step_cost``)."""


def _off_diagonal(V: int, like: torch.Tensor) -> torch.Tensor:
    return 1.0 - torch.eye(V, dtype=like.dtype, device=like.device)


def penalty_hessian(A: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """M = 4 (diag(C 1) - C) + 2 rho I of each member, C = coupling(A): (B, V, V) from A (B, V, V) and
    rho (B,)."""
    C = 0.5 * (A + A.transpose(1, 2)) * _off_diagonal(A.shape[1], A)
    return torch.diag_embed(4.0 * C.sum(2) + 2.0 * rho[:, None]) - 4.0 * C


def step_cost(form: str, classes: int, examples: int, features: int) -> int:
    """Multiply-adds of one forward step of one member in ``form`` ("weights" or "kernel"): the logits
    and the gradient's products (module docstring)."""
    V, n, d = classes, examples, features
    return V * (2 * d * n + V * d) if form == "weights" else V * (n * n + V * n)


def check_form(form: str) -> str:
    """``form``; a ValueError naming it unless it is one of ``FORMS``."""
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r} of task interaction's batch; one of {', '.join(FORMS)}")
    return form


def chosen_form(form: str, classes: int, examples: int, features: int) -> str:
    """``form``, or for "auto" the form with the smaller ``step_cost``; a ValueError naming an unknown one."""
    if check_form(form) != "auto":
        return form
    costs = {name: step_cost(name, classes, examples, features) for name in ("weights", "kernel")}
    return min(costs, key=lambda name: costs[name])


def _softmax_columns(Z: torch.Tensor, scale: float) -> torch.Tensor:
    """scale * softmax over dim 1 of Z (B, V, n), as a new tensor (Z unchanged) in as few passes as
    eager torch allows: torch's softmax kernel is slow over a short dimension such as CIFAR-10's V = 10
    (a millisecond for 10 x 500 x 10 numbers on one core)."""
    P = torch.sub(Z, Z.amax(1, keepdim=True)).exp_()
    return P.mul_(P.sum(1, keepdim=True).reciprocal_().mul_(scale))


class BatchedTaskStep:
    """The gradient step of B task-interaction members on stacked data ``(x, y, x_val, y_val)`` in the
    weights form, state (W, b, Z^T) (module docstring): ``__call__`` in differentiable torch operations
    (torch.func and autograd go through it), ``without_graph`` and ``pullback`` the forward step and
    the hand-written vector-Jacobian products the reverse passes use (``hypergrad.dynamics``),
    ``with_graph`` for ``unrolled``, ``lower_objectives`` the members' g. They work on the transposed logits Z^T (B, V, n), from x^T kept
    contiguous (the faster product on a CPU), and reuse M while lam is the same tensors.
    ``KernelTaskStep`` is the kernel form: it changes only the products with the data."""

    def __init__(self, classes: int, lr: float, data: tuple):
        x, y, x_val = data[0], data[1], data[2]
        self.lr, self.x, self.y, self.x_val = float(lr), x, y, x_val
        self.x_t = x.transpose(1, 2).contiguous()
        self.scale = 1.0 / x.shape[1]
        self.target_t = (torch.nn.functional.one_hot(y, classes).to(x.dtype) * self.scale).transpose(1, 2).contiguous()
        B, n = y.shape
        self.label_entries = (
            torch.arange(B, device=y.device)[:, None] * classes * n + y * n + torch.arange(n, device=y.device)
        ).reshape(-1)
        self.minus_scale = torch.full((B * n,), -self.scale, dtype=x.dtype, device=x.device)
        self.off_diagonal = _off_diagonal(classes, x)
        self._hessian: tuple = ()

    def state_columns(self) -> int:
        """The columns of the state's first leaf (W: d)."""
        return self.x.shape[2]

    def logits_t(self, S: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Z^T = W x^T + b of each member: (B, V, n)."""
        return torch.baddbmm(b.unsqueeze(2), S, self.x_t)

    def loss_gradient(self, residual_t: torch.Tensor) -> torch.Tensor:
        """The training loss's gradient with respect to W, R^T x: (B, V, d)."""
        return torch.bmm(residual_t, self.x)

    def logits_cotangent_t(self, U: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """dZ^T = U x^T + u of each member: (B, V, n)."""
        return torch.baddbmm(u.unsqueeze(2), U, self.x_t)

    def logits_pullback(self, U: torch.Tensor, Omega: torch.Tensor) -> torch.Tensor:
        """U + Omega x: the logits' cotangent Omega (B, V, n) pulled back to W and added to U."""
        return torch.baddbmm(U, Omega, self.x)

    def validation_logits(self, w) -> torch.Tensor:
        """x_val W^T + b of each member: (B, n_val, V)."""
        S, b = w[0], w[1]
        return torch.baddbmm(b.unsqueeze(1), self.x_val, S.transpose(1, 2))

    def weights(self, S: torch.Tensor) -> torch.Tensor:
        """The members' W from the state's first leaf (here W itself)."""
        return S

    def _penalty_hessian(self, lam) -> torch.Tensor:
        """``penalty_hessian`` at lam, computed once for the same tensors of the same version."""
        A, rho = lam
        key = (A, rho, A._version, rho._version)
        held = self._hessian
        if not held or any(a is not b if isinstance(a, torch.Tensor) else a != b for a, b in zip(held[0], key)):
            self._hessian = held = (key, penalty_hessian(A, rho))
        return held[1]

    def residual_t(self, Z: torch.Tensor) -> torch.Tensor:
        """R^T = (P^T - Y^T) / n from the logits Z^T, a new tensor: the labels' 1/n subtracted at their
        B n entries (bit for bit ``target_t``'s subtraction, without a pass over the V - 1 zeros)."""
        residual = _softmax_columns(Z, self.scale)
        residual.view(-1).index_add_(0, self.label_entries, self.minus_scale)
        return residual

    def descend(self, S: torch.Tensor, M: torch.Tensor, residual_t: torch.Tensor) -> torch.Tensor:
        """S' = S - lr (M S + R^T x), a new tensor."""
        return torch.baddbmm(S, M, S, alpha=-self.lr).baddbmm_(residual_t, self.x, alpha=-self.lr)

    def __call__(self, w, lam, t):
        (S, b, Z), (A, rho) = w, lam
        residual_t = torch.softmax(Z, dim=1) * self.scale - self.target_t
        stepped = S - self.lr * (torch.bmm(penalty_hessian(A, rho), S) + self.loss_gradient(residual_t))
        biases = b - self.lr * residual_t.sum(2)
        return (stepped, biases, self.logits_t(stepped, biases))

    @torch.no_grad()
    def without_graph(self, w, lam, t):
        S, b, Z = w
        residual_t = self.residual_t(Z)
        stepped = self.descend(S, self._penalty_hessian(lam), residual_t)
        biases = torch.add(b, residual_t.sum(2), alpha=-self.lr)
        return (stepped, biases, self.logits_t(stepped, biases))

    @torch.no_grad()
    def pullback(self, w, lam, t, alpha):
        """(A^T alpha, B^T alpha) at (w, lam) (module docstring, "Logits in the state"), by hand: with
        P~ = -lr P^T / n and D = P~ o dZ^T, -lr dR^T = D - P~ o 1 1^T D / (-lr / n), and m the diagonal
        of U W^T."""
        (S, _, Z), (U, u, Omega) = w, alpha
        U = self.logits_pullback(U, Omega)
        u = u + Omega.sum(2)
        scaled = -self.lr * self.scale
        P_scaled = _softmax_columns(Z, scaled)
        dR_scaled = self.logits_cotangent_t(U, u).mul_(P_scaled)
        dR_scaled.addcmul_(P_scaled, dR_scaled.sum(1, keepdim=True), value=-1.0 / scaled)
        pulled = torch.baddbmm(U, self._penalty_hessian(lam), U, alpha=-self.lr)
        G = torch.bmm(U, S.transpose(1, 2))
        m = torch.diagonal(G, dim1=1, dim2=2).clone()
        G.neg_().add_(m.unsqueeze(2)).mul_(self.off_diagonal)
        return (
            (pulled, u, dR_scaled),
            ((G + G.transpose(1, 2)).mul_(-2.0 * self.lr), m.sum(1).mul_(-2.0 * self.lr)),
        )

    def gram(self, w) -> torch.Tensor:
        """W W^T of each member: (B, V, V)."""
        S = w[0]
        return torch.bmm(S, S.transpose(1, 2))

    @torch.no_grad()
    def lower_objectives(self, w, lam) -> torch.Tensor:
        """Each member's g(w, lam) (``task_interaction.problem.task_inner``), (B,), from the state's
        logits: the mean cross-entropy of Z plus (1/2) <M, W W^T>, M the penalty's Hessian."""
        M = self._penalty_hessian(lam)
        return member_losses(w[2].transpose(1, 2), self.y) + 0.5 * (M * self.gram(w)).sum((1, 2))

    def with_graph(self, w, lam, t):
        with torch.enable_grad():
            tracked = tuple(leaf if leaf.requires_grad else leaf.detach().requires_grad_() for leaf in w)
            return self(tracked, lam, t)


class KernelTaskStep(BatchedTaskStep):
    """The step in the kernel form, state (Q, b) with W = Q x (module docstring): the products with x
    become products with K = x x^T (n x n), and the gradient's R^T x is R^T itself."""

    def __init__(self, classes: int, lr: float, data: tuple):
        super().__init__(classes, lr, data)
        self.kernel = torch.bmm(self.x, self.x_t)
        self.validation_kernel = torch.bmm(self.x_val, self.x_t)

    def state_columns(self) -> int:
        """The columns of Q: n."""
        return self.x.shape[1]

    def logits_t(self, S: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Z^T = Q K + b of each member (K is symmetric): (B, V, n)."""
        return torch.baddbmm(b.unsqueeze(2), S, self.kernel)

    def loss_gradient(self, residual_t: torch.Tensor) -> torch.Tensor:
        """R^T: the step's R^T x is (R^T) x, so in Q's coordinates it is R^T itself."""
        return residual_t

    def logits_cotangent_t(self, U: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """dZ^T = U + u: Q's cotangent reaches R^T unchanged."""
        return U + u.unsqueeze(2)

    def descend(self, S: torch.Tensor, M: torch.Tensor, residual_t: torch.Tensor) -> torch.Tensor:
        """S' = S - lr (R^T + M S): the sum first, then the product added in place (no copy of S)."""
        return torch.add(S, residual_t, alpha=-self.lr).baddbmm_(M, S, alpha=-self.lr)

    def gram(self, w) -> torch.Tensor:
        """W W^T = Q K Q^T = (Z^T - b) Q^T of each member: (B, V, V), from the state's logits."""
        S, b, Z = w
        return torch.bmm(Z - b.unsqueeze(2), S.transpose(1, 2))

    def logits_pullback(self, U: torch.Tensor, Omega: torch.Tensor) -> torch.Tensor:
        """U + Omega K: the logits' cotangent Omega (B, V, n) pulled back to Q and added to U."""
        return torch.baddbmm(U, Omega, self.kernel)

    def validation_logits(self, w) -> torch.Tensor:
        """x_val W^T + b = (x_val x^T) Q^T + b of each member: (B, n_val, V)."""
        S, b = w[0], w[1]
        return torch.baddbmm(b.unsqueeze(1), self.validation_kernel, S.transpose(1, 2))

    def weights(self, S: torch.Tensor) -> torch.Tensor:
        """W = Q x of each member: (B, V, d)."""
        return torch.bmm(S, self.x)


def member_losses(logits: torch.Tensor, y_val: torch.Tensor) -> torch.Tensor:
    """Each member's mean cross-entropy of its validation ``logits`` (B, n_val, V): (B,)."""
    return (torch.logsumexp(logits, dim=2) - logits.gather(2, y_val.unsqueeze(2)).squeeze(2)).mean(1)


def explicit_batch(classes: int, lr: float, form: str = "auto"):
    """The ``explicit`` hook of ``task_family``: stacked data -> ``ExplicitBatch`` in ``form`` (one of
    ``FORMS``; "auto" picks by ``step_cost`` at the data's sizes)."""
    check_form(form)

    def build(data: tuple) -> ExplicitBatch:
        x, y_val = data[0], data[3]
        B, n, d = x.shape
        kind = KernelTaskStep if chosen_form(form, classes, n, d) == "kernel" else BatchedTaskStep
        step = kind(classes, lr, data)

        def init(lam):
            # w_0 = 0, whose logits S X + b are 0 too
            return (
                x.new_zeros((B, classes, step.state_columns())),
                x.new_zeros((B, classes)),
                x.new_zeros((B, classes, n)),
            )

        def outer(w, lam):
            return member_losses(step.validation_logits(w), y_val).sum()

        @torch.no_grad()
        def member_outer(w, lam):
            return member_losses(step.validation_logits(w), y_val)

        def member_states(w):
            return (step.weights(w[0]), w[1])

        return ExplicitBatch(init, step, outer, member_outer, member_states, step.lower_objectives)

    return build
