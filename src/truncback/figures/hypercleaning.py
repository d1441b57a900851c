"""Figure 5 (sec. 4.2.1) from the raw hypercleaning results: ||d_lam f|| (exact) against
hyper-iteration per K, log scale, beside the outer (validation) loss.

``python -m truncback figure-hypercleaning --results results/full/hypercleaning/*.json --output figures/fig5_hypercleaning_gradnorm``
"""

import argparse
from collections import defaultdict

import numpy as np

from truncback.figures import figure_style, plt, save_figure
from truncback.results import read_runs


def fig5_hypercleaning_gradnorm(results: list[dict]):
    """One curve per K (the mean over seeds); K = T is labelled full RMD."""
    by_K = defaultdict(list)
    for result in results:
        by_K[result["K"]].append(result)
    T = results[0]["settings"]["T"]
    colours = {K: plt.cm.viridis(x) for K, x in zip(sorted(by_K), np.linspace(0.0, 0.9, len(by_K)))}
    figure, (loss_axis, norm_axis) = plt.subplots(1, 2, figsize=(9, 3.6))
    for K in sorted(by_K):
        runs = by_K[K]
        label = f"K = {K} (full RMD)" if K == T else f"K = {K}"
        loss = np.mean([run["curve"]["outer_loss"] for run in runs], axis=0)
        loss_axis.plot(runs[0]["curve"]["iteration"], loss, color=colours[K], label=label)
        norms = np.mean([run["exact"]["grad_norm"] for run in runs], axis=0)
        norm_axis.semilogy(runs[0]["exact"]["iteration"], norms, color=colours[K], label=label)
    loss_axis.set(xlabel="hyper-iteration", ylabel="validation loss f", title="Outer objective")
    norm_axis.set(xlabel="hyper-iteration", ylabel=r"$\|d_\lambda f\|$ (exact)", title="Exact hypergradient norm")
    norm_axis.legend()
    figure.tight_layout()
    return figure


def main(args) -> int:
    results = read_runs(args.results)
    with figure_style():
        save_figure(fig5_hypercleaning_gradnorm(results), args.output)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("figure-hypercleaning", help="Figure 5 from hypercleaning results",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", nargs="+", required=True, help="hypercleaning result JSON files")
    parser.add_argument("--output", required=True, help="output path without suffix (.pdf and .png are written)")
    parser.set_defaults(run=main)
