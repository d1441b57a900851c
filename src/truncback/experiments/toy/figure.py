"""Figures 1-4 of sec. 4.1 from the toy experiments' raw results (see truncback.experiments.toy).

``python -m truncback figure-toy fig1_toy_bound --results-dir results/full/toy --output figures/fig1_toy_bound``
"""

import argparse
from pathlib import Path

import matplotlib
import numpy as np

from truncback.io.plotting import figure_style, plt, save_figure
from truncback.runtime.files import load_npz, read_json

RESULT_FILES = {
    "landscape": "landscape.npz",
    "bound": "bound.json",
    "trajectories_f": "trajectories_f.json",
    "trajectories_f_tilde": "trajectories_f_tilde.json",
    "optimum": "optimum.json",
}
LABELS = {"f": r"$f$", "f_tilde": r"$\tilde f$"}


class ToyResults:
    """The raw results of one scale, read on demand from ``results_dir``."""

    def __init__(self, results_dir):
        self.directory = Path(results_dir)

    def path(self, key: str) -> Path:
        path = self.directory / RESULT_FILES[key]
        if not path.is_file():
            raise FileNotFoundError(f"raw result {path} does not exist; run its `python -m truncback toy` step first")
        return path

    def json(self, key: str) -> dict:
        return read_json(self.path(key))

    def landscape(self) -> dict:
        return load_npz(self.path("landscape"))


def k_colours(K_values) -> dict:
    """One colour per K, the same in every figure."""
    return {K: matplotlib.colormaps["viridis"](x) for K, x in zip(K_values, np.linspace(0.0, 0.9, len(K_values)))}


def k_label(K: int, T: int) -> str:
    return f"K = {K} (full RMD)" if K == T else f"K = {K}"


def fig1_toy_bound(results: ToyResults):
    """Left: f(w_T(lam)) over lam. Right: ||h_{T-K} - d_lam f|| against K at lam = bound_point, and
    the bound of eq. (10). K = T is left out: its error is 0 up to rounding."""
    land, bound = results.landscape(), results.json("bound")
    figure = plt.figure(figsize=(10, 4))
    surface = figure.add_subplot(1, 2, 1, projection="3d")
    lam1, lam2 = np.meshgrid(land["axis"], land["axis"], indexing="xy")
    surface.plot_surface(lam1, lam2, land["f"], cmap="viridis", rcount=60, ccount=60, linewidth=0)
    surface.set(xlabel=r"$\lambda_1$", ylabel=r"$\lambda_2$", title=r"$f(\hat w^*(\lambda))$")
    errors = figure.add_subplot(1, 2, 2)
    K = np.asarray(bound["K"][:-1])
    errors.semilogy(K, bound["error"][:-1], label=r"$\|h_{T-K} - d_\lambda f\|$ (K-RMD)")
    errors.semilogy(K, bound["bound"][:-1], "--", label="bound (10)")
    errors.set(
        xlabel="K (reverse steps)",
        ylabel="error",
        title=rf"Prop. 3.1 at $\lambda$ = ({bound['lam'][0]:g}, {bound['lam'][1]:g})",
    )
    errors.legend()
    figure.tight_layout()
    return figure


def fig2_toy_descent_ratio(results: ToyResults):
    """h_{T-K}^T d_lam F / ||d_lam F||^2 along the 1-RMD path, for F = f (left) and F = f~ (right)."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for axis, objective in zip(axes, ("f", "f_tilde")):
        result = results.json(f"trajectories_{objective}")
        colours = k_colours([entry["K"] for entry in result["descent_ratio"]])
        T = result["settings"]["T"]
        for entry in result["descent_ratio"]:
            tau = np.arange(1, len(entry["ratio"]) + 1)
            axis.plot(tau, entry["ratio"], color=colours[entry["K"]], label=k_label(entry["K"], T))
        axis.axhline(0.0, color="black", linewidth=0.8)
        axis.set(
            xlabel=r"hyper-iteration $\tau$ of the 1-RMD path",
            title=rf"$h_{{T-K}}^\top d_\lambda F / \|d_\lambda F\|^2$, F = {LABELS[objective]}",
        )
    axes[0].set_ylabel("ratio")
    axes[1].legend()
    figure.tight_layout()
    return figure


def window(paths, margin: float = 0.25):
    """Axis limits around every point of ``paths`` (arrays of shape [n, 2]) with a relative margin."""
    points = np.concatenate(paths)
    low, high = points.min(axis=0), points.max(axis=0)
    pad = margin * np.maximum(high - low, 0.5)
    return (low[0] - pad[0], high[0] + pad[0]), (low[1] - pad[1], high[1] + pad[1])


def trajectories_and_convergence(land, result, objective, extra_points=()):
    """Left: the paths lam_tau over contours of the objective. Right: ||d_lam F(lam_tau)|| (log)."""
    runs = result["runs"]
    T = result["settings"]["T"]
    colours = k_colours([run["K"] for run in runs])
    figure, (paths_axis, rate_axis) = plt.subplots(1, 2, figsize=(10, 4.2))
    paths = [np.asarray(run["lam"]) for run in runs]
    xlim, ylim = window(paths + [np.asarray(extra_points).reshape(-1, 2)])
    paths_axis.contour(land["axis"], land["axis"], land[objective], levels=30, colors="0.7", linewidths=0.6)
    for run, path in zip(runs, paths):
        paths_axis.plot(
            path[:, 0], path[:, 1], ".-", markersize=2.5, color=colours[run["K"]], label=k_label(run["K"], T)
        )
    start = paths[0][0]
    paths_axis.plot(start[0], start[1], "ko", markersize=5, label="start")
    paths_axis.set(xlim=xlim, ylim=ylim, xlabel=r"$\lambda_1$", ylabel=r"$\lambda_2$", aspect="equal")
    for run in runs:
        tau = np.arange(1, len(run["exact_norm"]) + 1)
        rate_axis.semilogy(tau, run["exact_norm"], color=colours[run["K"]], label=k_label(run["K"], T))
    rate_axis.set(
        xlabel=r"hyper-iteration $\tau$", ylabel=rf"$\|d_\lambda$ {LABELS[objective]}$(\lambda_\tau)\|$ (exact)"
    )
    return figure, paths_axis, rate_axis


def fig3_toy_biased_convergence(results: ToyResults):
    """K-RMD on f~ (grad_lam f~ != 0): 1-RMD stalls at a biased point, larger K gets close to the
    optimum (red X) found by multi-start exact gradient descent."""
    best = results.json("optimum")
    figure, paths_axis, rate_axis = trajectories_and_convergence(
        results.landscape(), results.json("trajectories_f_tilde"), "f_tilde", extra_points=[best["lam"]]
    )
    paths_axis.plot(*best["lam"], "x", color="red", markersize=10, markeredgewidth=2.5, label=r"optimum of $\tilde f$")
    paths_axis.set_title(r"K-RMD on $\tilde f = f + 5\|\lambda - (1, 0)\|^2$")
    paths_axis.legend(loc="best")
    rate_axis.set_title("biased convergence")
    figure.tight_layout()
    return figure


def fig4_toy_convergence(results: ToyResults):
    """K-RMD on f with eta_tau = eta_0 / sqrt(tau): every K converges to a stationary point."""
    figure, paths_axis, rate_axis = trajectories_and_convergence(
        results.landscape(), results.json("trajectories_f"), "f"
    )
    paths_axis.set_title(r"K-RMD on $f$, $\eta_\tau = \eta_0 / \sqrt{\tau}$")
    paths_axis.legend(loc="best")
    rate_axis.set_title("convergence")
    figure.tight_layout()
    return figure


FIGURES = {
    function.__name__: function
    for function in (fig1_toy_bound, fig2_toy_descent_ratio, fig3_toy_biased_convergence, fig4_toy_convergence)
}


def main(args) -> int:
    with figure_style():
        save_figure(FIGURES[args.figure](ToyResults(args.results_dir)), args.output)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "figure-toy",
        help="draw one toy figure (Figs. 1-4) from raw results",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("figure", choices=sorted(FIGURES))
    parser.add_argument("--results-dir", required=True, help="directory of the toy raw results")
    parser.add_argument("--output", required=True, help="output path without suffix (.pdf and .png are written)")
    parser.set_defaults(run=main)
