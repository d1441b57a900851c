"""Benchmark of batched runs (``hypergrad.batched``): the seconds per member of one hypergradient when B
independent problems of one family are computed one at a time and when they are computed as one batch,
in one process, for B = 1, 5, 10.

The problems are task interaction's at the sizes of its CIFAR-10 and CIFAR-100 runs (V linear models on
512 features, the paper's training and validation examples per class, T = 100; the hypergradient of
``--method``), and Omniglot's evaluation of a meta-test task at the paper's sizes (5-way one-shot, 15
queries per class, 64 filters, batch normalisation, T = 50 inner steps and the scores on Q:
``omniglot.batched``), on seeded random data of those shapes (the time does not depend on the values).
Task interaction's batch is its explicitly batched tensors (``task_interaction.batched``, what its
batched trials run, in the form with fewer multiply-adds at those sizes: the kernel form); the column
``weights-form batched`` is the same batch stepping W itself, and ``vmap batched`` the generic batch by
``torch.func.vmap``, for comparison. Each case runs each way once to warm up, then ``--repeats`` rounds of every way in turn
(so a change in the machine's load falls on all of them alike); a way's time is its fastest round
(the least disturbed by whatever else the machine runs), divided by B.

``python -m truncback bench-batched [--members 1 5 10] [--cases cifar10 cifar100 omniglot] [--method krmd-K1] [--output bench.csv]``
"""

import argparse
import dataclasses
import time

import numpy as np
import torch

from truncback.experiments.omniglot.batched import evaluate_tasks
from truncback.experiments.omniglot.model import Constraints, evaluate, initial_hyperparameters
from truncback.experiments.omniglot.settings import OmniglotSettings
from truncback.experiments.omniglot.tasks import Task
from truncback.experiments.task_interaction.batched import explicit_batch
from truncback.experiments.task_interaction.problem import initial_hparams, make_task_data, task_data, task_family
from truncback.experiments.task_interaction.settings import Subsets, TaskInteractionSettings
from truncback.hypergrad import hypergradient, label
from truncback.hypergrad.batched import check_memberwise, stack
from truncback.runtime.command import method_argument
from truncback.runtime.determinism import configure_torch
from truncback.runtime.files import write_csv

FEATURES = 512
CLASSES = {"cifar10": 10, "cifar100": 100}
FIELDS = (
    "case",
    "method",
    "T",
    "members",
    "one at a time s/member",
    "batched s/member",
    "speed-up",
    "weights-form batched s/member",
    "vmap batched s/member",
)


def task_interaction_members(dataset: str, members: int, settings: TaskInteractionSettings, compile: bool):
    """``members`` task-interaction problems of ``dataset``'s sizes (one family) and their starting lambdas."""
    classes = CLASSES[dataset]
    sizes = Subsets.json_schema()["properties"][dataset]["properties"]  # the paper's, as the config's defaults
    train, val = sizes["train_per_class"]["default"], sizes["val_per_class"]["default"]
    family = task_family(classes, settings.T, settings.lr, compile)
    problems, lams = [], []
    for seed in range(members):
        rng = np.random.default_rng(seed)
        labels = np.repeat(np.arange(classes), train + val)
        features = rng.normal(size=(len(labels), FEATURES)).astype(np.float32)
        data = make_task_data(features, labels, features[:classes], labels[:classes], train, val, seed)
        problems.append(family.problem(task_data(data)))
        lams.append(
            tuple(t.detach() for t in initial_hparams(classes, settings.C_init, settings.rho_init, torch.float32))
        )
    return family, problems, lams


def omniglot_members(members: int):
    """``members`` Omniglot evaluation tasks of the paper's sizes, the starting lam and the settings."""
    settings = OmniglotSettings()
    constraints = Constraints(settings.gamma_max, settings.rho_min)
    generator = torch.Generator().manual_seed(0)
    ways, query = settings.ways, settings.query_per_class
    tasks = [
        Task(
            torch.rand(ways, 1, 28, 28, generator=generator),
            torch.arange(ways),
            torch.rand(ways * query, 1, 28, 28, generator=generator),
            torch.arange(ways).repeat_interleave(query),
        )
        for _ in range(members)
    ]
    lam = initial_hyperparameters(
        settings.filters, ways, settings.batch_norm, settings.init_rho, settings.init_gamma, constraints, seed=0
    )
    return tasks, lam, settings, constraints


def measure_omniglot(members: int, repeats: int) -> dict:
    """One row: seconds per task of Omniglot's evaluation one task at a time and batched."""
    tasks, lam, settings, constraints = omniglot_members(members)
    T, batch_norm = settings.T, settings.batch_norm
    alone, together = fastest(
        [
            lambda: [evaluate(task, lam, T, batch_norm, constraints) for task in tasks],
            lambda: evaluate_tasks(tasks, lam, T, batch_norm, constraints, members),
        ],
        repeats,
    )
    return row("omniglot evaluation", "(none)", T, members, alone / members, together / members)


def row(case: str, method: str, T: int, members: int, alone: float, together: float, weights=None, vmap=None) -> dict:
    return {
        "case": case,
        "method": method,
        "T": T,
        "members": members,
        "one at a time s/member": alone,
        "batched s/member": together,
        "speed-up": alone / together,
        "weights-form batched s/member": "" if weights is None else weights,
        "vmap batched s/member": "" if vmap is None else vmap,
    }


def fastest(functions: list, repeats: int) -> list:
    """The fastest wall seconds of each of ``functions`` over ``repeats`` rounds that call each in turn,
    after one warm-up call of each."""
    for function in functions:
        function()
    best = [float("inf")] * len(functions)
    for _ in range(repeats):
        for i, function in enumerate(functions):
            start = time.perf_counter()
            function()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def measure(case: str, family, problems, lams, spec, repeats: int) -> dict:
    """One row: seconds per member of ``spec``'s hypergradient one member at a time, batched (the
    family's explicit batch where it has one) and batched by vmap."""
    members, lam = len(problems), stack(lams)
    classes = problems[0].init(lams[0])[0].shape[0]
    weights_family = dataclasses.replace(family, explicit=explicit_batch(classes, family.lr, "weights"))
    weights_form = weights_family.batched([weights_family.problem(problem.data) for problem in problems])
    batched, vmapped = family.batched(problems), family.batched(problems, explicit=False)
    alone, together, weights, vmap = fastest(
        [
            lambda: [hypergradient(*member, spec) for member in zip(problems, lams)],
            lambda: hypergradient(batched, lam, spec),
            lambda: hypergradient(weights_form, lam, spec),
            lambda: hypergradient(vmapped, lam, spec),
        ],
        repeats,
    )
    return row(
        case, label(spec), family.T, members, alone / members, together / members, weights / members, vmap / members
    )


def main(args) -> int:
    configure_torch(args.threads)
    spec = check_memberwise(args.method)
    settings = TaskInteractionSettings(T=args.T)
    rows = []
    cases = [(dataset, members) for dataset in args.cases for members in args.members]
    for case, members in cases:
        if case == "omniglot":
            rows.append(measure_omniglot(members, args.repeats))
        else:
            family, problems, lams = task_interaction_members(case, members, settings, args.compile)
            rows.append(measure(f"task interaction {case}", family, problems, lams, spec, args.repeats))
        print(
            f"{rows[-1]['case']:28s} {rows[-1]['method']:8s} B={members:3d}: one at a time "
            f"{rows[-1]['one at a time s/member'] * 1e3:9.2f} ms/member, batched "
            f"{rows[-1]['batched s/member'] * 1e3:9.2f} ms/member ({rows[-1]['speed-up']:.2f}x)"
            + (
                f", weights form {rows[-1]['weights-form batched s/member'] * 1e3:9.2f} ms/member, vmap batched "
                f"{rows[-1]['vmap batched s/member'] * 1e3:9.2f} ms/member"
                if rows[-1]["vmap batched s/member"] != ""
                else ""
            ),
            flush=True,
        )
    if args.output:
        write_csv(args.output, FIELDS, rows)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench-batched",
        help="seconds per member of a hypergradient, one at a time vs batched",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--members", type=int, nargs="+", default=[1, 5, 10], help="batch sizes B")
    parser.add_argument(
        "--cases", nargs="+", default=[*sorted(CLASSES), "omniglot"], choices=[*sorted(CLASSES), "omniglot"]
    )
    parser.add_argument("--method", type=method_argument, default="krmd-K1", help="a memberwise method (label or JSON)")
    parser.add_argument("--T", type=int, default=TaskInteractionSettings().T, help="lower-level steps")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case (the fastest is kept)")
    parser.add_argument("--compile", action="store_true", help="the steps through the compiled fast path")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--output", help="also write the rows to this CSV")
    parser.set_defaults(run=main)
