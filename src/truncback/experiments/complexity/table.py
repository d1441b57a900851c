"""Table 1 (sec. 2, complexity of the hypergradient methods) from the benchmark's measurements: for
each method, the O() time and memory the paper (or the companion paper that introduced the method)
gives (its ``cost`` in ``METHODS``), beside the measured seconds and peak MiB of one hypergradient at
each T, and the growth exponents fitted in T (the slope of log time and log memory against log T):
"K-RMD's memory does not grow with T" reads as a memory exponent near 0, full RMD's near 1,
checkpointing's near 0.5.

``python -m truncback table-complexity --measurements results/full/complexity/measurements.csv --output paper_tables/table1_complexity``
"""

import argparse
import math

import numpy as np
import pandas as pd

from truncback.hypergrad import METHODS, display_name, parse_spec
from truncback.io.tables import write_table
from truncback.runtime.files import read_csv

CAPTION = (
    "Table 1: time and memory of one hypergradient on the {problem} problem ({size}), one torch thread, "
    "float32. Paper time/memory: the O() entries of the paper's Table 1 (and of the companion papers for "
    "AID, FOM and UFOM). Time: wall-clock seconds of the whole computation, forward pass included, the "
    "fastest of 3 calls (it varies from run to run); Peak MiB: the most memory its tensors held at once "
    "(allocator events, deterministic). Exponents: least-squares slopes of log time and log memory against "
    "log T over the measured T. FMD is timed on 8 of the N directions and scaled by N/8; UFOM in its worst "
    "case (the exact branch, q = 1), up to T = 100."
)


def shown(value: float) -> str:
    """An exponent with two decimals ("-" when it could not be fitted; -0.00 shown as 0.00)."""
    return "-" if value != value else f"{value + 0.0:.2f}".replace("-0.00", "0.00")


def measured(value: float) -> str:
    """A measurement with 4 significant digits, "-" for a case that was not measured."""
    return "-" if value != value else f"{value:.4g}"


def exponent(T_values, values) -> float:
    """Slope of log(value) against log(T) over the finite positive values (nan with fewer than two)."""
    points = [(math.log(T), math.log(v)) for T, v in zip(T_values, values) if v == v and v > 0]
    if len(points) < 2:
        return math.nan
    x, y = np.array(points).T
    return float(np.polyfit(x, y, 1)[0])


def complexity_table(measurements: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """One row per method label (in the order of the measurements)."""
    T_values = sorted(measurements["T"].unique())
    rows = []
    for name in dict.fromkeys(measurements["label"]):
        cases = measurements[measurements["label"] == name].set_index("T").reindex(T_values)
        spec = parse_spec(name)  # the label names the method and the options it was measured with
        cost = METHODS[spec["name"]].cost
        row = {
            "Method": display_name(spec),
            "Paper time": cost.time,
            "Paper memory": cost.memory,
            "Source": cost.source,
        }
        for T in T_values:
            row[f"Time @ T={T} (s)"] = measured(cases.loc[T, "seconds"])
        row["Time exponent"] = shown(exponent(T_values, cases["seconds"]))
        for T in T_values:
            row[f"Peak MiB @ T={T}"] = measured(cases.loc[T, "peak_mib"])
        row["Memory exponent"] = shown(exponent(T_values, cases["peak_mib"]))
        row["Expected memory exponent"] = shown(cost.memory_exponent)
        row[f"States held @ T={T_values[-1]}"] = (
            "-" if cases["states_held"].isna().iloc[-1] else str(int(cases["states_held"].iloc[-1]))
        )
        rows.append(row)
    some = measurements.iloc[0]
    size = (
        f"N = {int(some['n_train'])} hyperparameters, W in R^(10x785)"
        if some["problem"] == "hypercleaning"
        else "lambda = initialisation and step size"
    )
    return pd.DataFrame(rows), CAPTION.format(problem=some["problem"], size=size)


def read_measurements(path, n_train: int) -> pd.DataFrame:
    """``bench-methods``' CSV (refused when stale), with the problem's number of hyperparameters."""
    frame = read_csv(path)
    missing = sorted({"problem", "method", "T", "K", "seconds", "peak_mib", "states_held", "label"} - set(frame))
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}: it is not a bench-methods CSV of this version")
    frame["n_train"] = n_train
    frame.loc[frame["states_held"] == 0, "states_held"] = math.nan  # cases skipped (UFOM beyond T = 100)
    return frame


def main(args) -> int:
    frame, caption = complexity_table(read_measurements(args.measurements, args.n_train))
    write_table(frame, args.output, caption)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "table-complexity",
        help="Table 1 from the benchmark's measurements",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--measurements", required=True, help="CSV written by bench-methods")
    parser.add_argument("--n-train", type=int, default=5000, help="the problem's number of hyperparameters")
    parser.add_argument("--output", required=True, help="output path without suffix (.csv/.md/.tex are written)")
    parser.set_defaults(run=main)
