"""The AID-vs-ITD figures: relative hypergradient error against the iterations t (one column per
problem; top row from w_0 = 0 with k = t, bottom row from the lower-level solution w*; with the
contraction bound q^t), and, in a second file, the w_0 = 0 errors against the seconds of one call
(wall clock, so that file alone differs between runs). Each method has its own marker and dash pattern;
a method whose errors equal an earlier one's in every panel of a row (from w*, ITD's reverse pass and
AID-FP's iterations are one recursion) says so in the legend.

``python -m truncback figure-aid-vs-itd --results ridge.json logistic.json --output figures/companion_aid_vs_itd``
"""

import argparse
from collections.abc import Sequence

import numpy as np

from truncback.io.plotting import coinciding_labels, figure_style, method_styles, plt, save_figure
from truncback.runtime.files import read_json, timing_path


TITLES = {"cold": "from $w_0 = 0$, AID with $k = t$", "warm": "from $w_0 = w^*$ (lower level solved)"}
X_LABELS = {"cold": "lower-level iterations t (AID: k = t)", "warm": "reverse / solver iterations"}


def draw(results: list[dict], timings: list[dict] | None = None):
    """Error against t, from w_0 = 0 (top row) and from w* (bottom row); or, when ``timings`` are
    given, the w_0 = 0 errors against seconds per call."""
    starts = ["cold"] if timings else ["cold", "warm"]
    figure, axes = plt.subplots(
        len(starts), len(results), figsize=(4.2 * len(results), 3.4 * len(starts)), squeeze=False
    )
    untimed: Sequence[dict | None] = [None] * len(results)
    for row, start in enumerate(starts):
        panels = list(zip(axes[row], results, timings or untimed))
        count = len(results[0]["methods"][start])
        curves = [  # per method (in every result's order), its (x, error) in each panel of the row
            [
                (
                    timing["seconds"][start][result["methods"][start][i]["label"]] if timing else result["iterations"],
                    result["methods"][start][i]["error"],
                )
                for _, result, timing in panels
            ]
            for i in range(count)
        ]
        labels = coinciding_labels([entry["display"] for entry in results[0]["methods"][start]], curves)
        for column, (axis, result, timing) in enumerate(panels):
            grid = np.array(result["iterations"])
            for curve, style, label in zip(curves, method_styles(count), labels):
                x, error = curve[column]
                axis.semilogy(x, np.maximum(error, 1e-17), label=label, **style)
            if timing is None:
                axis.semilogy(grid, result["rate_bound"] ** grid, "k--", linewidth=0.8, label="$q^t$ (rate bound)")
                axis.set_xlabel(X_LABELS[start])
            else:
                axis.set_xscale("log")
                axis.set_xlabel("seconds per hypergradient (wall clock)")
            axis.set_title(f"{result['problem']}: {TITLES[start]}", fontsize=9)
            axis.set_ylabel(r"$\|h - d_\lambda f\| / \|d_\lambda f\|$")
            axis.grid(True, which="major", alpha=0.3)
        axes[row][0].legend(fontsize=7)
    figure.tight_layout()
    return figure


def main(args) -> int:
    results = [read_json(path) for path in args.results]
    with figure_style():
        save_figure(draw(results), args.output)
        if args.time_output:
            save_figure(draw(results, [read_json(timing_path(path)) for path in args.results]), args.time_output)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "figure-aid-vs-itd",
        help="hypergradient error of AID and ITD against iterations",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--results", nargs="+", required=True, help="aid-vs-itd result JSON files")
    parser.add_argument("--output", required=True, help="figure path without suffix (.pdf and .png)")
    parser.add_argument("--time-output", help="also the figure against seconds (wall clock) at this path")
    parser.set_defaults(run=main)
