"""Fig. 7 (one-shot Omniglot) from the raw results: (1) meta-test accuracy and (2) validation loss
(the upper-level loss f on the query sets Q of fixed meta-training tasks; the paper's "validation
error") against the hyper-iteration per method, (3) the cosine between the K-RMD and the full-RMD
hypergradients during meta-training (each comparison a dot, the moving mean of the last COSINE_WINDOW a
line), (4) the relative error of K-RMD against the reverse depth K, with rho > 0 and rho = 0, at the
learned lambda, (5) at the same with every rho raised to put the regulariser in effect, and (6) at the
initial one. Each method has its own colour, marker and dash pattern, and
one whose curve lies on an earlier method's says so in the panel's legend.

``python -m truncback figure-omniglot --results r1.json ... --depth depth.json --output figures/fig7_omniglot``
"""

import numpy as np
from matplotlib import ticker

from truncback.experiments.omniglot.depth import POINTS
from truncback.experiments.omniglot.run import OmniglotResult
from truncback.hypergrad import is_exact
from truncback.io.plotting import coinciding_labels, line_style, plt, register_figure

COSINE_WINDOW = 10


def moving_average(values, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each point (fewer at the start)."""
    values = np.asarray(values, dtype=float)
    sums = np.cumsum(np.concatenate([[0.0], values]))
    starts = np.maximum(np.arange(1, len(values) + 1) - window, 0)
    return (sums[1:] - sums[starts]) / (np.arange(1, len(values) + 1) - starts)


def styles(results) -> dict:
    """Per method: its tab10 colour, marker and dash pattern."""
    palette = plt.get_cmap("tab10")
    return {
        result.display: {"color": palette(i), **line_style(i, len(results), dense=True)}
        for i, result in enumerate(results)
    }


def plot_methods(axis, curves: dict, style: dict) -> None:
    """One line per method, ``curves``: {display name: (x, y)}, labelled as :func:`coinciding_labels` says."""
    labels = coinciding_labels(list(curves), [[curve] for curve in curves.values()])
    for (name, (x, y)), label in zip(curves.items(), labels):
        axis.plot(x, y, label=label, **style[name])


def learning_curves(axes, results, style):
    accuracy_axis, validation_axis = axes
    for axis, key in ((accuracy_axis, "test_accuracy"), (validation_axis, "validation_loss")):
        plot_methods(
            axis,
            {result.display: (result.evaluations["iteration"], result.evaluations[key]) for result in results},
            style,
        )
    settings = results[0].settings
    accuracy_axis.set_title(f"(1) meta-test accuracy ({settings['curve_tasks']} tasks)")
    accuracy_axis.set_ylabel("accuracy (%)")
    validation_axis.set_title(f"(2) validation loss f on Q ({settings['validation_tasks']} tasks)")
    validation_axis.set_ylabel("validation loss f (cross-entropy)")
    for axis in axes:
        axis.set_xlabel("hyper-iteration")
        axis.legend(loc="best")


def cosine_panel(axis, results, style):
    inexact = [result for result in results if not is_exact(result.method, result.T)]  # full RMD is the reference
    for result in inexact:
        exact = result.run.exact
        axis.plot(
            exact["iteration"], exact["cosine"], ".", color=style[result.display]["color"], alpha=0.25, markersize=3
        )
    plot_methods(
        axis,
        {
            result.display: (result.run.exact["iteration"], moving_average(result.run.exact["cosine"], COSINE_WINDOW))
            for result in inexact
        },
        style,
    )
    axis.axhline(0.0, color="grey", linewidth=0.8)
    axis.plot([], [], ".", color="grey", alpha=0.5, label="one comparison (dots)")
    axis.set_title(f"(3) cosine(method, full RMD);\nlines: moving mean of the last {COSINE_WINDOW} comparisons")
    axis.set_xlabel("hyper-iteration")
    axis.set_ylabel("cosine similarity")
    axis.legend(loc="best")


POINT_NAMES = {"learned": "learnt λ", "regularised": "learnt λ, ρ raised", "initial": "initial λ"}


def depth_panel(axis, depth, point: str, number: int):
    """At the ``point`` lambda (one of the depth study's ``POINTS``): the error over all hyperparameters (solid) and over
    those other than c (dashed; c's gradient is the B_0 term K-RMD leaves out, which with rho = 0 is all of
    it); the title gives that lambda's gamma and smallest rho (how strongly the regulariser acts)."""
    variants = {"rho_positive": ("C0", r"$\rho>0$"), "rho_zero": ("C3", r"$\rho=0$")}
    for variant, (colour, label) in variants.items():
        study = depth[point][variant]
        for suffix, style, what in (("", "-", "all λ"), ("_without_c", "--", "λ without c")):
            errors = np.asarray(study[f"mean{suffix}"][:-1])
            axis.semilogy(
                np.arange(len(errors)),
                errors,
                color=colour,
                linestyle=style,
                label=f"{label}, {what} (rate {study[f'fit{suffix}']['rate']:.3f})",
            )
    gamma, rho = depth[point]["gamma"], min(depth[point]["rho"])
    axis.set_title(
        f"({number}) error vs depth, {POINT_NAMES[point]} ({depth['tasks']} task{'s' if depth['tasks'] != 1 else ''})\n"
        f"γ = {gamma:.3g}, smallest ρ = {rho:.3g}"
    )
    axis.set_xlabel("reverse depth K")
    axis.set_ylabel(r"$\|h_{T-K} - d_\lambda f\| \,/\, \|d_\lambda f\|$")
    axis.yaxis.set_minor_formatter(ticker.LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(2, 1)))
    axis.legend(loc="best")


def fig7_omniglot(results: list[OmniglotResult], depth: dict):
    style = styles(results)
    figure, axes = plt.subplots(1, 6, figsize=(25, 3.9))
    learning_curves(axes[:2], results, style)
    cosine_panel(axes[2], results, style)
    for number, point in enumerate(POINTS, start=4):
        depth_panel(axes[number - 1], depth, point, number)
    figure.tight_layout()
    return figure


def register(subparsers) -> None:
    register_figure(
        subparsers,
        "figure-omniglot",
        "Figure 7 from Omniglot results",
        __doc__,
        OmniglotResult,
        fig7_omniglot,
        extra={"depth": "omniglot-depth result JSON"},
    )
