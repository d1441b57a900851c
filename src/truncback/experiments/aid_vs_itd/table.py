"""The AID-vs-ITD table: per problem, start (w_0 = 0 or w*) and method, the iterations t after which
the relative hypergradient error stays below each tolerance, the fitted linear rate, and the
wall-clock seconds of one call at that t for the smallest tolerance.

``python -m truncback table-aid-vs-itd --results ridge.json logistic.json --output paper_tables/companion_aid_vs_itd``
"""

import argparse

import pandas as pd

from truncback.experiments.aid_vs_itd.analysis import fitted_rate, iterations_to
from truncback.runtime.files import read_json, timing_path
from truncback.io.tables import write_table


STARTS = {"cold": "w_0 = 0, k = t", "warm": "w_0 = w*"}


def build(results: list[dict], timings: list[dict]) -> tuple[pd.DataFrame, str]:
    rows = []
    for result, timing in zip(results, timings):
        grid = result["iterations"]
        tolerances = result["settings"]["tolerances"]
        for start, setting_name in STARTS.items():
            for entry in result["methods"][start]:
                reached = [iterations_to(grid, entry["error"], tol) for tol in tolerances]
                row = {"Problem": result["problem"], "Start": setting_name, "Method": entry["display"]}
                row.update(
                    {
                        f"t to {tol:g}": str(t) if t is not None else f"> {grid[-1]}"
                        for tol, t in zip(tolerances, reached)
                    }
                )
                rate = fitted_rate(grid, entry["error"])
                row["Fitted rate"] = f"{rate:.5f}" if rate is not None else "-"
                row["Rate bound"] = f"{result['rate_bound']:.5f}"
                seconds = timing["seconds"][start][entry["label"]]
                row[f"Time at t to {tolerances[-1]:g} (s)"] = (
                    f"{seconds[grid.index(reached[-1])]:.3g}" if reached[-1] is not None else "-"
                )
                rows.append(row)
    caption = (
        "AID vs ITD (Grazzi et al. 2020): iterations t after which ||h - d f|| / ||d f|| stays below each "
        "tolerance on the grid of t. Start w_0 = 0: t lower-level steps, AID with k = t solver iterations; "
        "start w_0 = w*: the lower level already solved, t reverse (ITD, K-RMD) or solver (AID) iterations. "
        "Fitted rate q of error ~ C q^t over errors in [1e-10, 1e-1]; rate bound 1 - mu/L of the lower-level "
        "map; seconds of one call at that t (wall clock)"
    )
    return pd.DataFrame(rows), caption


def main(args) -> int:
    results = [read_json(path) for path in args.results]
    timings = [read_json(timing_path(path)) for path in args.results]
    frame, caption = build(results, timings)
    write_table(frame, args.output, caption)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "table-aid-vs-itd",
        help="iterations to tolerance of AID and ITD",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--results", nargs="+", required=True, help="aid-vs-itd result JSON files")
    parser.add_argument("--output", required=True, help="output path without suffix (.csv/.md/.tex/.html)")
    parser.set_defaults(run=main)
