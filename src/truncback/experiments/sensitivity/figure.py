"""The study's figures, from its summary (``sensitivity-summary`` reads the raw results into it):

- ``<choices>``: per variant (the default, named so, in black in C4's panel) Table 2's and Table 4's test
  accuracy per method, C4's difference with its 95% interval, and F1 of the default's lam against the
  threshold (the default's own threshold marked);
- ``<data scaling>``: Table 4's test accuracy against the meta-training characters (log scale), every
  (pool, seed) point, each method's fitted trend with the 95% band of the fitted line out to the
  paper's 1,200 characters, and the paper's values marked there.

``python -m truncback figure-sensitivity --summary results/offline/sensitivity/summary.json
--choices figures/offline/sensitivity_choices --data-scaling figures/offline/sensitivity_data_scaling``
"""

import argparse

import numpy as np

from truncback.experiments.sensitivity.summary import fit_at
from truncback.io.plotting import figure_style, method_colours, plt, save_figure
from truncback.runtime.files import read_json


def choices_figure(summary: dict):
    """Four panels: Table 2 accuracy, Table 4 accuracy, C4's difference, F1 against the threshold."""
    rows = summary["choices"]
    displays = list(dict.fromkeys(m["display"] for row in rows for m in row["methods"]))
    colours = dict(zip(displays, method_colours(len(displays))))
    figure, axes = plt.subplots(2, 2, figsize=(10, 6.5))
    for axis, part, title in (
        (axes[0, 0], "hypercleaning", "Table 2: hypercleaning test accuracy"),
        (axes[0, 1], "omniglot", "Table 4: Omniglot test accuracy"),
    ):
        of_part = [row for row in rows if row["part"] == part]
        for index, row in enumerate(of_part):
            for offset, method in enumerate(row["methods"]):
                y = index + 0.15 * (offset - (len(row["methods"]) - 1) / 2)
                axis.errorbar(
                    method["accuracy"],
                    y,
                    xerr=method["std"] or 0.0,
                    fmt="o",
                    color=colours[method["display"]],
                    label=method["display"] if index == 0 else None,
                )
        axis.set_yticks(range(len(of_part)), [row["variant"] for row in of_part])
        axis.invert_yaxis()
        axis.set(xlabel="test accuracy (%)", title=title)
        axis.legend(loc="best")
    axis = axes[1, 0]
    judged = [row for row in rows if row["c4"]]
    for index, row in enumerate(judged):
        axis.errorbar(
            row["c4"]["difference"],
            index,
            xerr=row["c4"]["half_width"],
            fmt="s" if row["part"] == "omniglot" else "o",
            color="black" if row["default"] else "tab:blue",
        )
    axis.axvline(0.0, color="grey", linewidth=0.8)
    axis.set_yticks(range(len(judged)), [f"Table {row['table']}: {row['variant']}" for row in judged])
    axis.invert_yaxis()
    axis.set(xlabel="C4: 1-RMD minus full RMD (points of accuracy, 95% interval)", title="C4's difference")
    axis = axes[1, 1]
    thresholds = summary["thresholds"]
    default = next(row for row in rows if row["part"] == "hypercleaning" and row["default"])
    for method in default["methods"]:
        points = [
            (entry["threshold"], m["f1"])
            for entry in thresholds
            for m in entry["methods"]
            if m["label"] == method["label"]
        ]
        points = sorted(points + [(summary["default_threshold"], method["f1"])])
        axis.plot(*zip(*points), marker="o", color=colours[method["display"]], label=method["display"])
    if summary["default_threshold"] is not None:
        axis.axvline(summary["default_threshold"], color="grey", linestyle=":", label="default threshold")
    axis.set(xlabel="threshold t (flag example i when lam_i < t)", ylabel="F1", title="F1 of the default's lam")
    axis.legend(loc="best")
    figure.tight_layout()
    return figure


def data_scaling_figure(summary: dict):
    """Accuracy against meta-training characters, the fitted trends with their bands, the paper at 1,200."""
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    scaling = summary["data_scaling"]
    if scaling is None:
        axis.text(0.5, 0.5, "not run at this scale", ha="center", va="center", transform=axis.transAxes)
        axis.set_axis_off()
        return figure
    paper_characters = scaling["paper_characters"]
    colours = method_colours(len(scaling["methods"]))
    for method, colour in zip(scaling["methods"], colours):
        characters = [p["characters"] for p in method["points"]]
        axis.scatter(characters, [p["accuracy"] for p in method["points"]], color=colour, s=18, label=method["display"])
        fit = method["fit"]
        if fit is not None:
            grid = np.geomspace(min(characters), paper_characters, 60)
            centre, bands = zip(*(fit_at(fit, n) for n in grid))
            axis.plot(grid, centre, color=colour, linewidth=1.0)
            axis.fill_between(grid, [b[0] for b in bands], [b[1] for b in bands], color=colour, alpha=0.15)
        if method["paper"] is not None:
            axis.scatter(
                [paper_characters],
                [method["paper"]],
                marker="*",
                s=120,
                color=colour,
                edgecolor="black",
                label=f"paper, {method['display']}",
            )
    axis.axvline(paper_characters, color="grey", linestyle=":", linewidth=0.8)
    shown = [p["accuracy"] for m in scaling["methods"] for p in m["points"]]
    shown += [m["paper"] for m in scaling["methods"] if m["paper"] is not None]
    axis.set_ylim(max(0.0, min(shown) - 10), 100.0)  # a band wider than the accuracies' range is cut there
    axis.set_xscale("log")
    axis.set(
        xlabel="meta-training characters (log scale)",
        ylabel="meta-test accuracy (%)",
        title=f"Table 4 against the meta-training data ({scaling['methods'][0]['held_out_characters']} "
        "held-out characters)",
    )
    axis.legend(loc="lower right")
    figure.tight_layout()
    return figure


def main(args) -> int:
    summary = read_json(args.summary)
    with figure_style():
        save_figure(choices_figure(summary), args.choices)
        save_figure(data_scaling_figure(summary), args.data_scaling)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "figure-sensitivity",
        help="the sensitivity study's figures",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--summary", required=True, help="the study's summary (sensitivity-summary writes it)")
    parser.add_argument("--choices", required=True, help="stem of the choices figure (.pdf and .png)")
    parser.add_argument("--data-scaling", required=True, help="stem of the data-scaling figure (.pdf and .png)")
    parser.set_defaults(run=main)
