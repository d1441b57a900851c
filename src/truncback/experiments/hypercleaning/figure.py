"""Figure 5 (sec. 4.2.1) from the raw hypercleaning results: ||d_lam f|| (exact) against
hyper-iteration per method, log scale, beside the outer (validation) loss.

``python -m truncback figure-hypercleaning --results results/full/hypercleaning/*.json --output figures/fig5_hypercleaning_gradnorm``
"""

import numpy as np

from truncback.experiments.hypercleaning.run import HypercleaningResult
from truncback.io.plotting import method_colours, plt, register_figure
from truncback.io.tables import grouped_by_label


def fig5_hypercleaning_gradnorm(results: list[HypercleaningResult]):
    """One curve per method (the mean over seeds), in the order of the results."""
    groups = grouped_by_label(results)
    colours = method_colours(len(groups))
    figure, (loss_axis, norm_axis) = plt.subplots(1, 2, figsize=(9, 3.6))
    for runs, colour in zip(groups, colours):
        label = runs[0].display
        loss = np.mean([run.run.train["outer_loss"] for run in runs], axis=0)
        loss_axis.plot(runs[0].run.train["iteration"], loss, color=colour, label=label)
        norms = np.mean([run.run.exact["grad_norm"] for run in runs], axis=0)
        norm_axis.semilogy(runs[0].run.exact["iteration"], norms, color=colour, label=label)
    loss_axis.set(xlabel="hyper-iteration", ylabel="validation loss f", title="Outer objective")
    norm_axis.set(xlabel="hyper-iteration", ylabel=r"$\|d_\lambda f\|$ (exact)", title="Exact hypergradient norm")
    norm_axis.legend()
    figure.tight_layout()
    return figure


def register(subparsers) -> None:
    register_figure(
        subparsers,
        "figure-hypercleaning",
        "Figure 5 from hypercleaning results",
        __doc__,
        HypercleaningResult,
        fig5_hypercleaning_gradnorm,
    )
