"""How far task interaction's batched jobs are from the fastest this processor could run them: the
floor under the rehearsal's estimate.

A batched job's hypergradient (B trials of one dataset, ``task_interaction.batched``) is a chain of
batched matrix products (the logits Q K, the penalty's M Q, and in the reverse pass Omega K, M U and
U Q^T: V n^2 + V^2 n multiply-adds and more per member and step) and of element-wise work between them
(the softmax, its Jacobian, the sums). This command profiles one batched hypergradient of each job's
method at the paper's sizes (seeded random data of those shapes: the time does not depend on the
values), with ``torch.profiler`` (the least disturbed of ``--repeats`` profiled calls): the products'
share of the call's wall time, their multiply-adds (from the operands' shapes) and the rate they run
at, beside this core's rate on one large product (a 1024 x 1024 x 1024 single-precision product, the
best a product reaches here). Two floors follow, for each job of the rehearsal's estimate
(``full_run_estimates_jobs.csv``) and in total, each scaling the job's hypergradient seconds by a
share of the profiled call:

- **products alone**: every operation but the products taking no time;
- **products at the large-product rate**: the products' multiply-adds at that rate as well, which no
  product of these shapes reaches (CIFAR-10's have 10 rows and stream one Gram matrix per member).

The profiler lengthens the call around every operation, not the product kernels, so both shares, and
the floors, err low. The rest of a job (its exact comparisons, the optimiser, the overhead) is kept at its estimate, and
the feature jobs are counted as estimated. A floor above a target says that no implementation of the
same arithmetic reaches the target on this processor.

``python -m truncback.experiments.complexity.floor --estimates paper_tables/rehearsal/full_run_estimates_jobs.csv --output docs/measurements/task_interaction_floor.md``
"""

import argparse
import math
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch.profiler import ProfilerActivity, profile

from truncback.experiments.complexity.batched import fastest, task_interaction_members
from truncback.experiments.task_interaction.settings import TaskInteractionSection, TaskInteractionSettings
from truncback.hypergrad import hypergradient, parse_spec
from truncback.hypergrad.batched import stack
from truncback.runtime.atomic import atomic_path
from truncback.runtime.determinism import configure_torch
from truncback.runtime.machine import processor
from truncback.runtime.measure import hardware

PRODUCTS = {
    "aten::mm": 0,
    "aten::bmm": 0,
    "aten::addmm": 1,
    "aten::addmm_": 1,
    "aten::baddbmm": 1,
    "aten::baddbmm_": 1,
}
"""The product kernels torch's CPU backend runs, and the position of the left operand among each one's
inputs (after the added tensor, for the ``add`` forms)."""


@dataclass(frozen=True)
class Products:
    """One profiled call: its wall seconds, its product kernels' seconds (self times summed) and their
    multiply-adds. The profiler's bookkeeping lengthens the call around every operation, not the
    kernels, so the products' share of the call errs low, and so do the floors built on it."""

    wall: float
    seconds: float
    multiply_adds: int

    @property
    def share(self) -> float:
        """The products' share of the call's wall time."""
        return self.seconds / self.wall

    @property
    def rate(self) -> float:
        """Multiply-adds a second."""
        return self.multiply_adds / self.seconds


def multiply_adds(name: str, shapes: list) -> int:
    """The multiply-adds of one call of the product kernel ``name`` with inputs of ``shapes``: the left
    operand's entries times the right operand's columns (B m k times n for (B, m, k) @ (B, k, n))."""
    left, right = shapes[PRODUCTS[name]], shapes[PRODUCTS[name] + 1]
    return math.prod(left) * right[-1]


def profile_products(function) -> Products:
    """``function`` called once under torch.profiler: its wall time, and the time and multiply-adds of
    its product kernels (``PRODUCTS``)."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as profiler:
        start = time.perf_counter()
        function()
        wall = time.perf_counter() - start
    products = [event for event in profiler.events() if event.name in PRODUCTS]
    return Products(
        wall=wall,
        seconds=sum(event.self_cpu_time_total for event in products) / 1e6,
        multiply_adds=sum(multiply_adds(event.name, event.input_shapes) for event in products),
    )


def large_product_rate(size: int = 1024, repeats: int = 5) -> float:
    """Multiply-adds a second of a size x size x size single-precision product, the fastest of
    ``repeats`` after a warm-up (``fastest``, at the threads torch is set to)."""
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=generator) for _ in range(2))
    (best,) = fastest([lambda: a @ b], repeats)
    return size**3 / best


def task_interaction_jobs(estimates: Path, members: int) -> pd.DataFrame:
    """The rehearsal's task-interaction rows of ``estimates``; a ValueError naming the file when it has
    none, or when a run job's note does not say it batches ``members`` trials."""
    frame = pd.read_csv(estimates)
    frame = frame[frame["experiment"] == "task_interaction"].reset_index(drop=True)
    if frame.empty:
        raise ValueError(f"{estimates}: no task_interaction rows")
    runs = ~frame["job"].str.startswith("features_")
    batched = frame["note"].fillna("").str.startswith(f"{members} runs batched")
    if not batched[runs].all():
        jobs = ", ".join(frame.loc[runs & ~batched, "job"])
        raise ValueError(f"{estimates}: the jobs {jobs} do not batch {members} trials (--members)")
    return frame


def measure_job(job: str, members: int, T: int, repeats: int) -> dict:
    """The batched hypergradient of run job ``job`` (``<dataset>_<method label>``): its fastest wall
    seconds over ``repeats`` rounds, and the fastest of ``repeats`` profiled calls (the least disturbed,
    as ``fastest`` keeps)."""
    dataset, method = job.split("_", 1)
    spec = parse_spec(method)
    family, problems, lams = task_interaction_members(dataset, members, TaskInteractionSettings(T=T), False)
    batched, lam = family.batched(problems), stack(lams)
    (seconds,) = fastest([lambda: hypergradient(batched, lam, spec)], repeats)
    profiles = [profile_products(lambda: hypergradient(batched, lam, spec)) for _ in range(repeats)]
    return {"seconds": seconds, "products": min(profiles, key=lambda found: found.wall)}


def floors(frame: pd.DataFrame, measured: dict, rate: float) -> pd.DataFrame:
    """Per job of ``frame`` (``task_interaction_jobs``): the estimate, the part of it spent in
    hypergradients, what ``measured`` (``measure_job`` per run job) found, and the two floors (module
    docstring), in seconds; the feature jobs at their estimate."""
    rows = []
    for job in frame.to_dict("records"):
        estimate = float(job["estimate s"])
        row = {
            "job": job["job"],
            "estimate s": estimate,
            "products alone s": estimate,
            "large-product rate s": estimate,
        }
        if job["job"] in measured:
            seconds, found = measured[job["job"]]["seconds"], measured[job["job"]]["products"]
            hypergradients = float(job["s/hypergradient"]) * float(job["iterations"])
            rest = estimate - hypergradients
            row |= {
                "hypergradients s": hypergradients,
                "batched hypergradient here ms": seconds * 1e3,
                "profiled ms": found.wall * 1e3,
                "products share": found.share,
                "products GMAC/s": found.rate / 1e9,
                "products alone s": rest + hypergradients * found.share,
                "large-product rate s": rest + hypergradients * found.multiply_adds / rate / found.wall,
            }
        rows.append(row)
    return pd.DataFrame(rows)


def estimates_processor(estimates: Path) -> str:
    """The processor that the provenance beside ``estimates`` names ("" when it names none)."""
    provenance = estimates.parent / "provenance.yaml"
    if not provenance.is_file():
        return ""
    import yaml

    return str((yaml.safe_load(provenance.read_text()) or {}).get("processor", ""))


def page(command: str, estimates: Path, table: pd.DataFrame, rate: float, members: int) -> str:
    """The measurement page: what ran where, the per-job table and the totals in job-hours."""
    here, there = processor(), estimates_processor(estimates)
    same = "the same processor" if here and here == there else f"**another processor ({there or 'not named'})**"
    totals = table[["estimate s", "products alone s", "large-product rate s"]].sum() / 3600
    order = ["job", "estimate s", "hypergradients s", "batched hypergradient here ms", "profiled ms", "products share"]
    order += ["products GMAC/s", "products alone s", "large-product rate s"]
    shown = table.reindex(columns=order).rename(
        columns={
            "job": "Job",
            "estimate s": "Estimate (s)",
            "hypergradients s": "of which hypergradients (s)",
            "batched hypergradient here ms": f"One batched hypergradient here, B = {members} (ms)",
            "profiled ms": "The same profiled (ms)",
            "products share": "Products' share of it",
            "products GMAC/s": "Products' rate (GMAC/s)",
            "products alone s": "Floor: products alone (s)",
            "large-product rate s": "Floor: at the large-product rate (s)",
        }
    )
    lines = [
        "# Task interaction's floor on this processor",
        "",
        f"Written by `{command}`; what it measures and why: the module's docstring "
        "(`src/truncback/experiments/complexity/floor.py`).",
        "",
        f"Measured on {hardware()}, processor {here or 'not named'}, one torch thread; the estimates are the "
        f"rehearsal's ({estimates.as_posix()}), made on {same}.",
        f"A 1024 x 1024 x 1024 single-precision product runs at {rate / 1e9:.1f} GMAC/s here.",
        "",
        shown.astype(object).where(shown.notna(), None).to_markdown(index=False, floatfmt=".4g", missingval=""),
        "",
        "| Task interaction | Job-hours |",
        "|:--|--:|",
        f"| the rehearsal's estimate | {totals['estimate s']:.2f} |",
        f"| floor: every operation but the products free | {totals['products alone s']:.2f} |",
        f"| floor: the products' multiply-adds at the large-product rate as well | {totals['large-product rate s']:.2f} |",
        "",
    ]
    return "\n".join(lines)


def command_line(args) -> str:
    words = ["python", "-m", "truncback.experiments.complexity.floor", "--estimates", Path(args.estimates).as_posix()]
    if args.members != parser().get_default("members"):
        words += ["--members", str(args.members)]
    if args.T != parser().get_default("T"):
        words += ["--T", str(args.T)]
    return shlex.join(words + ["--output", args.output])


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    configure_torch(args.threads)
    estimates = Path(args.estimates)
    try:
        frame = task_interaction_jobs(estimates, args.members)
    except (OSError, KeyError, ValueError) as error:
        print(f"floor: {error}", file=sys.stderr)
        return 2
    measured = {}
    for job in frame["job"]:
        if not job.startswith("features_"):
            measured[job] = measure_job(job, args.members, args.T, args.repeats)
            found, seconds = measured[job]["products"], measured[job]["seconds"]
            print(
                f"{job:20s} {seconds * 1e3:9.2f} ms ({found.wall * 1e3:.2f} ms profiled), products {found.share:.0%} "
                f"at {found.rate / 1e9:.1f} GMAC/s",
                file=sys.stderr,
                flush=True,
            )
    rate = large_product_rate()
    table = floors(frame, measured, rate)
    with atomic_path(args.output) as path:
        path.write_text(page(command_line(args), estimates, table, rate, args.members))
    return 0


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m truncback.experiments.complexity.floor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--estimates", required=True, help="the rehearsal's full_run_estimates_jobs.csv")
    parser.add_argument(
        "--members",
        type=int,
        default=TaskInteractionSection().trials,
        help="trials a batched job runs (the paper's)",
    )
    parser.add_argument("--T", type=int, default=TaskInteractionSettings().T, help="lower-level steps")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per job (the fastest is kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--output", required=True, help="markdown file")
    return parser


if __name__ == "__main__":
    sys.exit(main())
