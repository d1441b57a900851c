"""Learn an initialisation across tasks (MAML-style) with K-RMD, FOM and UFOM side by side.

Each task is a sine wave a sin(x + b) seen through a few points. The lower level adapts an MLP from
w_0 = lam (the initialisation, a dict like the module's parameters) by T steps of gradient descent on
the task's support points; the upper level is the loss on the task's query points. The meta-gradient
is the mean hypergradient over a batch of tasks. FOM drops the second-order terms (A_t := I); UFOM
adds, with probability q, an exact correction that makes it unbiased, in memory constant in T; K-RMD
back-propagates K steps, and here needs K = T: lam enters only through w_0, so a truncated K-RMD (K <
T) would return zero. At the start every method is compared with the exact meta-gradient (full RMD);
the query loss after adaptation is measured on fixed validation tasks before and after meta-training.

    python examples/maml_init.py                 # small: seconds on a CPU
    python examples/maml_init.py --size realistic
"""

import argparse
import time

import torch
from torch.nn.functional import mse_loss

from truncback.hypergrad import hypergradient, module_problem

SIZES = {
    "small": {"hidden": 20, "T": 4, "tasks": 4, "iterations": 30, "points": 10},
    "realistic": {"hidden": 40, "T": 10, "tasks": 10, "iterations": 300, "points": 10},
}
VALIDATION_TASKS = 20


def sine_task(generator: torch.Generator, points: int):
    """(support x, support y, query x, query y) of one sine wave a sin(x + b)."""
    a, b = 0.1 + 4.9 * torch.rand(1, generator=generator), 3.1416 * torch.rand(1, generator=generator)
    x = 10.0 * torch.rand(2 * points, 1, generator=generator) - 5.0
    y = a * torch.sin(x + b)
    return x[:points], y[:points], x[points:], y[points:]


def meta_gradient(model, lam, tasks, spec, T: int, generator: torch.Generator):
    """The mean hypergradient and mean query loss over ``tasks`` (each its own problem: same model and
    losses, its own data)."""
    total, loss = None, 0.0
    for x, y, x_query, y_query in tasks:
        problem = module_problem(
            model,
            lambda net, lam, x, y: mse_loss(net(x), y),
            lambda net, lam: mse_loss(net(x_query), y_query),  # noqa: B023 (used within this iteration)
            lr=0.01,
            T=T,
            data=(x, y),
            init="hparams",
        )
        options = {"generator": generator} if spec["name"] == "ufom" else {}
        h, info = hypergradient(problem, lam, spec, return_info=True, **options)
        total = h if total is None else {name: total[name] + h[name] for name in h}
        loss += info.outer_loss
    return {name: value / len(tasks) for name, value in total.items()}, loss / len(tasks)


FOM = {"name": "fom"}  # its query loss is the exact one: only its hypergradient is approximate


def relative_error(a: dict, b: dict) -> float:
    difference = sum(float(((a[n] - b[n]) ** 2).sum()) for n in a) ** 0.5
    return difference / sum(float((b[n] ** 2).sum()) for n in b) ** 0.5


def run(size: str = "small", seed: int = 0) -> dict:
    settings = SIZES[size]
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(1, settings["hidden"]), torch.nn.ReLU(), torch.nn.Linear(settings["hidden"], 1)
    )
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    first_tasks = [
        sine_task(torch.Generator().manual_seed(seed + i), settings["points"]) for i in range(settings["tasks"])
    ]
    exact, _ = meta_gradient(model, start, first_tasks, {"name": "rmd"}, settings["T"], torch.Generator())
    validation = [
        sine_task(torch.Generator().manual_seed(10**6 + i), settings["points"]) for i in range(VALIDATION_TASKS)
    ]
    results = {}
    for spec in ({"name": "krmd", "K": settings["T"]}, {"name": "fom"}, {"name": "ufom", "q": 0.2}):
        label = spec["name"] + (f"-K{spec['K']}" if "K" in spec else "") + (f"-q{spec['q']}" if "q" in spec else "")
        generator, tasks_generator = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1000)
        h0, _ = meta_gradient(model, start, first_tasks, spec, settings["T"], generator)
        lam = {name: value.clone().requires_grad_() for name, value in start.items()}
        optimizer = torch.optim.Adam(lam.values(), lr=0.01)
        began = time.perf_counter()
        for _ in range(settings["iterations"]):
            tasks = [sine_task(tasks_generator, settings["points"]) for _ in range(settings["tasks"])]
            h, _ = meta_gradient(model, {n: v.detach() for n, v in lam.items()}, tasks, spec, settings["T"], generator)
            for name, value in lam.items():
                value.grad = h[name]
            optimizer.step()
        seconds = time.perf_counter() - began
        final = {n: v.detach() for n, v in lam.items()}
        results[label] = {
            "error_at_start": relative_error(h0, exact),
            "validation_loss_before": meta_gradient(model, start, validation, FOM, settings["T"], generator)[1],
            "validation_loss_after": meta_gradient(model, final, validation, FOM, settings["T"], generator)[1],
            "seconds": seconds,
        }
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    for label, result in run(**vars(parser.parse_args())).items():
        print(
            f"{label:>10}: meta-gradient at the start {result['error_at_start']:.3f} from the exact one (relative); "
            f"validation query loss {result['validation_loss_before']:.3f} -> {result['validation_loss_after']:.3f} "
            f"in {result['seconds']:.1f} s"
        )
