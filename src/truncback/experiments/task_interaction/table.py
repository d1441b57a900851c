"""Table 3 (task interaction, sec. 4.2.2) from the raw results: test accuracy mean ± std over
trials, average hyper-iterations until the early stop, seconds per hyper-iteration and peak memory,
per dataset and method.

``python -m truncback table-task-interaction --results results/full/task_interaction/*/trial*_*.json --output paper_tables/table3_task_interaction``
"""

import pandas as pd

from truncback.experiments.task_interaction.run import TaskInteractionResult
from truncback.io.tables import grouped_by_label, mean_std, register_table

DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
CAPTION = (
    "Table 3: test accuracy (%) for task interaction, mean ± std over {trials} trial(s) (subsets of "
    "{sizes}; T = {T}, step size {lr}). Features: {features}. Avg. Iter.: hyper-iterations until the "
    "validation loss had not improved by {min_delta} for {patience} iterations (at most {max_iter}). "
    "Sec/iter and peak MiB are wall-clock and allocator measurements of one hypergradient and vary "
    "from run to run."
)


def dataset_order(name: str) -> tuple:
    return (name not in DATASET_NAMES, name)


def task_interaction_table(results: list[TaskInteractionResult], timings: list[dict]) -> tuple[pd.DataFrame, str]:
    """One row per (dataset, method), methods in the order of the results, after each dataset's
    accuracy at the initial hyperparameters (one per trial)."""
    rows = []
    for dataset in sorted({r.dataset for r in results}, key=dataset_order):
        chosen = [i for i, r in enumerate(results) if r.dataset == dataset]
        runs, times = [results[i] for i in chosen], [timings[i] for i in chosen]
        name = DATASET_NAMES.get(dataset, dataset)
        baselines = {r.trial: r.baseline["test_acc"] for r in runs}
        rows.append(
            {
                "Dataset": name,
                "Method": "initial λ",
                "Avg. Acc.": mean_std([baselines[t] for t in sorted(baselines)], 2),
                "Avg. Iter.": "-",
                "Sec/iter": "-",
                "States held": "-",
                "Peak MiB": "-",
            }
        )
        for group in grouped_by_label(runs, times):
            method_runs = [r for r, _ in group]
            rows.append(
                {
                    "Dataset": name,
                    "Method": method_runs[0].display,
                    "Avg. Acc.": mean_std([r.final["test_acc"] for r in method_runs], 2),
                    "Avg. Iter.": f"{sum(r.iterations for r in method_runs) / len(method_runs):.0f}",
                    "Sec/iter": mean_std([t["seconds_per_iteration"] for _, t in group], 3),
                    "States held": str(method_runs[0].run.states_held),
                    "Peak MiB": mean_std([r.run.hypergradient_peak_mib for r in method_runs], 2),
                }
            )
    return pd.DataFrame(rows), caption(results)


def caption(results: list[TaskInteractionResult]) -> str:
    some = results[0].settings
    sizes = "; ".join(
        sorted(
            {
                f"{DATASET_NAMES.get(r.dataset, r.dataset)}: {r.sizes['train']} train / "
                f"{r.sizes['val']} val / {r.sizes['test']} test"
                for r in results
            }
        )
    )
    features = "; ".join(sorted({r.features["extractor"] for r in results}))
    if not all(r.features["pretrained"] for r in results):
        features = f"{features}, NOT an ImageNet-pretrained ResNet (reduced scale)"
    return CAPTION.format(
        trials=len({r.trial for r in results}),
        sizes=sizes,
        T=some["T"],
        lr=some["lr"],
        features=features,
        min_delta=some["min_delta"],
        patience=some["patience"],
        max_iter=some["max_hyper_iterations"],
    )


def register(subparsers) -> None:
    register_table(
        subparsers,
        "table-task-interaction",
        "Table 3 from task-interaction results",
        __doc__,
        TaskInteractionResult,
        task_interaction_table,
        shared_settings=False,
    )
