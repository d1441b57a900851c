"""Table 3 (task interaction, sec. 4.2.2) from the raw trial results: test accuracy mean ± std over
trials, average hyper-iterations until the early stop, seconds per hyper-iteration and peak memory,
per dataset and method.

``python -m truncback table-task-interaction --results results/full/task_interaction/*/trial*.json --output paper_tables/table3_task_interaction``
"""

import argparse
import json
from collections import defaultdict

import pandas as pd

from truncback.tables import mean_std, write_table

DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
CAPTION = ("Table 3: test accuracy (%) for task interaction, mean ± std over {trials} trial(s) (subsets of "
           "{sizes}; T = {T}, step size {lr}). Features: {features}. Avg. Iter.: hyper-iterations until the "
           "validation loss had not improved by {min_delta} for {patience} iterations (at most {max_iter}). "
           "Sec/iter and peak MiB are wall-clock and allocator measurements of one hypergradient and vary "
           "from run to run.")


def method_label(K: int, T: int) -> str:
    return "Full RMD" if K == T else f"{K}-RMD"


def task_interaction_table(results: list[dict]) -> tuple[pd.DataFrame, str]:
    """One row per (dataset, method), plus each dataset's accuracy at the initial hyperparameters."""
    by_dataset = defaultdict(list)
    for result in results:
        by_dataset[result["dataset"]].append(result)
    rows = []
    for dataset in sorted(by_dataset, key=lambda name: (name not in DATASET_NAMES, name)):
        trials = by_dataset[dataset]
        name = DATASET_NAMES.get(dataset, dataset)
        rows.append({"Dataset": name, "Method": "initial λ",
                     "Avg. Acc.": mean_std([t["baseline"]["test_acc"] for t in trials], 2),
                     "Avg. Iter.": "-", "Sec/iter": "-", "States held": "-", "Peak MiB": "-"})
        by_K = defaultdict(list)
        for trial in trials:
            for method in trial["methods"]:
                by_K[method["K"]].append(method)
        for K in sorted(by_K):
            runs = by_K[K]
            rows.append({"Dataset": name, "Method": method_label(K, trials[0]["settings"]["T"]),
                         "Avg. Acc.": mean_std([run["final"]["test_acc"] for run in runs], 2),
                         "Avg. Iter.": f"{sum(run['iterations'] for run in runs) / len(runs):.0f}",
                         "Sec/iter": mean_std([run["measured"]["seconds_per_iteration"] for run in runs], 3),
                         "States held": str(runs[0]["measured"]["states_held"]),
                         "Peak MiB": mean_std([run["measured"]["hypergradient_peak_mib"] for run in runs], 2)})
    return pd.DataFrame(rows), caption(results)


def caption(results: list[dict]) -> str:
    some = results[0]["settings"]
    sizes = "; ".join(sorted({f"{DATASET_NAMES.get(r['dataset'], r['dataset'])}: {r['sizes']['train']} train / "
                              f"{r['sizes']['val']} val / {r['sizes']['test']} test" for r in results}))
    extractors = sorted({r["features"]["extractor"] for r in results})
    features = "; ".join(extractors)
    if not all(r["features"]["pretrained"] for r in results):
        features = f"{features}, NOT an ImageNet-pretrained ResNet (reduced scale)"
    return CAPTION.format(trials=len({r["trial"] for r in results}), sizes=sizes, T=some["T"], lr=some["lr"],
                          features=features, min_delta=some["min_delta"],
                          patience=some["patience"], max_iter=some["max_hyper_iterations"])


def main(args) -> int:
    results = [json.loads(open(path).read()) for path in args.results]
    frame, text = task_interaction_table(results)
    write_table(frame, args.output, text)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("table-task-interaction", help="Table 3 from task-interaction results",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", nargs="+", required=True, help="task-interaction trial JSON files")
    parser.add_argument("--output", required=True, help="output path without suffix (.csv/.md/.tex are written)")
    parser.set_defaults(run=main)
