"""Table 2 (hypercleaning metrics after the hyper-optimisation) from the raw run results."""

import argparse
from collections import defaultdict

import pandas as pd

from truncback.results import read_runs
from truncback.tables import mean_std, write_table

CAPTION = ("Table 2: data hypercleaning after {iterations} hyper-iterations (T = {T}, {n_train} training "
           "examples, half corrupted); mean ± std over {seeds} seed(s). Sec/iter is the wall-clock time of one "
           "hypergradient (it varies from run to run); Peak MiB is the most memory its tensors held at once "
           "(allocator events) and States held the lower-level states K-RMD kept.")


def hypercleaning_table(results: list[dict]) -> tuple[pd.DataFrame, str]:
    by_K = defaultdict(list)
    for result in results:
        by_K[result["K"]].append(result)
    some = results[0]["settings"]
    baseline_by_seed = {r["seed"]: r["baseline"] for r in results}  # the same split for every K
    rows = [_row("no cleaning (λ = 0)", [baseline_by_seed[seed] for seed in sorted(baseline_by_seed)], None)]
    for K in sorted(by_K):
        label = "Full RMD" if K == some["T"] else f"{K}-RMD"
        rows.append(_row(label, [r["final"] for r in by_K[K]], [r["measured"] for r in by_K[K]]))
    caption = CAPTION.format(iterations=some["hyper_iterations"], T=some["T"], n_train=some["n_train"],
                             seeds=len({r["seed"] for r in results}))
    return pd.DataFrame(rows), caption


def _row(method, finals, measured) -> dict:
    def column(key):
        return [final[key] for final in finals]

    row = {"Method": method, "Test Acc.": mean_std(column("test_acc"), 2),
           "Val. Acc.": mean_std(column("val_acc"), 2), "Val. Loss": mean_std(column("val_loss"), 3),
           "F1": mean_std(column("f1"), 2)}
    row["Sec/iter"] = mean_std([m["seconds_per_iteration"] for m in measured], 3) if measured else "-"
    row["States held"] = str(measured[0]["states_held"]) if measured else "-"
    row["Peak MiB"] = mean_std([m["hypergradient_peak_mib"] for m in measured], 1) if measured else "-"
    return row


def main(args) -> int:
    results = read_runs(args.results)
    frame, caption = hypercleaning_table(results)
    write_table(frame, args.output, caption)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("table-hypercleaning", help="Table 2 from hypercleaning results",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", nargs="+", required=True, help="hypercleaning result JSON files")
    parser.add_argument("--output", required=True, help="output path without suffix (.csv/.md/.tex are written)")
    parser.set_defaults(run=main)
