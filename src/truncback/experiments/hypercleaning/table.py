"""Table 2 (hypercleaning metrics after the hyper-optimisation) from the raw run results."""

import pandas as pd

from truncback.experiments.hypercleaning.run import HypercleaningResult
from truncback.io.tables import grouped_by_label, mean_std, register_table

CAPTION = (
    "Table 2: data hypercleaning after {iterations} hyper-iterations (T = {T}, {n_train} training "
    "examples, half corrupted); mean ± std over {seeds} seed(s). Sec/iter is the wall-clock time of one "
    "hypergradient (it varies from run to run); Peak MiB is the most memory its tensors held at once "
    "(allocator events) and States held the lower-level states the method kept."
)


def hypercleaning_table(results: list[HypercleaningResult], timings: list[dict]) -> tuple[pd.DataFrame, str]:
    """One row per method, in the order the results come (the config's), after a no-cleaning row."""
    some = results[0].settings
    baseline_by_seed = {r.seed: r.baseline for r in results}  # the same split for every method
    rows = [_row("no cleaning (λ = 0)", [baseline_by_seed[seed] for seed in sorted(baseline_by_seed)], None, None)]
    for runs in grouped_by_label(results, timings):
        rows.append(
            _row(runs[0][0].display, [r.final for r, _ in runs], [r.run for r, _ in runs], [t for _, t in runs])
        )
    caption = CAPTION.format(
        iterations=some["hyper_iterations"], T=some["T"], n_train=some["n_train"], seeds=len({r.seed for r in results})
    )
    return pd.DataFrame(rows), caption


def _row(method, finals, records, timings) -> dict:
    def column(key):
        return [final[key] for final in finals]

    row = {
        "Method": method,
        "Test Acc.": mean_std(column("test_acc"), 2),
        "Val. Acc.": mean_std(column("val_acc"), 2),
        "Val. Loss": mean_std(column("val_loss"), 3),
        "F1": mean_std(column("f1"), 2),
    }
    row["Sec/iter"] = mean_std([t["seconds_per_iteration"] for t in timings], 3) if records else "-"
    row["States held"] = str(records[0].states_held) if records else "-"
    row["Peak MiB"] = mean_std([r.hypergradient_peak_mib for r in records], 1) if records else "-"
    return row


def register(subparsers) -> None:
    register_table(
        subparsers,
        "table-hypercleaning",
        "Table 2 from hypercleaning results",
        __doc__,
        HypercleaningResult,
        hypercleaning_table,
    )
