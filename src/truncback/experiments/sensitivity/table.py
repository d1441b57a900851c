"""The study's tables, from its summary (``sensitivity-summary`` reads the raw results into it): how much
each open choice moves Tables 2 and 4 and C4's difference (one row per variant, the default marked; F1 of
the default at other thresholds), and Table 4 against the meta-training characters with the fitted trend
at the paper's 1,200.

``python -m truncback table-sensitivity --summary results/offline/sensitivity/summary.json
--output paper_tables/offline/sensitivity --data-scaling-output paper_tables/offline/sensitivity_data_scaling``
"""

import argparse

import pandas as pd

from truncback.io.tables import write_table
from truncback.runtime.files import read_json

CHOICES_CAPTION = (
    "How much the open choices move the numbers. Table 2 (hypercleaning) after {hc_iterations} "
    "hyper-iterations, Table 4 (Omniglot) after {og_iterations}; test accuracy in % (mean ± std over seeds "
    "where several); C4 = {c4} ± the half-width of its 95% interval (Table 4: paired over the same meta-test "
    "tasks; Table 2: binomial on the test examples). The default row is today's reading of every choice; "
    "each other row changes only what Settings names. F1 threshold rows score the default's own lam. Health "
    "names UNSTABLE runs, whose numbers are shown but not judged."
)
SCALING_CAPTION = (
    "Table 4 against the meta-training data: meta-trained on the first N characters of {alphabets}, "
    "meta-tested on {held_out} ({held_out_characters} characters no pool holds), {iterations} "
    "hyper-iterations, {seeds} seed(s) per pool; accuracy in % (mean ± std over seeds). The trend fits "
    "log(100 - accuracy) = a + b log N to every (pool, seed) point and is read at the paper's {paper} "
    "characters with the 95% interval of the fitted line there."
)


def _accuracy(method: dict) -> str:
    return f"{method['accuracy']:.2f}" + (f" ± {method['std']:.2f}" if method["std"] is not None else "")


def _c4(c4: dict | None) -> str:
    return "-" if c4 is None else f"{c4['difference']:+.2f} ± {c4['half_width']:.2f}"


def choices_table(summary: dict) -> pd.DataFrame:
    """One row per variant (the default first in each table), then one per F1 threshold."""
    displays = list(dict.fromkeys(m["display"] for row in summary["choices"] for m in row["methods"]))
    f1_displays = list(
        dict.fromkeys(
            m["display"] for row in summary["choices"] if row["part"] == "hypercleaning" for m in row["methods"]
        )
    )
    rows = []
    for row in summary["choices"]:
        by_display = {m["display"]: m for m in row["methods"]}
        rows.append(
            {
                "Table": row["table"],
                "Choice": row["choice"],
                "Reading": row["reading"],
                "Settings": row["settings"],
                "Default": "yes" if row["default"] else "",
                "Seeds": row["seeds"],
                **{f"{d} acc.": _accuracy(by_display[d]) if d in by_display else "-" for d in displays},
                "C4": _c4(row["c4"]),
                **{
                    f"{d} F1": f"{by_display[d]['f1']:.3f}" if d in by_display and "f1" in by_display[d] else "-"
                    for d in f1_displays
                },
                "Health": ", ".join(f"UNSTABLE: {run}" for run in row["unstable"]) or "STABLE",
            }
        )
    for entry in summary["thresholds"]:
        by_display = {m["display"]: m for m in entry["methods"]}
        rows.append(
            {
                "Table": "2",
                "Choice": "F1 threshold",
                "Reading": f"example i flagged when lam_i < {entry['threshold']:g} (the default's lam)",
                "Settings": f"threshold={entry['threshold']:g}",
                "Default": "",
                "Seeds": next(row["seeds"] for row in summary["choices"] if row["part"] == "hypercleaning"),
                **{f"{d} acc.": "-" for d in displays},
                "C4": "-",
                **{f"{d} F1": f"{by_display[d]['f1']:.3f}" if d in by_display else "-" for d in f1_displays},
                "Health": "",
            }
        )
    return pd.DataFrame(rows)


def scaling_table(scaling: dict) -> pd.DataFrame:
    """One row per pool, then the fitted trend and the paper's value at 1,200 characters."""
    methods = scaling["methods"]
    pools = list(dict.fromkeys((p["pool"], p["characters"]) for m in methods for p in m["points"]))
    c4 = {entry["pool"]: entry["c4"] for entry in scaling["c4"]}
    rows = []
    for pool, characters in pools:
        row = {"Meta-training": pool, "Characters": str(characters)}
        for method in methods:
            values = pd.Series([p["accuracy"] for p in method["points"] if p["pool"] == pool])
            row[f"{method['display']} acc."] = f"{values.mean():.2f}" + (
                f" ± {values.std():.2f}" if len(values) > 1 else ""
            )
        row["C4"] = _c4(c4[pool])
        rows.append(row)
    trend = {"Meta-training": "trend (95% interval)", "Characters": str(scaling["paper_characters"])}
    paper = {"Meta-training": "the paper", "Characters": str(scaling["paper_characters"])}
    for method in methods:
        fit = method["fit"]
        trend[f"{method['display']} acc."] = (
            "-"
            if fit is None
            else f"{fit['accuracy']:.2f} [{fit['interval'][0]:.2f}, {fit['interval'][1]:.2f}], slope {fit['slope']:.3f}"
        )
        paper[f"{method['display']} acc."] = "-" if method["paper"] is None else f"{method['paper']:.2f}"
    trend["C4"] = paper["C4"] = "-"
    return pd.DataFrame(rows + [trend, paper])


def main(args) -> int:
    summary = read_json(args.summary)
    defaults = {row["part"]: row for row in summary["choices"] if row["default"]}
    c4 = next((row["c4"] for row in summary["choices"] if row["c4"]), None)
    write_table(
        choices_table(summary),
        args.output,
        CHOICES_CAPTION.format(
            hc_iterations=defaults["hypercleaning"]["methods"][0]["iterations"],
            og_iterations=defaults["omniglot"]["methods"][0]["iterations"],
            c4=f"{c4['small']} - {c4['full']}" if c4 else "the smallest-K K-RMD - full RMD",
        ),
    )
    scaling = summary["data_scaling"]
    if scaling is None:
        frame = pd.DataFrame([{"Meta-training": "not run at this scale (sensitivity.data_scaling.pools is empty)"}])
        caption = "Table 4 against the meta-training data: not run at this scale."
    else:
        frame = scaling_table(scaling)
        caption = SCALING_CAPTION.format(
            alphabets=", ".join(scaling["pool_alphabets"]),
            held_out=", ".join(scaling["held_out"]),
            held_out_characters=scaling["methods"][0]["held_out_characters"],
            iterations=scaling["methods"][0]["iterations"],
            seeds=len({p["seed"] for p in scaling["methods"][0]["points"]}),
            paper=f"{scaling['paper_characters']:,}",
        )
    write_table(frame, args.data_scaling_output, caption)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "table-sensitivity",
        help="the sensitivity study's tables",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--summary", required=True, help="the study's summary (sensitivity-summary writes it)")
    parser.add_argument("--output", required=True, help="the choices table's stem (.csv/.md/.tex/.html)")
    parser.add_argument("--data-scaling-output", required=True, help="the data-scaling table's stem")
    parser.set_defaults(run=main)
