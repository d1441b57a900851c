"""The nn.Module path: a problem over a module's parameters through torch.func.functional_call gives
the hypergradient of the same maths written by hand with plain tensors (autograd through the
unrolled loop in float64, no module), leaves the module untouched, and refuses a module the methods
cannot differentiate through faithfully, naming the problem and the fix."""

import pytest
import torch
from torch.nn.functional import cross_entropy

from truncback.hypergrad import hypergradient, module_problem

T, LR = 6, 0.3


def data(rng):
    x = torch.randn(24, 5, generator=rng, dtype=torch.float64)
    return x, torch.randint(0, 3, (24,), generator=rng), x[:12] + 0.1, torch.randint(0, 3, (12,), generator=rng)


def mlp(rng) -> torch.nn.Module:
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=rng)))
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3)).double()


def decay_problem(model, x, y, x_val, y_val, **options):
    """Per-parameter weight decay: lam[name] is the log of its coefficient."""

    def inner(net, lam, x, y):
        penalty = sum((torch.exp(lam[name]) * w**2).sum() for name, w in net.params.items())
        return cross_entropy(net(x), y) + penalty

    return module_problem(
        model, inner, lambda net, lam: cross_entropy(net(x_val), y_val), lr=LR, T=T, data=(x, y), **options
    )


def by_hand(start, lam, x, y, x_val, y_val, initial_is_lam=False):
    """The same problem with plain tensors: tanh MLP, T steps of gradient descent kept in autograd's
    graph, the outer loss differentiated with respect to lam."""
    lam = {name: value.clone().requires_grad_() for name, value in lam.items()}
    w = dict(lam) if initial_is_lam else {name: value.clone() for name, value in start.items()}

    def logits(w, x):
        return torch.tanh(x @ w["0.weight"].T + w["0.bias"]) @ w["2.weight"].T + w["2.bias"]

    for _ in range(T):
        if not initial_is_lam:
            w = {name: value if value.requires_grad else value.requires_grad_() for name, value in w.items()}
            loss = cross_entropy(logits(w, x), y) + sum((torch.exp(lam[n]) * w[n] ** 2).sum() for n in w)
        else:
            loss = cross_entropy(logits(w, x), y)
        grads = torch.autograd.grad(loss, list(w.values()), create_graph=True)
        w = {name: value - LR * grad for (name, value), grad in zip(w.items(), grads)}
    grads = torch.autograd.grad(cross_entropy(logits(w, x_val), y_val), list(lam.values()))
    return dict(zip(lam, grads))


def close(a: dict, b: dict, tol=1e-10):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], rtol=tol, atol=tol), name


def test_weight_decay_of_a_module_matches_the_loop_written_by_hand(rng):
    model = mlp(rng)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    x, y, x_val, y_val = data(rng)
    lam = {name: torch.full_like(p, -3.0) for name, p in before.items()}
    problem = decay_problem(model, x, y, x_val, y_val)
    reference = by_hand(before, lam, x, y, x_val, y_val)
    for spec in ({"name": "rmd"}, {"name": "unrolled"}, {"name": "krmd", "K": T}, {"name": "fmd"}):
        close(hypergradient(problem, lam, spec), reference)
    truncated = hypergradient(problem, lam, {"name": "krmd", "K": 1})
    assert truncated.keys() == reference.keys() and not torch.allclose(truncated["0.weight"], reference["0.weight"])
    for name, p in model.named_parameters():  # the module is left as it was
        assert torch.equal(p.detach(), before[name]) and p.grad is None


def test_an_initialisation_learnt_as_hyperparameters(rng):
    """init='hparams': w_0 = lam (MAML-style); the exact methods against the loop by hand."""
    model = mlp(rng)
    x, y, x_val, y_val = data(rng)
    lam = {name: p.detach().clone() for name, p in model.named_parameters()}
    problem = module_problem(
        model,
        lambda net, lam, x, y: cross_entropy(net(x), y),
        lambda net, lam: cross_entropy(net(x_val), y_val),
        lr=LR,
        T=T,
        data=(x, y),
        init="hparams",
    )
    reference = by_hand(None, lam, x, y, x_val, y_val, initial_is_lam=True)
    for spec in ({"name": "rmd"}, {"name": "checkpointed"}):
        close(hypergradient(problem, lam, spec), reference)


def test_a_module_with_buffers_is_refused_naming_them_and_the_fix():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    with pytest.raises(
        ValueError,
        match=r"buffers \(1.running_mean, 1.running_var, 1.num_batches_tracked\).*" r"track_running_stats=False",
    ):
        module_problem(model, lambda net, lam: 0, lambda net, lam: 0, lr=0.1, T=2)
    module_problem(  # batch statistics only: accepted
        torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4, track_running_stats=False)),
        lambda net, lam: 0,
        lambda net, lam: 0,
        lr=0.1,
        T=2,
    )


def test_parameters_on_two_devices_are_refused_naming_them():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2, device="meta"))
    with pytest.raises(
        ValueError, match=r"parameters are on 2 devices \(cpu, meta: 0.weight on cpu.*model.to\(device\)"
    ):
        module_problem(model, lambda net, lam: 0, lambda net, lam: 0, lr=0.1, T=2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_half_precision_model_is_refused_naming_the_fix(dtype):
    model = torch.nn.Linear(3, 2).to(dtype)
    with pytest.raises(ValueError, match=rf"{dtype} parameters \(weight, bias\).*model.float\(\)"):
        module_problem(model, lambda net, lam: 0, lambda net, lam: 0, lr=0.1, T=2)


def test_a_bad_init_or_a_non_module_is_named():
    with pytest.raises(ValueError, match="init='zeros': expected 'model', 'hparams' or a function of lam"):
        module_problem(torch.nn.Linear(2, 2), lambda net, lam: 0, lambda net, lam: 0, lr=0.1, T=2, init="zeros")
    with pytest.raises(ValueError, match="model must be a torch.nn.Module, got dict"):
        module_problem({}, lambda net, lam: 0, lambda net, lam: 0, lr=0.1, T=2)


def test_every_public_name_of_the_library_has_a_docstring_that_pydoc_renders():
    import pydoc

    import truncback.hypergrad as library

    undocumented = [
        name for name in library.__all__ if callable(getattr(library, name)) and not getattr(library, name).__doc__
    ]
    assert undocumented == []
    page = pydoc.render_doc(library, renderer=pydoc.plaintext)
    assert all(name in page for name in library.__all__)
