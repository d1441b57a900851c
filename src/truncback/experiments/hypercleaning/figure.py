"""Figure 5 (sec. 4.2.1) from the raw hypercleaning results: ||d_lam f|| (exact) against
hyper-iteration per method, log scale, beside the outer (validation) loss. Each method has its own marker
and dash pattern; one whose curves lie on an earlier method's in both panels says so in the legend.

``python -m truncback figure-hypercleaning --results results/full/hypercleaning/*.json --output figures/fig5_hypercleaning_gradnorm``
"""

import numpy as np

from truncback.experiments.hypercleaning.run import HypercleaningResult
from truncback.io.plotting import coinciding_labels, method_styles, plt, register_figure
from truncback.io.tables import grouped_by_label


def fig5_hypercleaning_gradnorm(results: list[HypercleaningResult]):
    """One curve per method (the mean over seeds), in the order of the results."""
    groups = grouped_by_label(results)
    curves = [  # per method: its mean loss and its mean exact norm, each against the hyper-iteration
        [
            (runs[0].run.train["iteration"], np.mean([run.run.train["outer_loss"] for run in runs], axis=0)),
            (runs[0].run.exact["iteration"], np.mean([run.run.exact["grad_norm"] for run in runs], axis=0)),
        ]
        for runs in groups
    ]
    labels = coinciding_labels([runs[0].display for runs in groups], curves)
    figure, (loss_axis, norm_axis) = plt.subplots(1, 2, figsize=(9, 3.6))
    for (loss, norms), dense, sparse, label in zip(
        curves, method_styles(len(groups), dense=True), method_styles(len(groups)), labels
    ):
        loss_axis.plot(*loss, label=label, **dense)
        norm_axis.semilogy(*norms, label=label, **sparse)  # exact every few iterations: each point marked
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
