"""What the study's runs say, read from their raw result files (the summary the study's table, figure
and the reproduction report show): per variant the Table 2 or Table 4
numbers and C4's difference (1-RMD minus full RMD), F1 of the default hypercleaning lam at other
thresholds, and Table 4's accuracy against the meta-training characters with a fitted trend.

The trend is a power law in the error rate, fitted by least squares over every (pool, seed) point::

    log(100 - accuracy) = a + b log N          (N meta-training characters)

read at the paper's N = 1,200 with the 95% interval of the fitted line there (Student's t with
n - 2 degrees of freedom, n points): the interval says how far the fit itself is pinned down, so an
extrapolation over a factor of N much wider than the pools' range shows as a wide interval.

``python -m truncback sensitivity-summary --study '{...}' --results-dir results/offline/sensitivity
--reference config/paper_reference.yaml --output results/offline/sensitivity/summary.json``

``--study`` is the config's ``sensitivity`` section with the scale's ``hypercleaning.settings`` and
``omniglot.settings``: the runs are named from it as the workflow names them.
"""

import argparse
import json
import math
from pathlib import Path

import numpy as np
import yaml

from truncback.experiments.hypercleaning.problem import corrupted_f1
from truncback.experiments.hypercleaning.run import HypercleaningResult
from truncback.experiments.omniglot.run import OmniglotResult
from truncback.experiments.sensitivity.settings import DEFAULT, PAPER_CHARACTERS, StudyRun, study_runs
from truncback.hypergrad import is_exact
from truncback.runtime.files import load_npz, read_result, write_json

Z_95 = 1.959963984540054
HEALTHY = "STABLE"


def t_quantile(probability: float, dof: int) -> float:
    """The ``probability`` quantile (above 0.5) of Student's t with ``dof`` degrees of freedom: its
    density integrated by Simpson's rule from 0, the upper end found by bisection."""
    if not 0.5 < probability < 1 or dof < 1:
        raise ValueError(f"t_quantile needs 0.5 < probability < 1 and dof >= 1, got {probability}, {dof}")
    scale = math.exp(math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2)) / math.sqrt(dof * math.pi)

    def cdf(x: float) -> float:
        points = np.linspace(0.0, x, 4001)
        density = scale * (1 + points**2 / dof) ** (-(dof + 1) / 2)
        weights = np.ones(len(points))
        weights[1:-1:2], weights[2:-1:2] = 4, 2
        return 0.5 + float(np.sum(weights * density)) * (x / 4000) / 3

    low, high = 0.0, 1.0
    while cdf(high) < probability:
        low, high = high, 2 * high
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) < probability else (low, middle)
    return (low + high) / 2


def power_law_fit(characters, accuracies, at: float) -> dict | None:
    """The fit of log(100 - accuracy) = a + b log N (module docstring) through the points
    (``characters``, ``accuracies`` in %): its parameters, the slope b's 95% interval and the fit read
    at N = ``at`` (``fit_at``). None with fewer than 3 points, a single N, or an accuracy of 100% (no
    error to take the log of)."""
    x = np.log(np.asarray(characters, dtype=float))
    errors = 100.0 - np.asarray(accuracies, dtype=float)
    n = len(x)
    if n < 3 or len(set(x)) < 2 or np.any(errors <= 0):
        return None
    y = np.log(errors)
    sxx = float(np.sum((x - x.mean()) ** 2))
    slope = float(np.sum((x - x.mean()) * (y - y.mean())) / sxx)
    intercept = float(y.mean() - slope * x.mean())
    residual = math.sqrt(float(np.sum((y - intercept - slope * x) ** 2)) / (n - 2))
    t = t_quantile(0.975, n - 2)
    fit = {
        "points": n,
        "slope": slope,
        "slope_interval": [slope - t * residual / math.sqrt(sxx), slope + t * residual / math.sqrt(sxx)],
        "intercept": intercept,
        "residual_sd": residual,
        "t": t,
        "x_mean": float(x.mean()),
        "sxx": sxx,
        "at": at,
    }
    fit["accuracy"], fit["interval"] = fit_at(fit, at)
    return fit


def fit_at(fit: dict, characters: float) -> tuple[float, list[float]]:
    """The fitted accuracy (%) at N = ``characters`` and the 95% interval of the fitted line there:
    centre +- t s sqrt(1/n + (log N - mean log N)^2 / Sxx) on the log error, mapped to accuracy."""
    x0 = math.log(characters)
    centre = fit["intercept"] + fit["slope"] * x0
    half = fit["t"] * fit["residual_sd"] * math.sqrt(1 / fit["points"] + (x0 - fit["x_mean"]) ** 2 / fit["sxx"])
    return 100.0 - math.exp(centre), [100.0 - math.exp(centre + half), 100.0 - math.exp(centre - half)]


def _mean(values) -> float:
    return float(np.mean(values))


def _std(values) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def _pair(methods: list[dict]) -> tuple[dict, dict] | None:
    """C4's pair among a variant's methods: the smallest-K K-RMD and an exact method (full RMD)."""
    truncated = [m for m in methods if m["spec"]["name"] == "krmd" and not m["exact"]]
    exact = [m for m in methods if m["exact"]]
    if not truncated or not exact:
        return None
    return min(truncated, key=lambda m: m["spec"]["K"]), exact[0]


def _hypercleaning_method(runs: list[tuple[StudyRun, HypercleaningResult, Path]]) -> dict:
    results = [result for _, result, _ in runs]
    some = results[0]
    return {
        "label": some.label,
        "display": some.display,
        "spec": some.method,
        "exact": is_exact(some.method, some.settings["T"]),
        "iterations": some.settings["hyper_iterations"],
        "accuracies": [r.final["test_acc"] for r in results],
        "accuracy": _mean([r.final["test_acc"] for r in results]),
        "std": _std([r.final["test_acc"] for r in results]),
        "f1": _mean([r.final["f1"] for r in results]),
        "test_examples": some.settings["n_test"],
        "unstable": [f"{r.label} seed {r.seed}" for r in results if r.run.health.get("verdict") != HEALTHY],
    }


def _omniglot_method(runs: list[tuple[StudyRun, OmniglotResult, Path]]) -> dict:
    results = [result for _, result, _ in runs]
    some = results[0]
    final = [r.milestones[-1] for r in results]
    return {
        "label": some.label,
        "display": some.display,
        "spec": some.method,
        "exact": is_exact(some.method, some.T),
        "iterations": final[0]["iteration"],
        "accuracies": [m["accuracy"] for m in final],
        "accuracy": _mean([m["accuracy"] for m in final]),
        "std": _std([m["accuracy"] for m in final]),
        "ci95": _mean([m["ci95"] for m in final]),
        "task_accuracies": [m["task_accuracies"] for m in final],
        "meta_train_classes": some.meta_train_classes,
        "meta_test_classes": some.meta_test_classes,
        "unstable": [f"{r.label} seed {r.seed}" for r in results if r.run.health.get("verdict") != HEALTHY],
    }


def c4_difference(methods: list[dict], part: str) -> dict | None:
    """C4's difference, the smallest-K K-RMD's accuracy minus full RMD's (mean over seeds), with the
    half-width of its 95% interval: Omniglot's paired over the same meta-test tasks (per seed, then the
    mean's), hypercleaning's binomial on the test set (the two runs' errors taken as independent)."""
    pair = _pair(methods)
    if pair is None:
        return None
    small, full = pair
    difference = small["accuracy"] - full["accuracy"]
    if part == "hypercleaning":
        n = small["test_examples"]
        p, q = small["accuracy"] / 100, full["accuracy"] / 100
        half = 100 * Z_95 * math.sqrt((p * (1 - p) + q * (1 - q)) / n)
    else:
        halves = []
        for a, b in zip(small["task_accuracies"], full["task_accuracies"]):
            gaps = np.asarray(a) - np.asarray(b)
            halves.append(Z_95 * float(np.std(gaps, ddof=1)) / math.sqrt(len(gaps)))
        half = math.sqrt(sum(h**2 for h in halves)) / len(halves)
    return {"small": small["display"], "full": full["display"], "difference": difference, "half_width": half}


def _grouped(entries: list) -> dict:
    """(StudyRun, result, path) entries grouped by variant, then by run label, in config order."""
    groups: dict[str, dict[str, list]] = {}
    for entry in entries:
        groups.setdefault(entry[0].variant, {}).setdefault(entry[0].label, []).append(entry)
    return groups


def _changed(settings: dict, keys) -> str:
    return ", ".join(f"{key}={json_value(settings[key])}" for key in keys) or "-"


def json_value(value) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def choice_rows(part: str, section: dict, entries: list) -> list[dict]:
    """One row per variant of ``part`` (the default first): its reading, the settings it changes, its
    methods' numbers and C4's difference."""
    variants = {variant["name"]: variant for variant in section["variants"]}
    changed_keys = list(dict.fromkeys(key for variant in section["variants"] for key in variant["settings"]))
    read = _hypercleaning_method if part == "hypercleaning" else _omniglot_method
    rows = []
    for name, by_label in _grouped(entries).items():
        methods = [read(runs) for runs in by_label.values()]
        settings = next(iter(by_label.values()))[0][0].settings
        if name == DEFAULT:
            choice, reading, shown = "(all)", "the default: today's reading of every choice", changed_keys
        else:
            choice, reading = variants[name]["choice"], variants[name]["reading"]
            shown = list(variants[name]["settings"])
        rows.append(
            {
                "part": part,
                "table": "2" if part == "hypercleaning" else "4",
                "variant": name,
                "default": name == DEFAULT,
                "choice": choice,
                "reading": reading,
                "settings": _changed(settings, shown),
                "seeds": len(next(iter(by_label.values()))),
                "methods": [{k: v for k, v in m.items() if k != "task_accuracies"} for m in methods],
                "c4": c4_difference(methods, part),
                "unstable": [run for m in methods for run in m["unstable"]],
            }
        )
    return rows


def threshold_rows(section: dict, entries: list) -> list[dict]:
    """F1 of the default variant's final lam at each of ``thresholds`` (its saved lam; no rerun), per method."""
    rows = []
    defaults = _grouped(entries).get(DEFAULT, {})
    for threshold in section["thresholds"]:
        methods = []
        for runs in defaults.values():
            scores = []
            for _, _, path in runs:
                arrays = load_npz(Path(path).with_suffix(".npz"), ("hparams", "corrupted"))
                scores.append(corrupted_f1(arrays["hparams"], arrays["corrupted"], threshold))
            methods.append({"label": runs[0][1].label, "display": runs[0][1].display, "f1": _mean(scores)})
        rows.append({"threshold": threshold, "methods": methods})
    return rows


def paper_accuracy(reference: dict, display: str, iterations: int) -> float | None:
    """The paper's Table 4 accuracy of the method shown as ``display`` after ``iterations``, if it has one."""
    for method, accuracy, iters, _ in reference["table4_omniglot"]["rows"]:
        if method == display and iters == iterations:
            return float(accuracy)
    return None


def scaling_summary(section: dict, entries: list, reference: dict) -> dict:
    """The data-scaling points per method (pool size, seed, accuracy), each method's fit read at the
    paper's 1,200 characters, the paper's value there, and C4's difference per pool."""
    methods: dict[str, dict] = {}
    differences = []
    for name, by_label in _grouped(entries).items():
        read = [_omniglot_method(runs) for runs in by_label.values()]
        characters = read[0]["meta_train_classes"]
        for method, runs in zip(read, by_label.values()):
            entry = methods.setdefault(
                method["label"],
                {
                    "label": method["label"],
                    "display": method["display"],
                    "iterations": method["iterations"],
                    "held_out_characters": method["meta_test_classes"],
                    "points": [],
                    "unstable": [],
                },
            )
            entry["points"] += [
                {"pool": name, "characters": characters, "seed": run.seed, "accuracy": accuracy}
                for (run, _, _), accuracy in zip(runs, method["accuracies"])
            ]
            entry["unstable"] += method["unstable"]
        differences.append({"pool": name, "characters": characters, "c4": c4_difference(read, "data_scaling")})
    for entry in methods.values():
        points = entry["points"]
        entry["fit"] = power_law_fit(
            [p["characters"] for p in points], [p["accuracy"] for p in points], PAPER_CHARACTERS
        )
        entry["paper"] = paper_accuracy(reference, entry["display"], entry["iterations"])
    return {
        "held_out": list(section["held_out"]),
        "pool_alphabets": list(section["pool_alphabets"]),
        "paper_characters": PAPER_CHARACTERS,
        "methods": list(methods.values()),
        "c4": differences,
    }


def read_entries(runs: list[StudyRun], root) -> dict:
    """The result of each run (``root``: results/<scale>/sensitivity), by part, in the order of ``runs``."""
    types = {"hypercleaning": HypercleaningResult, "omniglot": OmniglotResult, "data_scaling": OmniglotResult}
    entries: dict[str, list] = {part: [] for part in types}
    for run in runs:
        path = Path(root) / f"{run.job}.json"
        entries[run.part].append((run, read_result(path, types[run.part]), path))
    return entries


def study_summary(study: dict, runs: list[StudyRun], root, reference_path) -> dict:
    """Everything the table, the figure and the report show, from the study's raw results."""
    entries = read_entries(runs, root)
    reference = yaml.safe_load(Path(reference_path).read_text())
    return {
        "choices": choice_rows("hypercleaning", study["hypercleaning"], entries["hypercleaning"])
        + choice_rows("omniglot", study["omniglot"], entries["omniglot"]),
        "thresholds": threshold_rows(study["hypercleaning"], entries["hypercleaning"]),
        "default_threshold": entries["hypercleaning"][0][1].settings["threshold"] if entries["hypercleaning"] else None,
        "data_scaling": scaling_summary(study["data_scaling"], entries["data_scaling"], reference)
        if entries["data_scaling"]
        else None,
    }


def moves(rows: list[dict], part: str) -> dict:
    """How far the variants of ``part`` move each method's accuracy and C4's difference from the default:
    {"accuracy": {display: (smallest, largest) move}, "c4": (smallest, largest) move}; UNSTABLE variants
    are left out (their numbers are shown, not judged)."""
    of_part = [row for row in rows if row["part"] == part]
    default = next(row for row in of_part if row["default"])
    others = [row for row in of_part if not row["default"] and not row["unstable"]]
    accuracy = {}
    for method in default["methods"]:
        shifts = [
            m["accuracy"] - method["accuracy"]
            for row in others
            for m in row["methods"]
            if m["label"] == method["label"]
        ]
        if shifts:
            accuracy[method["display"]] = (min(shifts), max(shifts))
    c4 = [row["c4"]["difference"] - default["c4"]["difference"] for row in others if row["c4"] and default["c4"]]
    return {"accuracy": accuracy, "c4": (min(c4), max(c4)) if c4 else None}


def main(args) -> int:
    config = json.loads(args.study)
    write_json(args.output, study_summary(config["sensitivity"], study_runs(config), args.results_dir, args.reference))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sensitivity-summary",
        help="the sensitivity study's runs summed up (its table, figure and report section read it)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--study", required=True, help="JSON: the config's sensitivity, hypercleaning and omniglot")
    parser.add_argument("--results-dir", required=True, help="the study's results (results/<scale>/sensitivity)")
    parser.add_argument("--reference", required=True, help="the paper's numbers (config/paper_reference.yaml)")
    parser.add_argument("--output", required=True, help="the summary (.json)")
    parser.set_defaults(run=main)
