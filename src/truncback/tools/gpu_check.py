"""A GPU check for a CUDA machine, in one command that needs only torch, numpy, pandas, matplotlib and
pyyaml (no Snakemake, no datasets): ``make gpu-check``, or ``PYTHONPATH=src python -m truncback
gpu-check --output gpu_check.md``.

(a) the engine on CUDA tensors, float64 and float32: every exact method against plain autograd
    through the unrolled loop, K-RMD against the toy's closed form (the device follows the inputs);
(b) the three hyper-optimisation experiments at smoke size on synthetic data, each run twice on the
    GPU: the results must be identical (deterministic algorithms on);
(c) seconds per hypergradient and peak GPU memory at the paper's sizes on synthetic data of those
    sizes: hypercleaning (5000 examples, W in R^{10x785}, T = 100), task interaction (CIFAR-100:
    300 + 300 examples of 512 features, 100 classes, T = 100) and one-shot Omniglot (64 filters,
    5-way, T = 50), for 1-RMD, a mid depth and full RMD;
(d) one Markdown summary (stdout, and --output).

Without a CUDA device it stops at once with a one-line reason (exit status 2). ``--device cpu`` runs
the same checks on the CPU (tests use it for the parts that do not need a GPU).
"""

import argparse
import dataclasses
import math
import sys
import time

import numpy as np
import torch

from truncback.hypergrad import BilevelProblem, gradient_descent, hypergradient, krmd, trees
from truncback.hypergrad.reference import unrolled_autograd
from truncback.runtime.determinism import configure_torch
from truncback.runtime.measure import peak_memory_mib, timed

NO_CUDA = 2


def logistic_problem(device, dtype, T=12, n=24, dim=6, seed=0):
    """Weighted logistic regression, weights sigmoid(lam_i), w_0 in lam too (B_0 != 0)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=generator, dtype=torch.float64).to(device=device, dtype=dtype)
    y = (torch.rand(n, generator=generator) > 0.5).to(device=device, dtype=dtype)
    x_val = torch.randn(n, dim, generator=generator, dtype=torch.float64).to(device=device, dtype=dtype)
    y_val = (torch.rand(n, generator=generator) > 0.5).to(device=device, dtype=dtype)
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def inner(w, lam):
        return torch.mean(torch.sigmoid(lam[0]) * bce(x @ w, y, reduction="none")) + 0.01 * torch.sum(w * w)

    problem = BilevelProblem(
        init=lambda lam: lam[1], step=gradient_descent(inner, 0.5), outer=lambda w, lam: bce(x_val @ w, y_val), T=T
    )
    lam = (torch.zeros(n, device=device, dtype=dtype), 0.1 * torch.ones(dim, device=device, dtype=dtype))
    return problem, lam


def engine_checks(device) -> list[dict]:
    rows = []
    for dtype, tolerance in ((torch.float64, 1e-9), (torch.float32, 1e-4)):
        problem, lam = logistic_problem(device, dtype)
        reference = unrolled_autograd(problem, lam)
        scale = trees.norm(reference)
        for spec in (
            {"name": "rmd"},
            {"name": "checkpointed"},
            {"name": "fmd"},
            {"name": "krmd", "K": problem.T},
            {"name": "ufom", "q": 1.0},
        ):
            h = hypergradient(problem, lam, spec, generator=torch.Generator().manual_seed(0))
            error = trees.norm(trees.sub(h, reference)) / scale
            same_device = all(leaf.device.type == torch.device(device).type for leaf in h)
            rows.append(
                {
                    "check": f"{spec['name']} vs unrolled autograd",
                    "dtype": str(dtype).split(".")[1],
                    "relative error": error,
                    "passed": error < tolerance and same_device,
                }
            )
    G = torch.tensor([1.0, 0.5], dtype=torch.float64, device=device)
    toy = BilevelProblem(
        init=lambda lam: torch.full((2,), 2.0, dtype=torch.float64, device=device),
        step=gradient_descent(lambda w, lam: 0.5 * torch.sum(G * (w - lam) ** 2), 0.1),
        outer=lambda w, lam: torch.sum(w**2) + 10 * torch.sum(torch.sin(w) ** 2),
        T=100,
    )
    lam = torch.tensor([1.0, 1.0], dtype=torch.float64, device=device)
    C = (1 - 0.1 * G) ** 100
    w_T = C * 2.0 + (1 - C) * lam
    grad_w = 2 * w_T + 20 * torch.sin(w_T) * torch.cos(w_T)
    for K in (1, 10):
        expected = (1 - (1 - 0.1 * G) ** K) * grad_w
        error = float((krmd(toy, lam, K) - expected).norm() / expected.norm())
        rows.append(
            {
                "check": f"krmd K={K} vs the toy's closed form",
                "dtype": "float64",
                "relative error": error,
                "passed": error < 1e-10,
            }
        )
    return rows


def synthetic_omniglot(seed, characters=30, drawings=20):
    rng = np.random.default_rng(seed)
    patterns = rng.random((characters, 28, 28)) > 0.8
    images = np.repeat(patterns, drawings, axis=0) ^ (rng.random((characters * drawings, 28, 28)) > 0.95)
    return {"images": np.where(images, 0, 255).astype(np.uint8), "labels": np.repeat(np.arange(characters), drawings)}


def repeat_check(device) -> list[dict]:
    """Each experiment at smoke size twice: identical results."""
    from truncback.experiments.hypercleaning.run import run_hypercleaning
    from truncback.experiments.hypercleaning.settings import HypercleaningSettings
    from truncback.experiments.omniglot.run import run_omniglot
    from truncback.experiments.omniglot.settings import OmniglotRun, OmniglotSettings
    from truncback.experiments.task_interaction.run import run_task_interaction
    from truncback.experiments.task_interaction.settings import TaskInteractionSettings

    rng = np.random.default_rng(0)
    digits = {"images": rng.integers(0, 256, (600, 28, 28), dtype=np.uint8), "labels": np.arange(600) % 10}
    features = {
        "features": rng.normal(size=(120, 16)).astype(np.float32),
        "labels": np.arange(120) % 6,
        "computed": np.ones(120, bool),
        "extractor": np.array(["synthetic"]),
        "pretrained": np.array([False]),
        "settings": np.array(["{}"]),
        "path": "synthetic features",
    }
    quiet = lambda line: None  # noqa: E731
    runs = {
        "hypercleaning": lambda: run_hypercleaning(
            digits["images"],
            digits["labels"],
            HypercleaningSettings(
                n_train=200, n_val=100, n_test=200, T=10, lr=0.015, hyper_iterations=5, exact_every=2, compile=False
            ),
            {"name": "krmd", "K": 3},
            0,
            quiet,
            device,
        )[0],
        "task interaction": lambda: run_task_interaction(
            features,
            features,
            "synthetic",
            TaskInteractionSettings(
                train_per_class=5, val_per_class=5, T=10, max_hyper_iterations=5, exact_every=2, compile=False
            ),
            {"name": "krmd", "K": 3},
            0,
            quiet,
            device,
        )[0],
        "omniglot": lambda: run_omniglot(
            synthetic_omniglot(1),
            synthetic_omniglot(2),
            OmniglotSettings(
                ways=3,
                query_per_class=2,
                meta_train_classes=40,
                filters=8,
                T=5,
                eval_every=2,
                curve_tasks=2,
                validation_tasks=2,
                test_tasks=3,
                exact_every=2,
                compile=False,
            ),
            OmniglotRun({"name": "krmd", "K": 2}, 4, (4,)),
            0,
            quiet,
            device=device,
        )[0],
    }
    rows = []
    for name, run in runs.items():
        first, second = dataclasses.asdict(run()), dataclasses.asdict(run())
        rows.append(
            {
                "experiment": name,
                "identical twice": first == second,
                "final outer loss": first["run"]["train"]["outer_loss"][-1],
            }
        )
    return rows


def paper_sized_problems(device):
    """(name, problem, hparams, depths) at the paper's sizes, on synthetic data."""
    from truncback.experiments.omniglot.model import initial_hyperparameters, one_shot_problem
    from truncback.experiments.omniglot.settings import OmniglotSettings
    from truncback.experiments.omniglot.tasks import Task

    generator = torch.Generator().manual_seed(0)
    ce = torch.nn.functional.cross_entropy

    def tensor(*shape):
        return torch.rand(*shape, generator=generator).to(device)

    x, y = tensor(5000, 785), torch.randint(0, 10, (5000,), generator=generator).to(device)
    x_val, y_val = tensor(5000, 785), torch.randint(0, 10, (5000,), generator=generator).to(device)
    cleaning = BilevelProblem(
        init=lambda lam: torch.zeros(10, 785, device=device),
        step=gradient_descent(
            lambda W, lam: torch.mean(torch.sigmoid(lam) * ce(x @ W.T, y, reduction="none")) + 1e-3 * torch.sum(W**2),
            1.0,
        ),
        outer=lambda W, lam: ce(x_val @ W.T, y_val),
        T=100,
    )
    yield "hypercleaning", cleaning, torch.zeros(5000, device=device), (1, 25, 100)

    from truncback.experiments.task_interaction.problem import TaskData, task_problem

    data = TaskData(
        x_train=tensor(300, 512),
        y_train=torch.arange(300, device=device) % 100,
        x_val=tensor(300, 512),
        y_val=torch.arange(300, device=device) % 100,
        x_test=tensor(10, 512),
        y_test=torch.arange(10, device=device),
        classes=100,
    )
    A = 1e-3 * (1 - torch.eye(100, device=device))
    yield (
        "task interaction (CIFAR-100)",
        task_problem(data, 100, 0.1),
        (A, torch.tensor(1e-3, device=device)),
        (1, 25, 100),
    )

    task = Task(
        tensor(5, 1, 28, 28), torch.arange(5, device=device), tensor(75, 1, 28, 28), torch.arange(75, device=device) % 5
    )
    settings = OmniglotSettings()
    lam = initial_hyperparameters(64, 5, True, settings.init_rho, settings.init_gamma, settings.constraints(), 0)
    lam = torch.utils._pytree.tree_map(lambda leaf: leaf.to(device), lam)
    yield "omniglot (64 filters)", one_shot_problem(task, 50, True, settings.constraints()), lam, (1, 10, 50)


def paper_size_measurements(device, repeats=3) -> list[dict]:
    rows = []
    for name, problem, hparams, depths in paper_sized_problems(device):
        krmd(dataclasses.replace(problem, T=1), hparams, 1)  # library start-up out of the measurements
        for K in depths:
            spec = {"name": "rmd"} if K == problem.T else {"name": "krmd", "K": K}
            _, peak = peak_memory_mib(hypergradient, problem, hparams, spec)
            seconds = min(timed(hypergradient, problem, hparams, spec)[1] for _ in range(repeats))
            rows.append(
                {
                    "problem": name,
                    "method": "full RMD" if K == problem.T else f"{K}-RMD",
                    "T": problem.T,
                    "seconds": seconds,
                    "peak MiB": peak,
                }
            )
    return rows


def markdown(title, rows) -> str:
    if not rows:
        return f"## {title}\n\n(none)\n"
    columns = list(rows[0])
    lines = [f"## {title}", "", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for row in rows:
        cells = [
            f"{row[c]:.3g}" if isinstance(row[c], float) and math.isfinite(row[c]) else str(row[c]) for c in columns
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(args) -> int:
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            f"gpu-check: no CUDA device (torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'})",
            file=sys.stderr,
        )
        return NO_CUDA
    configure_torch(args.threads)
    device = args.device
    start = time.perf_counter()
    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
    parts = [f"# GPU check on {name} (torch {torch.__version__})\n"]
    engine = engine_checks(device)
    parts.append(markdown("(a) engine on the device", engine))
    repeated = repeat_check(device)
    parts.append(markdown("(b) smoke-size experiments run twice", repeated))
    if not args.skip_paper_sizes:
        parts.append(markdown("(c) paper sizes, one hypergradient", paper_size_measurements(device)))
    passed = all(row["passed"] for row in engine) and all(row["identical twice"] for row in repeated)
    parts.append(f"\n{'ALL PASSED' if passed else 'FAILED'} in {time.perf_counter() - start:.0f} s\n")
    text = "\n".join(parts)
    print(text)
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(text)
    return 0 if passed else 1


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "gpu-check",
        help="engine, repeatability and paper-size timings on a GPU",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--device",
        default="cuda",
        choices=("cuda", "cpu"),
        help="cuda (default; stops at once without one) or cpu (to test the check itself)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--skip-paper-sizes", action="store_true", help="leave out (c), the slow part on a CPU")
    parser.add_argument("--output", help="also write the summary to this Markdown file")
    parser.set_defaults(run=main)
