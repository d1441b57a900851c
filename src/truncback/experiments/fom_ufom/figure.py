"""The FOM vs UFOM figure from the raw results of ``python -m truncback fom-ufom`` (paths and
estimator): (a) ||grad F|| along the SGD paths with FOM's floor; (b) UFOM's mean minus the exact
hypergradient per q and (d) its step evaluations against q, each mean with the band of claims L2 and
L3's test (STANDARD_ERRORS standard errors: a band that excludes the expectation is a failed claim);
(c) its variance against q; (e) states held and (f) step evaluations against T. Only deterministic
quantities are drawn; methods whose counts coincide say so in the legend.

``python -m truncback figure-fom-ufom --paths paths.json --estimator estimator.json --output companion_fom_ufom``
"""

import argparse

import numpy as np

from truncback.experiments.fom_ufom.settings import STANDARD_ERRORS
from truncback.io.plotting import MARKERS, coinciding_labels, figure_style, method_colours, plt, save_figure
from truncback.runtime.files import read_json

MEMORY_LABELS = {"fom": "FOM", "ufom_exact_branch": "UFOM (exact branch)", "rmd": "Full RMD"}
MEMORY_STYLES = {"fom": "o-", "ufom_exact_branch": "s-", "rmd": "^--"}
"""FOM and full RMD both take 2T steps: their markers and lines differ so that both stay visible, and the
legend says that they coincide."""


def label_colours(labels) -> dict:
    """One colour per method label, in the order the labels first appear."""
    labels = list(dict.fromkeys(labels))
    return dict(zip(labels, method_colours(len(labels))))


def gradient_norm_paths(axis, paths: dict) -> None:
    """(a) ||grad F(lam_tau)|| per run (one line per seed) and FOM's floor ||grad F(lam_FOM)||."""
    colours = label_colours(run["label"] for run in paths["runs"])
    shown = set()
    for run in paths["runs"]:
        tau = np.arange(len(run["exact_norm"]))
        axis.semilogy(
            tau,
            run["exact_norm"],
            color=colours[run["label"]],
            linewidth=0.8,
            label=None if run["label"] in shown else run["display"],
        )
        shown.add(run["label"])
    axis.axhline(
        paths["family"]["fom_floor"],
        color="black",
        linestyle="--",
        linewidth=1.0,
        label=r"FOM floor $\|\nabla F(\lambda_{FOM})\|$",
    )
    axis.set(
        xlabel=r"hyper-iteration $\tau$",
        ylabel=r"$\|\nabla F(\lambda_\tau)\|$ (exact)",
        title=rf"(a) SGD paths, $\eta_\tau = {paths['settings']['eta0']:g} / \sqrt{{\tau}}$",
    )
    axis.legend(loc="lower left")


def bias_bands(axis, unbiased: dict, draws: int) -> None:
    """(b) mean UFOM estimate minus d_lam f_i per coordinate, with +-STANDARD_ERRORS standard errors, per q."""
    studies = unbiased["by_q"]
    dimension = len(unbiased["exact"])
    offsets = np.linspace(-0.25, 0.25, dimension) if dimension > 1 else np.zeros(1)
    colours = method_colours(dimension)
    exact = np.asarray(unbiased["exact"])
    for k in range(dimension):
        bias = [study["mean"][k] - exact[k] for study in studies]
        band = [STANDARD_ERRORS * study["standard_error"][k] for study in studies]
        axis.errorbar(
            np.arange(len(studies)) + offsets[k],
            bias,
            yerr=band,
            fmt=MARKERS[k % len(MARKERS)],
            markersize=3,
            capsize=2,
            color=colours[k],
            label=rf"$k = {k + 1}$",
        )
    axis.axhline(0.0, color="black", linewidth=0.8)
    axis.set_xticks(np.arange(len(studies)), [f"{study['q']:g}" for study in studies])
    axis.set(
        xlabel="q",
        ylabel=r"mean UFOM $-\ d_\lambda f_i$ (coordinate k)",
        title=f"(b) unbiasedness: {draws} draws per q on task {unbiased['task'] + 1},\n"
        f"bands ±{STANDARD_ERRORS} SE (claim L2's test)",
    )
    axis.legend(loc="best", ncol=2)


def variance_against_q(axis, unbiased: dict) -> None:
    """(c) trace of the covariance of the draws and (1 - q) / q ||d_lam f_i - FOM_i||^2, for q < 1 (at q = 1
    the estimate is exact and its variance 0)."""
    studies = [study for study in unbiased["by_q"] if study["q"] < 1]
    q = [study["q"] for study in studies]
    axis.loglog(q, [study["variance"] for study in studies], "o", label="measured")
    axis.loglog(  # marked: with a single q < 1 (the smoke scale) a line alone would not show
        q,
        [study["variance_theory"] for study in studies],
        "x--",
        color="black",
        markersize=8,
        label=r"theory $(1-q)/q\ \|d_\lambda f_i - \mathrm{FOM}_i\|^2$",
    )
    axis.set(xlabel="q", ylabel="variance (trace of covariance)", title="(c) variance against q")
    axis.legend(loc="best")  # not over the points (one each, with a single q < 1)


def steps_against_q(axis, unbiased: dict, T: int) -> None:
    """(d) step evaluations per estimate: the mean over the draws (+-STANDARD_ERRORS SE) and 2T + q (T + T(T+1)/2)."""
    studies = unbiased["by_q"]
    q = [study["q"] for study in studies]
    axis.errorbar(
        q,
        [study["steps_mean"] for study in studies],
        yerr=[STANDARD_ERRORS * study["steps_standard_error"] for study in studies],
        fmt="o",
        capsize=2,
        label=f"measured (mean over draws, ±{STANDARD_ERRORS} SE: claim L3's test)",
    )
    axis.plot(q, [study["steps_expected"] for study in studies], "--", color="black", label=r"$2T + q\,(T + T(T+1)/2)$")
    axis.set(xlabel="q", ylabel="step evaluations per estimate", title=f"(d) time against q (T = {T})")
    axis.legend(loc="best")


def memory_labels(memory: dict, count: str) -> dict:
    """MEMORY_LABELS, those whose ``count`` ("states_held", "step_evaluations") coincides with an earlier
    method's at every T saying so."""
    curves = [[(memory["T"], memory[count][name])] for name in MEMORY_LABELS]
    return dict(zip(MEMORY_LABELS, coinciding_labels(list(MEMORY_LABELS.values()), curves)))


def states_against_T(axis, memory: dict) -> None:
    """(e) lower-level states held at once by FOM, UFOM's exact branch and full RMD."""
    colours = method_colours(len(MEMORY_LABELS))
    labels = memory_labels(memory, "states_held")
    for (name, label), colour in zip(labels.items(), colours):
        axis.plot(memory["T"], memory["states_held"][name], MEMORY_STYLES[name], color=colour, label=label)
    axis.set(xlabel="T (lower-level steps)", ylabel="states held", title="(e) memory against T")
    axis.legend(loc="best")


def steps_against_T(axis, memory: dict) -> None:
    """(f) step evaluations of one estimate against T (measured), and UFOM(q)'s expectation per q < 1."""
    colours = method_colours(len(MEMORY_LABELS))
    labels = memory_labels(memory, "step_evaluations")
    for (name, label), colour in zip(labels.items(), colours):
        axis.loglog(
            memory["T"],
            memory["step_evaluations"][name],
            MEMORY_STYLES[name],
            color=colour,
            label=label,
            markersize=7 if name == "fom" else 5,
        )
    for q, expected in memory["expected_ufom_steps"].items():
        if float(q) < 1:
            axis.loglog(memory["T"], expected, ":", color="0.4", linewidth=0.9)
    axis.plot([], [], ":", color="0.4", label=r"UFOM expected, $q$ < 1")
    axis.set(
        xlabel="T (lower-level steps)",
        ylabel="step evaluations per estimate",
        title=r"(f) time against T: $O(T + qT^2)$",
    )
    axis.legend(loc="best")


def fom_ufom_figure(paths: dict, estimator: dict):
    figure, axes = plt.subplots(2, 3, figsize=(14, 8))
    gradient_norm_paths(axes[0, 0], paths)
    bias_bands(axes[0, 1], estimator["unbiasedness"], estimator["settings"]["draws"])
    variance_against_q(axes[0, 2], estimator["unbiasedness"])
    steps_against_q(axes[1, 0], estimator["unbiasedness"], estimator["settings"]["T"])
    states_against_T(axes[1, 1], estimator["memory"])
    steps_against_T(axes[1, 2], estimator["memory"])
    figure.tight_layout()
    return figure


def main(args) -> int:
    with figure_style():
        save_figure(fom_ufom_figure(read_json(args.paths), read_json(args.estimator)), args.output)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "figure-fom-ufom",
        help="the FOM vs UFOM figure from its raw results",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--paths", required=True, help="result .json of `fom-ufom paths`")
    parser.add_argument("--estimator", required=True, help="result .json of `fom-ufom estimator`")
    parser.add_argument("--output", required=True, help="output path without suffix (.pdf and .png are written)")
    parser.set_defaults(run=main)
