"""Every legend entry of a figure can be seen: each method curve has a marker and a dash pattern of its
own, a curve lying on an earlier one says so in its label (AID-FP on full RMD from the lower-level
solution), a curve of a single point is marked, and the FOM-vs-UFOM bands are those of the test their
claims use (a band excluding its expectation is a failed claim)."""

import numpy as np
import pytest

from truncback.experiments.aid_vs_itd.figure import draw
from truncback.experiments.fom_ufom.figure import bias_bands, steps_against_T, variance_against_q
from truncback.experiments.fom_ufom.settings import STANDARD_ERRORS
from truncback.io.plotting import coinciding_labels, figure_style, method_styles, plt


def test_a_curve_lying_on_an_earlier_one_in_every_panel_says_so():
    x = [1, 5, 10]
    curves = [
        [(x, [1.0, 0.5, 0.25]), (x, [3.0, 2.0, 1.0])],
        [(x, [1.0, 0.5, 0.2501]), (x, [3.0, 2.0, 1.0])],  # within 0.1% in both panels
        [(x, [1.0, 0.5, 0.25]), (x, [3.0, 2.0, 1.5])],  # on the first in one panel only
    ]
    assert coinciding_labels(["Full RMD", "AID-FP", "10-RMD"], curves) == [
        "Full RMD",
        "AID-FP, coincides with Full RMD",
        "10-RMD",
    ]


def test_each_method_curve_has_its_own_marker_and_dash_pattern():
    styles = method_styles(8, dense=True)
    assert len({style["marker"] for style in styles}) == 8
    assert len({str(style["linestyle"]) for style in styles}) == 8
    assert len({style["markevery"] for style in styles}) == 8  # marks shifted: coinciding curves show both


def aid_result(problem: str) -> dict:
    grid = [1, 5, 10]

    def entry(label, display, error):
        return {"label": label, "display": display, "error": error}

    cold = [
        entry("rmd", "Full RMD", [1.0, 0.5, 0.2]),
        entry("aid_fp-K10", "AID-FP (K=t)", [0.9, 0.4, 0.1]),
    ]
    warm = [
        entry("rmd", "Full RMD", [0.8, 0.3, 0.05]),
        entry("aid_fp-K10", "AID-FP (K=t)", [0.8, 0.3, 0.05]),  # from w*, one recursion
    ]
    return {"problem": problem, "iterations": grid, "rate_bound": 0.9, "methods": {"cold": cold, "warm": warm}}


def legend_texts(axis) -> list[str]:
    return [text.get_text() for text in axis.get_legend().get_texts()]


def test_the_aid_figure_says_where_full_rmd_and_aid_fp_coincide():
    with figure_style():
        figure = draw([aid_result("ridge"), aid_result("logistic")])
        cold, warm = (legend_texts(row[0]) for row in np.asarray(figure.axes).reshape(2, 2))
        plt.close(figure)
    assert cold[:2] == ["Full RMD", "AID-FP (K=t)"]
    assert warm[:2] == ["Full RMD", "AID-FP (K=t), coincides with Full RMD"]


def estimator() -> dict:
    by_q = [
        {
            "q": q,
            "mean": [0.3, -0.1],
            "standard_error": [0.1, 0.05],
            "variance": 2.0,
            "variance_theory": 2.1,
            "steps_mean": 40.0,
            "steps_standard_error": 2.0,
            "steps_expected": 38.0,
        }
        for q in (0.2, 1.0)
    ]
    memory = {
        "T": [40, 80],
        "states_held": {"fom": [2, 2], "ufom_exact_branch": [3, 3], "rmd": [41, 81]},
        "step_evaluations": {"fom": [80, 160], "ufom_exact_branch": [900, 3400], "rmd": [80, 160]},
        "expected_ufom_steps": {"0.2": [250, 820], "1.0": [900, 3400]},
    }
    return {"unbiasedness": {"exact": [0.0, 0.0], "task": 2, "by_q": by_q}, "memory": memory}


def test_the_ufom_bands_are_claim_l2s_test_and_single_points_are_marked():
    with figure_style():
        figure, (bands, variance, steps) = plt.subplots(1, 3)
        bias_bands(bands, estimator()["unbiasedness"], draws=60)
        variance_against_q(variance, estimator()["unbiasedness"])
        steps_against_T(steps, estimator()["memory"])
        heights = [
            [abs(segment[1][1] - segment[0][1]) for segment in container.lines[2][0].get_segments()]
            for container in bands.containers
        ]
        theory = [line for line in variance.get_lines() if line.get_label().startswith("theory")]
        labels = legend_texts(steps)
        title = bands.get_title()
        plt.close(figure)
    assert heights == [pytest.approx([2 * STANDARD_ERRORS * 0.1] * 2), pytest.approx([2 * STANDARD_ERRORS * 0.05] * 2)]
    assert f"±{STANDARD_ERRORS} SE (claim L2's test)" in title
    assert len(theory) == 1 and theory[0].get_marker() == "x"  # one q < 1: a point, which a line alone hides
    assert "Full RMD, coincides with FOM" in labels
