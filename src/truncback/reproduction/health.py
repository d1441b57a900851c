"""The report's "Run health" section: for every hyper-optimisation run, whether its lower level was
well-posed (``runtime.health``): how far its exact hypergradient grew, how often clipping bit and by
how much, whether its inner loop ever ended above where it started, and the learnt step size and
regularisers over the run. An UNSTABLE run's numbers are shown in the tables but not judged."""

import pandas as pd

from truncback.runtime.health import CRITERIA, UNSTABLE


def run_name(result) -> str:
    """How the report names a run: its method, and its dataset and trial or its seed."""
    if hasattr(result, "trial"):
        return f"{result.dataset} trial {result.trial} {result.display}"
    return f"{result.display} seed {result.seed}"


def unstable(results) -> list[str]:
    """The names of the UNSTABLE runs among ``results``."""
    return [run_name(result) for result in results if result.run.health.get("verdict") == UNSTABLE]


def _number(value) -> str:
    return "-" if value is None else f"{value:.3g}"


def _tracked(record) -> str:
    """Each tracked value's first and last (e.g. "gamma 0.1 -> 0.08")."""
    return "; ".join(
        f"{key} {values[0]:.3g} -> {values[-1]:.3g}"
        for key, values in record.tracked.items()
        if key != "iteration" and values
    )


def health_row(result) -> dict:
    """The run's line of the section (a run recorded without its health says so)."""
    health = result.run.health
    if not health:
        return {"Run": run_name(result), "Health": "not recorded"}
    return {
        "Run": run_name(result),
        "Health": health["verdict"],
        "Exact ‖d f‖ first": _number(health["exact_norm_first"]),
        "largest": _number(health["exact_norm_largest"]),
        "growth": _number(health["exact_growth"]),
        "Steps clipped": f"{health['clipped_fraction']:.0%}",
        "by up to": f"{health['largest_clip_factor']:.3g}x",
        "Lower level diverged": str(health["lower_divergences"]) if health["lower_level_checked"] else "-",
        "max g(w_T)/g(w_0)": _number(health["lower_loss_ratio_largest"]),
        "Learnt (first -> last)": _tracked(result.run) or "-",
    }


def health_blocks(evidence) -> list:
    """The section's blocks: the criteria, then one table per experiment that ran."""
    experiments = {
        "Hypercleaning (Table 2)": evidence.hypercleaning,
        "Task interaction (Table 3)": evidence.task_interaction,
        "Omniglot (Table 4)": evidence.omniglot,
        "Omniglot, the FOM/UFOM companion's runs (companion_fom_ufom_omniglot)": evidence.omniglot_companion,
    }
    blocks: list = [
        ("h2", "Run health"),
        (
            "p",
            "Whether each run's lower level was well-posed, measured during the run: the exact hypergradient "
            "(full RMD) at each exact comparison, the steps whose hypergradient clipping scaled down, and the "
            f"lower objective g at the start and the end of every inner loop. {CRITERIA}. An UNSTABLE run's "
            "numbers stay in the tables with the verdict UNSTABLE, not judged against the paper.",
        ),
    ]
    for title, results in experiments.items():
        if results:
            flagged = unstable(results)
            blocks += [
                (
                    "p",
                    f"**{title}**: {len(results) - len(flagged)} of {len(results)} run(s) stable"
                    + (f"; UNSTABLE: {', '.join(flagged)}" if flagged else "")
                    + ".",
                ),
                ("table", pd.DataFrame([health_row(result) for result in results])),
            ]
    return blocks
