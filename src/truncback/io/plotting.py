"""Figures drawn from raw results only, saved as PDF and PNG with the same bytes on every run.

``figure_style()`` fixes every rcParam (matplotlib's own defaults plus :data:`STYLE`), whatever the
user's matplotlibrc; ``save_figure`` drops the time stamps matplotlib would otherwise embed.
"""

import argparse
import contextlib
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

from truncback.runtime.atomic import atomic_path  # noqa: E402
from truncback.runtime.files import read_json  # noqa: E402
from truncback.io.tables import read_run_results  # noqa: E402

STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "legend.fontsize": 8,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "pdf.fonttype": 42,
    "svg.hashsalt": "truncback",
    "lines.linewidth": 1.4,
}
PDF_METADATA = {"CreationDate": None, "ModDate": None}
PNG_METADATA = {"Software": None}


@contextlib.contextmanager
def figure_style():
    """matplotlib's built-in defaults (not the user's matplotlibrc) overlaid with STYLE."""
    with plt.style.context("default"), matplotlib.rc_context(STYLE):
        yield


def save_figure(figure, stem) -> list[Path]:
    """Writes ``stem``.pdf and ``stem``.png (each to a temporary name, then renamed), closes the figure
    and returns the paths."""
    stem = Path(stem)
    paths = []
    for suffix, metadata in ((".pdf", PDF_METADATA), (".png", PNG_METADATA)):
        path = stem.with_name(stem.name + suffix)
        with atomic_path(path) as temporary:
            figure.savefig(temporary, format=suffix[1:], metadata=metadata)
        paths.append(path)
    plt.close(figure)
    return paths


def method_colours(count: int) -> list:
    """One colour per method curve, from viridis (dark to light in the order of the methods)."""
    return [matplotlib.colormaps["viridis"](x) for x in np.linspace(0.0, 0.9, count)]


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
DASHES = ("-", "--", "-.", ":", (0, (6, 2, 1, 2, 1, 2)), (0, (8, 3)), (0, (1, 3)), (0, (4, 1, 1, 1)))
COINCIDE_RTOL = 1e-3
"""Two curves coincide where every point agrees to 0.1%: one would hide the other on the plot."""


def line_style(index: int, count: int, dense: bool = False) -> dict:
    """The marker and dash pattern of the ``index``-th of ``count`` method curves, each its own, so that
    curves lying on one another stay told apart; ``dense`` (a curve of many points): about ten marked
    points, shifted per method so that coinciding curves show each their markers."""
    style: dict = {"marker": MARKERS[index % len(MARKERS)], "linestyle": DASHES[index % len(DASHES)], "markersize": 4}
    if dense:
        style["markevery"] = (0.1 * index / max(count, 1), 0.1)
    return style


def method_styles(count: int, dense: bool = False) -> list[dict]:
    """One style per method curve: its colour (:func:`method_colours`), marker and dash pattern (:func:`line_style`)."""
    return [{"color": colour, **line_style(i, count, dense)} for i, colour in enumerate(method_colours(count))]


def _same(one, two) -> bool:
    (x1, y1), (x2, y2) = one, two
    x1, y1, x2, y2 = (np.asarray(values, dtype=float) for values in (x1, y1, x2, y2))
    return (
        x1.shape == x2.shape
        and y1.shape == y2.shape
        and np.array_equal(x1, x2)
        and np.allclose(y1, y2, rtol=COINCIDE_RTOL, atol=0.0, equal_nan=True)
    )


def coinciding_labels(names: list[str], curves: list[list]) -> list[str]:
    """Legend labels: ``names``, each curve that lies on an earlier one in every panel the legend describes
    (``curves[i]``: curve i's (x, y) per panel) saying so, "AID-FP (K=t), coincides with Full RMD"."""
    labels = []
    for i, name in enumerate(names):
        under = next((j for j in range(i) if all(map(_same, curves[i], curves[j]))), None)
        labels.append(name if under is None else f"{name}, coincides with {names[under]}")
    return labels


def register_figure(
    subparsers,
    name: str,
    title: str,
    doc: str,
    result_type,
    draw,
    shared_settings: bool = True,
    extra: dict | None = None,
) -> None:
    """A ``figure-*`` command: ``draw(results, **extra_files) -> figure`` from the result files given
    with --results, saved as PDF and PNG. ``extra`` maps further options (e.g. "depth") to their help;
    each names one JSON file, passed to ``draw`` read."""

    def main(args) -> int:
        results = read_run_results(args.results, result_type, shared_settings)
        files = {key: read_json(getattr(args, key)) for key in (extra or {})}
        with figure_style():
            save_figure(draw(results, **files), args.output)
        return 0

    parser = subparsers.add_parser(
        name, help=title, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", nargs="+", required=True, help="result JSON files")
    for key, help_text in (extra or {}).items():
        parser.add_argument(f"--{key}", required=True, help=help_text)
    parser.add_argument("--output", required=True, help="output path without suffix (.pdf and .png are written)")
    parser.set_defaults(run=main)
