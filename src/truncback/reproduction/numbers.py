"""The paper's Tables 2-4 beside ours: each number, our value, the difference and whether it lies
within a stated tolerance; and the gaps between 1-RMD and full RMD that the claim "few-step K-RMD
is close to full RMD" is judged on."""

import math
import re

import numpy as np

from truncback.hypergrad import is_exact
from truncback.reproduction.health import unstable
from truncback.runtime.health import UNSTABLE

Z_95 = 1.959963984540054
PAPER_TEST_SIZE, PAPER_VAL_SIZE = 10000, 5000  # hypercleaning's test and validation sets (Franceschi et al.)
TOLERANCE_NOTES = {
    "binomial": "95% interval of the difference of two accuracies on independent test sets (ours on n examples, "
    "the paper's on {paper_n})",
    "val_loss": "fixed ±0.02: the paper's own column spans 0.033 from 1-RMD to full RMD, so a smaller difference is "
    "below what it resolves",
    "f1": "fixed ±0.05: the paper's own column spans 0.04 across K",
    "trials": "95% interval of the difference of two means over trials (the paper's std over its 10 trials, ours "
    "over ours)",
    "tasks": "our 95% interval over meta-test tasks times sqrt 2 (the paper's interval, not reported, taken as wide)",
}


def _binomial_tolerance(percent: float, n_ours: int, n_paper: int) -> float:
    p = min(max(percent / 100, 1e-6), 1 - 1e-6)
    return 100 * Z_95 * math.sqrt(p * (1 - p) * (1 / n_ours + 1 / n_paper))


NOT_COMPARABLE = "NOT COMPARABLE"


def _row(table, what, paper, ours, tolerance, basis, runs):
    """One number of the paper beside ours (from ``runs``): PASS or FAIL against ``tolerance``, or UNSTABLE
    (shown, not judged) where a run behind it was (``runtime.health``)."""
    difference = ours - paper
    flagged = unstable(runs)
    return {
        "table": table,
        "what": what,
        "paper": paper,
        "ours": ours,
        "difference": difference,
        "tolerance": tolerance,
        "basis": basis,
        "unstable": flagged,
        "verdict": UNSTABLE if flagged else "PASS" if abs(difference) <= tolerance else "FAIL",
    }


def _not_comparable(rows: list) -> list:
    """Rows computed on synthetic stand-ins: the paper's numbers are of real data, so no verdict."""
    return [{**row, "verdict": NOT_COMPARABLE} for row in rows]


def _method_of(result) -> tuple[int, int] | None:
    """(K, T) of a result's method spec, as the paper's rows tell methods apart: back-propagation through
    the last K of T lower-level steps, full RMD (any exact method) as K = T; T is the run's own horizon
    (the short horizon's 1). None for a method the paper's tables lack (AID, FOM, UFOM)."""
    T = _horizon(result)
    if is_exact(result.method, T):
        return T, T
    return (result.method["K"], T) if result.method["name"] == "krmd" else None


PAPER_METHOD = re.compile(r"(?P<K>\d+)-RMD")


def paper_method(name: str, T: int) -> tuple[int, int] | None:
    """(K, T) of the method a row of the paper's Tables 3-4 names, in an experiment of T steps, as
    :func:`_method_of` gives ours: "5-RMD" is K = 5 (None where 5 >= T: K-RMD is then full RMD, which has a
    row of its own), "Full RMD" K = T, "Short horizon" full RMD on a horizon of 1 step (Table 4). An
    unknown name is a ValueError."""
    if name == "Full RMD":
        return T, T
    if name == "Short horizon":
        return 1, 1
    truncated = PAPER_METHOD.fullmatch(name)
    if truncated is None:
        raise ValueError(
            f"the paper's method {name!r} is none of 'K-RMD', 'Full RMD', 'Short horizon': "
            "say in reproduction/numbers.py which of our method specs it is"
        )
    K = int(truncated.group("K"))
    return (K, T) if K < T else None


def _is_method(result, name: str) -> bool:
    """Whether ``result`` ran the method the paper's row names ``name`` (by spec, not by the name shown)."""
    wanted = paper_method(name, result.settings["T"])
    return wanted is not None and _method_of(result) == wanted


def table2_rows(reference, results) -> list:
    rows = []
    for K, test_acc, val_acc, val_loss, f1 in reference["rows"]:
        runs = [r for r in results if _method_of(r) == (K, r.settings["T"])]
        if not runs:
            continue
        mean = {key: float(np.mean([r.final[key] for r in runs])) for key in ("test_acc", "val_acc", "val_loss", "f1")}
        settings = runs[0].settings
        name = runs[0].display
        rows += [
            _row(
                "2",
                f"{name} test acc.",
                test_acc,
                mean["test_acc"],
                _binomial_tolerance(test_acc, settings["n_test"], PAPER_TEST_SIZE),
                TOLERANCE_NOTES["binomial"].format(paper_n=PAPER_TEST_SIZE),
                runs,
            ),
            _row(
                "2",
                f"{name} val. acc.",
                val_acc,
                mean["val_acc"],
                _binomial_tolerance(val_acc, settings["n_val"], PAPER_VAL_SIZE),
                TOLERANCE_NOTES["binomial"].format(paper_n=PAPER_VAL_SIZE),
                runs,
            ),
            _row("2", f"{name} val. loss", val_loss, mean["val_loss"], 0.02, TOLERANCE_NOTES["val_loss"], runs),
            _row("2", f"{name} F1", f1, mean["f1"], 0.05, TOLERANCE_NOTES["f1"], runs),
        ]
    return rows


def table3_rows(reference, results) -> list:
    names = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
    rows = []
    for dataset, method, acc_mean, acc_std, _, _ in reference["rows"]:
        runs = [r for r in results if names.get(r.dataset, r.dataset) == dataset and _is_method(r, method)]
        if not runs:
            continue
        accuracies = [r.final["test_acc"] for r in runs]
        ours_std = float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else 0.0
        tolerance = Z_95 * math.sqrt(acc_std**2 / 10 + ours_std**2 / len(accuracies))
        rows.append(
            _row(
                "3",
                f"{dataset} {method} test acc.",
                acc_mean,
                float(np.mean(accuracies)),
                tolerance,
                TOLERANCE_NOTES["trials"],
                runs,
            )
        )
    return rows


def table4_rows(reference, results) -> list:
    rows = []
    for method, acc, iterations, _ in reference["rows"]:
        for result in (r for r in results if _is_method(r, method)):
            for milestone in (m for m in result.milestones if m["iteration"] == iterations):
                rows.append(
                    _row(
                        "4",
                        f"{method} @ {iterations}",
                        acc,
                        milestone["accuracy"],
                        milestone["ci95"] * math.sqrt(2),
                        TOLERANCE_NOTES["tasks"],
                        [result],
                    )
                )
    return rows


def table_rows(reference, evidence) -> list:
    """Every number of Tables 2-4 that we have a counterpart of (our runs may use other iteration counts
    or methods at a reduced scale: then the paper's row has none and is listed as not compared); a
    table whose data are synthetic at the scale has the verdict NOT COMPARABLE."""
    rows = {
        "2": table2_rows(reference["table2_hypercleaning"], evidence.hypercleaning),
        "3": table3_rows(reference["table3_task_interaction"], evidence.task_interaction),
        "4": table4_rows(reference["table4_omniglot"], evidence.omniglot),
    }
    return [
        row
        for table, found in rows.items()
        for row in (found if evidence.comparable(table) else _not_comparable(found))
    ]


def _horizon(result) -> int:
    """The run's T (an Omniglot run may have its own, e.g. the short horizon's 1)."""
    return getattr(result, "T", result.settings["T"])


def _pair(results):
    """(smallest-K K-RMD results, exact results) among ``results``."""
    truncated = [r for r in results if r.method["name"] == "krmd" and not is_exact(r.method, _horizon(r))]
    exact = [r for r in results if is_exact(r.method, _horizon(r))]
    if not truncated or not exact:
        return None, None
    smallest = min(r.method["K"] for r in truncated)
    return [r for r in truncated if r.method["K"] == smallest], exact


def accuracy_gaps(evidence) -> list:
    """Per table: 1-RMD's (smallest K's) test accuracy against full RMD's, with the 95% interval of the
    difference as tolerance; ``comparable`` says whether the table's data are real at the scale,
    ``unstable`` names the UNSTABLE runs among those compared (then the gap is not judged)."""
    gaps = []
    small, full = _pair(evidence.hypercleaning)
    if small:
        a, b = (float(np.mean([r.final["test_acc"] for r in runs])) for runs in (small, full))
        n = small[0].settings["n_test"]
        tolerance = 100 * Z_95 * math.sqrt(sum(p / 100 * (1 - p / 100) / n for p in (a, b)))
        gaps.append(
            {
                "where": "Table 2",
                "comparable": evidence.comparable("2"),
                "unstable": unstable(small + full),
                "by_design": evidence.by_design("2"),
                "small": small[0].display,
                "small_acc": a,
                "full_acc": b,
                "difference": a - b,
                "tolerance": tolerance,
                "basis": f"binomial, {n} test examples",
            }
        )
    for dataset in sorted({r.dataset for r in evidence.task_interaction}):
        small, full = _pair([r for r in evidence.task_interaction if r.dataset == dataset])
        if small:
            groups = [[r.final["test_acc"] for r in runs] for runs in (small, full)]
            variance = sum((np.std(g, ddof=1) ** 2 if len(g) > 1 else 0.0) / len(g) for g in groups)
            gaps.append(
                {
                    "where": f"Table 3 {dataset}",
                    "comparable": evidence.comparable("3"),
                    "unstable": unstable(small + full),
                    "by_design": evidence.by_design("3"),
                    "small": small[0].display,
                    "small_acc": float(np.mean(groups[0])),
                    "full_acc": float(np.mean(groups[1])),
                    "difference": float(np.mean(groups[0]) - np.mean(groups[1])),
                    "tolerance": Z_95 * math.sqrt(variance),
                    "basis": f"{len(groups[0])} trials",
                }
            )
    small, full = _pair([r for r in evidence.omniglot if r.T == r.settings["T"]])
    if small:
        common = sorted({m["iteration"] for m in small[0].milestones} & {m["iteration"] for m in full[0].milestones})
        if common:
            small_at = next(m for m in small[0].milestones if m["iteration"] == common[0])
            full_at = next(m for m in full[0].milestones if m["iteration"] == common[0])
            gaps.append(
                {
                    "where": f"Table 4 @ {common[0]}",
                    "comparable": evidence.comparable("4"),
                    "unstable": unstable([small[0], full[0]]),
                    "by_design": evidence.by_design("4"),
                    "small": small[0].display,
                    "small_acc": small_at["accuracy"],
                    "full_acc": full_at["accuracy"],
                    "difference": small_at["accuracy"] - full_at["accuracy"],
                    "tolerance": math.sqrt(small_at["ci95"] ** 2 + full_at["ci95"] ** 2),
                    "basis": f"{small_at['tasks']} meta-test tasks",
                }
            )
    return gaps
