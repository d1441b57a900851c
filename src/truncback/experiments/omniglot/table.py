"""Table 4 (one-shot Omniglot) from the raw meta-training results: one row per run and Table 4
iteration count, with the meta-test accuracy and its 95% interval, the seconds per hyper-iteration
and the memory of the hypergradient."""

import pandas as pd

from truncback.experiments.omniglot.run import OmniglotResult
from truncback.io.tables import register_table

CAPTION = (
    "Table 4: {ways}-way one-shot Omniglot, T = {T}; accuracy (%) averaged over {tasks} tasks of "
    "the {test_classes} meta-test characters ± the half-width of its normal 95% interval. Sec/iter "
    "and CPU s/iter (wall-clock and process CPU time of one hypergradient, mean over the "
    "hyper-iterations) vary from run to run and with the load of the machine; peak MiB is the most "
    "memory the hypergradient's tensors held at once; 'states held' is the number of lower-level "
    "states the method keeps and 'state MiB' their size."
)


def omniglot_table(results: list[OmniglotResult], timings: list[dict]) -> tuple[pd.DataFrame, str]:
    """For each milestone iteration count, one row per run that reached it, in the order of the results."""
    if not results:
        raise ValueError("Table 4 needs at least one Omniglot result")
    rows = []
    for iteration in sorted({m["iteration"] for r in results for m in r.milestones}):
        for result, timing in zip(results, timings):
            for milestone in (m for m in result.milestones if m["iteration"] == iteration):
                record = result.run
                rows.append(
                    {
                        "Method": result.display,
                        "Accuracy": f"{milestone['accuracy']:.2f} ± {milestone['ci95']:.2f}",
                        "Iter.": iteration,
                        "Sec/iter": f"{timing['seconds_per_iteration']:.3f}",
                        "CPU s/iter": f"{timing['cpu_seconds_per_iteration']:.3f}",
                        "Peak MiB": f"{record.hypergradient_peak_mib:.1f}",
                        "States held": record.states_held,
                        "State MiB": f"{record.state_mib:.2f}",
                    }
                )
    some = results[0]
    caption = CAPTION.format(
        ways=some.settings["ways"],
        T=some.settings["T"],
        tasks=some.settings["test_tasks"],
        test_classes=some.meta_test_classes,
    )
    return pd.DataFrame(rows), caption


def register(subparsers) -> None:
    register_table(
        subparsers, "table-omniglot", "Table 4 from Omniglot results", __doc__, OmniglotResult, omniglot_table
    )
