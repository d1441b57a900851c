"""Whether the fast path's product threshold holds on this machine: torch's own float32 CPU matrix
product against oneDNN's (``hypergrad.onednn.onednn_mm``) on the shapes of this project's steps and a
sweep around the threshold, each with the kernel the oneDNN pass picks for it (oneDNN from
``MIN_MULTIPLY_ADDS`` multiply-adds on) and whether that is the faster one here.

The threshold is fixed (a run's kernels, hence its float32 bits, must not depend on a timing); it was
measured on one AMD EPYC with MKL. On another CPU or BLAS this table shows whether it still holds, and
by how much a wrong pick costs.

``python -m truncback bench-products [--threads N] [--output CSV]`` (part of ``make bench``)
"""

import argparse
import csv
import statistics
import sys
import time

import torch

from truncback.runtime.atomic import atomic_path

SHAPES = [
    (25, 392, 5, "tiny (the toy nets' size)"),
    (300, 512, 100, "CIFAR-100 logits"),
    (2000, 512, 40, "task interaction, 40 classes"),
    (2000, 512, 100, "task interaction, 100 classes"),
    (4096, 512, 8, "the threshold: 2^24"),
    (5000, 785, 10, "hypercleaning logits X W^T"),
    (10, 5000, 785, "hypercleaning gradient G^T X"),
    (1024, 1024, 64, "sweep"),
    (4096, 1024, 64, "sweep"),
]
QUICK_SHAPES = [(25, 392, 5, "tiny"), (256, 256, 256, "the threshold: 2^24")]


def median_microseconds(product, a, b, calls: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean time of ``calls`` calls of ``product(a, b)``, in microseconds."""
    product(a, b)  # warm-up: oneDNN primitive creation, allocator
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            product(a, b)
        rounds.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(rounds)


def compare_products(shapes, repeats: int = 5, budget_seconds: float = 0.05) -> list[dict]:
    """One row per (m, k, n, where): both kernels' times, the pass's pick and the faster kernel."""
    from truncback.hypergrad import onednn

    rows = []
    generator = torch.Generator().manual_seed(0)
    for m, k, n, where in shapes:
        a, b = torch.randn(m, k, generator=generator), torch.randn(k, n, generator=generator)
        first = time.perf_counter()
        torch.mm(a, b)
        calls = max(1, min(1000, int(budget_seconds / max(time.perf_counter() - first, 1e-6))))
        torch_us = median_microseconds(torch.mm, a, b, calls, repeats)
        onednn_us = median_microseconds(onednn.onednn_mm, a, b, calls, repeats) if onednn.AVAILABLE else float("nan")
        pick = "onednn" if onednn.AVAILABLE and onednn.large_enough(m * k * n) else "torch"
        faster = "onednn" if onednn_us < torch_us else "torch"
        rows.append(
            {
                "m": m,
                "k": k,
                "n": n,
                "multiply_adds": m * k * n,
                "where": where,
                "torch_us": round(torch_us, 1),
                "onednn_us": round(onednn_us, 1),
                "torch_over_onednn": round(torch_us / onednn_us, 2),
                "pass_picks": pick,
                "faster_here": faster if onednn.AVAILABLE else "torch (no oneDNN operator)",
                "pick_is_faster": pick == faster or not onednn.AVAILABLE,
            }
        )
    return rows


def summary(rows: list[dict], threshold: int) -> str:
    wrong = [row for row in rows if not row["pick_is_faster"]]
    line = (
        f"the pass's threshold ({threshold} multiply-adds) picks the faster kernel for "
        f"{len(rows) - len(wrong)} of {len(rows)} shapes on this machine"
    )
    if wrong:
        costs = ", ".join(
            f"{row['m']}x{row['k']}x{row['n']} ({row['pass_picks']} picked, "
            f"{max(row['torch_us'], row['onednn_us']) / min(row['torch_us'], row['onednn_us']):.2f}x slower)"
            for row in wrong
        )
        line += f"; not for {costs}"
    return line


def main(args) -> int:
    from truncback.hypergrad import onednn

    if args.threads:
        torch.set_num_threads(args.threads)
    if not onednn.AVAILABLE:
        print("this torch lacks oneDNN's linear operator: the fast path keeps torch's products", file=sys.stderr)
    rows = compare_products(QUICK_SHAPES if args.quick else SHAPES, repeats=2 if args.quick else 5)
    columns = list(rows[0])
    print(f"float32 CPU matrix products, {torch.get_num_threads()} thread(s), torch {torch.__version__}")
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(str(row[column]) for column in columns))
    print(summary(rows, onednn.MIN_MULTIPLY_ADDS))
    if args.output:
        with atomic_path(args.output) as temporary, open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench-products",
        help="torch's float32 CPU matrix product against oneDNN's, and the fast path's pick, on this machine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    parser.add_argument("--quick", action="store_true", help="two small shapes (seconds; for tests)")
    parser.add_argument("--output", help="CSV file to write as well")
    parser.set_defaults(run=main)
