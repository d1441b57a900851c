"""The table beside Table 1: our methods against what a user writes by hand (plain-autograd unrolled
back-propagation, the truncated recompute algorithm, AID's solvers on ``torch.autograd.grad``) and
against the floor of 1-RMD (the step's products alone), from ``bench-baselines``' CSV: one row per
(ours, baseline) pair and horizon T, with both median times, their ratio and both peak memories.

``python -m truncback table-baselines --results results/full/complexity/baselines.csv --output paper_tables/table1_baselines``
"""

import argparse

import pandas as pd

from truncback.io.tables import write_table
from truncback.runtime.files import read_csv

COLUMNS = (
    "problem",
    "T",
    "ours",
    "baseline",
    "ours_seconds",
    "baseline_seconds",
    "ratio",
    "ours_peak_mib",
    "baseline_peak_mib",
)
"""The columns of ``bench-baselines``' CSV: ``truncback.experiments.complexity.baselines`` writes them, this module reads them
(defined here, where no torch is imported, so the table job does not pay for it)."""
CAPTION = (
    "Our methods against hand-written plain autograd and the matmul floor on the {problem} problem, "
    "float32, alternating in one process: the median wall-clock seconds of one hypergradient over "
    "the timed rounds (they vary from run to run), their ratio (below 1: ours is faster) and the peak "
    "MiB of one call (allocator events). 'compiled': our method on the compiled fast path "
    "(gradient_descent(..., compile=True)); 'compiled-torch-matmul': the same with torch's own "
    "matrix products. Baselines: 'autograd unrolled' back-propagates through the T steps kept with "
    "create_graph=True; 'autograd truncated K' runs the forward steps without a graph and re-runs the "
    "last K with one; 'autograd aid_cg/aid_fp' are AID's solvers written on torch.autograd.grad; "
    "'floor' is (T + 2) times the step's matrix products alone."
)


def read_results(path) -> pd.DataFrame:
    """``bench-baselines``' CSV (refused when stale), with an error naming the file when it lacks a column."""
    frame = read_csv(path)
    missing = [column for column in COLUMNS if column not in frame]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}: it is not a bench-baselines CSV of this version")
    return frame


def baselines_table(frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(table, caption): the rows grouped by (ours, baseline) pair in the CSV's order, then by T."""
    pairs = list(dict.fromkeys(zip(frame["ours"], frame["baseline"])))
    order = {pair: i for i, pair in enumerate(pairs)}
    frame = frame.assign(pair=[order[pair] for pair in zip(frame["ours"], frame["baseline"])])
    frame = frame.sort_values(["pair", "T"], kind="stable")
    table = pd.DataFrame(
        {
            "Ours": frame["ours"],
            "Baseline": frame["baseline"],
            "T": frame["T"].astype(int),
            "Time ours (s)": frame["ours_seconds"],
            "Time baseline (s)": frame["baseline_seconds"],
            "Time ratio": frame["ratio"],
            "Peak MiB ours": frame["ours_peak_mib"],
            "Peak MiB baseline": frame["baseline_peak_mib"],
        }
    )
    problems = ", ".join(dict.fromkeys(frame["problem"]))
    return table.reset_index(drop=True), CAPTION.format(problem=problems)


def main(args) -> int:
    table, caption = baselines_table(read_results(args.results))
    write_table(table, args.output, caption)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "table-baselines",
        help="our methods against hand-written autograd and the matmul floor, beside Table 1",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--results", required=True, help="CSV written by bench-baselines")
    parser.add_argument("--output", required=True, help="output path without suffix (.csv/.md/.tex/.html are written)")
    parser.set_defaults(run=main)
