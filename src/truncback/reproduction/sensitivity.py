"""The sensitivity study in the reproduction report: two sections, "How much the open choices move the
numbers" and "Table 4 and the meta-training data", and the sentences that C4's verdict and Table 4's
departure cite from them. Read from the study's summary (``table-sensitivity`` writes it from the raw
results) when the study has run at the scale; otherwise both sections say NOT RUN and how to run it."""

from dataclasses import replace
from pathlib import Path

import pandas as pd

from truncback.experiments.sensitivity.summary import moves
from truncback.reproduction.claims import NOT_RUN
from truncback.runtime.files import read_json

CHOICES = "How much the open choices move the numbers"
DATA = "Table 4 and the meta-training data"
C4_CLAIM = "small_k_matches_full"


def load_study(path) -> dict | None:
    """The study's summary, or None where it has not run (no path given)."""
    return read_json(Path(path)) if path else None


def _range(low: float, high: float) -> str:
    return f"{low:+.2f}" if f"{low:+.2f}" == f"{high:+.2f}" else f"{low:+.2f} to {high:+.2f}"


def _default(study: dict, part: str) -> dict:
    return next(row for row in study["choices"] if row["part"] == part and row["default"])


def _c4(row: dict) -> str:
    c4 = row["c4"]
    return "-" if c4 is None else f"{c4['difference']:+.2f} ± {c4['half_width']:.2f}"


def choice_lines(study: dict) -> list[str]:
    """Per table: how far the variants move each method's accuracy and C4's difference from the default."""
    lines = []
    for part, table in (("hypercleaning", "2"), ("omniglot", "4")):
        default, moved = _default(study, part), moves(study["choices"], part)
        iterations = default["methods"][0]["iterations"]
        shifts = "; ".join(f"{display} {_range(*span)}" for display, span in moved["accuracy"].items())
        line = (
            f"Table {table} after {iterations} hyper-iterations: the default gives "
            + ", ".join(f"{m['display']} {m['accuracy']:.2f}" for m in default["methods"])
            + f" and C4's difference {_c4(default)}; the other readings move the accuracies by "
            + (shifts or "nothing (no stable variant)")
            + (f" and C4's difference by {_range(*moved['c4'])}" if moved["c4"] else "")
            + " points"
        )
        unstable = [row["variant"] for row in study["choices"] if row["part"] == part and row["unstable"]]
        if unstable:
            line += f" (UNSTABLE, shown not judged: {', '.join(unstable)})"
        lines.append(line + ".")
    if study["thresholds"]:
        f1 = "; ".join(
            f"t = {entry['threshold']:g}: " + ", ".join(f"{m['display']} {m['f1']:.3f}" for m in entry["methods"])
            for entry in study["thresholds"]
        )
        default = _default(study, "hypercleaning")
        lines.append(
            f"F1 of the default's lam at the thresholds other than {study['default_threshold']:g} ("
            + ", ".join(f"{m['display']} {m['f1']:.3f}" for m in default["methods"])
            + f"): {f1}."
        )
    return lines


def choices_frame(study: dict) -> pd.DataFrame:
    rows = []
    for row in study["choices"]:
        rows.append(
            {
                "Table": row["table"],
                "Variant": row["variant"],
                "Choice": row["choice"],
                "Settings": row["settings"],
                **{f"{m['display']}": f"{m['accuracy']:.2f}" for m in row["methods"]},
                "C4": _c4(row),
                "Health": "UNSTABLE" if row["unstable"] else "STABLE",
            }
        )
    return pd.DataFrame(rows).fillna("-")


def trend_sentence(scaling: dict) -> str:
    """What the fitted trend says at the paper's 1,200 characters, per method, and whether it supports
    "the data explain the gap": the paper's value inside the trend's 95% interval there (or below it)
    does, above it does not; a slope whose interval reaches 0 (no measured gain from data) does not."""
    parts = []
    for method in scaling["methods"]:
        points = sorted({(p["characters"], p["pool"]) for p in method["points"]})
        means = [
            sum(p["accuracy"] for p in method["points"] if p["pool"] == pool)
            / sum(p["pool"] == pool for p in method["points"])
            for _, pool in points
        ]
        text = (
            f"{method['display']} reaches "
            + ", ".join(f"{mean:.2f}" for mean in means)
            + f"% on {', '.join(str(c) for c, _ in points)} characters"
        )
        fit, paper = method["fit"], method["paper"]
        if fit is None:
            parts.append(text + " (too few points for a trend)")
            continue
        low, high = fit["interval"]
        text += (
            f"; the trend (slope {fit['slope']:.3f} [{fit['slope_interval'][0]:.3f}, {fit['slope_interval'][1]:.3f}] "
            f"in log error per log character) gives {fit['accuracy']:.2f}% [{low:.2f}, {high:.2f}] at "
            f"{scaling['paper_characters']:,}"
        )
        if paper is not None:
            text += f" against the paper's {paper:.2f}%: " + verdict(fit, paper)
        parts.append(text)
    return "; ".join(parts)


def verdict(fit: dict, paper: float) -> str:
    """The data explanation, judged from one method's trend (see ``trend_sentence``)."""
    low, high = fit["interval"]
    if fit["slope_interval"][1] >= 0:
        return (
            "the error does not fall measurably with the data here, so this trend does not support the data explanation"
        )
    if paper > high:
        return (
            f"the trend's upper end falls {paper - high:.2f} points short of it, so the data, as far as this trend "
            "reaches, do not explain the whole gap (the rest: the implementation, or what the extrapolation misses)"
        )
    if paper < low:
        return "the trend passes above the paper's value, so the data more than explain the gap"
    return "the paper's value lies within the trend's interval, so the data can explain the gap"


def scaling_frame(scaling: dict) -> pd.DataFrame:
    rows = []
    for method in scaling["methods"]:
        for point in method["points"]:
            rows.append(
                {
                    "Method": method["display"],
                    "Characters": str(point["characters"]),
                    "Seed": str(point["seed"]),
                    "Accuracy": f"{point['accuracy']:.2f}",
                }
            )
    return pd.DataFrame(rows)


def not_run(scale: str) -> str:
    return (
        f"{NOT_RUN}: the sensitivity study has not run at this scale. `snakemake --cores all "
        f"sensitivity --config scale={scale} [data_dir=DIR]` runs it (it prints its "
        "estimated time first), after which this report, remade, has this section."
    )


def study_blocks(study: dict | None, scale: str) -> list:
    """The report's two sections of the study (NOT RUN where it has not run)."""
    if study is None:
        return [("h2", CHOICES), ("p", not_run(scale)), ("h2", DATA), ("p", not_run(scale))]
    blocks = [
        ("h2", CHOICES),
        (
            "p",
            "Each reading of a choice the paper leaves open is one ordinary run beside the default (today's "
            f"reading of every choice), all else equal (paper_tables/{scale}/sensitivity.md, "
            f"figures/{scale}/sensitivity_choices.png); C4 = 1-RMD minus full RMD ± the half-width of its 95% "
            "interval. The defaults stay chosen by stability and the paper's text: this study only reports.",
        ),
        ("ul", choice_lines(study)),
        ("table", choices_frame(study)),
        ("h2", DATA),
    ]
    scaling = study["data_scaling"]
    if scaling is None:
        return blocks + [("p", f"{NOT_RUN}: no pool is configured at this scale (sensitivity.data_scaling.pools).")]
    return blocks + [
        (
            "p",
            f"Meta-trained on pools of {', '.join(scaling['pool_alphabets'])} and meta-tested on "
            f"{', '.join(scaling['held_out'])} ({scaling['methods'][0]['held_out_characters']} characters no pool "
            f"holds), {scaling['methods'][0]['iterations']} hyper-iterations "
            f"(paper_tables/{scale}/sensitivity_data_scaling.md, figures/{scale}/sensitivity_data_scaling.png): "
            + trend_sentence(scaling)
            + ".",
        ),
        ("table", scaling_frame(scaling)),
    ]


def c4_sentence(study: dict) -> str:
    """What C4's verdict cites: how far the open choices and the meta-training data move its difference."""
    parts = []
    for part, table in (("hypercleaning", "2"), ("omniglot", "4")):
        moved = moves(study["choices"], part)
        default = _default(study, part)
        if default["c4"] and moved["c4"]:
            parts.append(
                f"Table {table}'s difference {_c4(default)} at the study's {default['methods'][0]['iterations']} "
                f"hyper-iterations moves by {_range(*moved['c4'])} across the open choices"
            )
    scaling = study["data_scaling"]
    if scaling is not None:
        gaps = [entry for entry in scaling["c4"] if entry["c4"]]
        if gaps:
            parts.append(
                "with the meta-training data Table 4's is "
                + ", ".join(f"{entry['c4']['difference']:+.2f} at {entry['characters']}" for entry in gaps)
                + " characters"
            )
    return f"Measured (sensitivity study): {'; '.join(parts)}." if parts else ""


def explained(verdicts: list, study: dict | None) -> list:
    """The verdicts with C4's citing the study's numbers, where the study has run."""
    sentence = c4_sentence(study) if study else ""
    return [
        replace(v, evidence=f"{v.evidence}. {sentence}") if v.claim == C4_CLAIM and sentence else v for v in verdicts
    ]


def table4_sentence(study: dict | None) -> str:
    """What Table 4's departure note cites: the data-scaling trend, or that it has not run."""
    if study is None or study["data_scaling"] is None:
        return "whether the data explain the gap is NOT RUN here (the sensitivity study's data scaling)"
    scaling = study["data_scaling"]
    return (
        f"measured (sensitivity study, meta-tested on the {scaling['methods'][0]['held_out_characters']} characters "
        f"of {', '.join(scaling['held_out'])}, which no pool holds): " + trend_sentence(scaling)
    )
