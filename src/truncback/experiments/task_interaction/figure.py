"""Figure 6 (sec. 4.2.2) from the raw task-interaction results: one row per dataset (CIFAR-10, then
CIFAR-100); columns: the upper-level (validation) loss, the exact hypergradient norm ||d_lam f|| and
cosine(h, d_lam f), against hyper-iteration, one curve per method, for the first trial. Each method has
its own marker and dash pattern; one whose curves lie on an earlier method's in every panel of its row
says so in the legend.

``python -m truncback figure-task-interaction --results results/full/task_interaction/*/trial*_*.json --output figures/fig6_task_interaction``
"""

from truncback.experiments.task_interaction.run import TaskInteractionResult
from truncback.experiments.task_interaction.table import DATASET_NAMES, dataset_order
from truncback.io.plotting import coinciding_labels, method_styles, plt, register_figure


def first_trials(results: list[TaskInteractionResult]) -> list[list[TaskInteractionResult]]:
    """Per dataset (CIFAR-10 before CIFAR-100), the runs of its lowest-index trial, in their order."""
    rows = []
    for dataset in sorted({r.dataset for r in results}, key=dataset_order):
        trial = min(r.trial for r in results if r.dataset == dataset)
        rows.append([r for r in results if r.dataset == dataset and r.trial == trial])
    return rows


def fig6_task_interaction(results: list[TaskInteractionResult]):
    rows = first_trials(results)
    figure, axes = plt.subplots(len(rows), 3, figsize=(11, 3.2 * len(rows)), squeeze=False)
    for (loss_axis, norm_axis, cosine_axis), runs in zip(axes, rows):
        curves = [
            [
                (run.run.train["iteration"], run.run.train["outer_loss"]),
                (run.run.exact["iteration"], run.run.exact["grad_norm"]),
                (run.run.exact["iteration"], run.run.exact["cosine"]),
            ]
            for run in runs
        ]
        labels = coinciding_labels([run.display for run in runs], curves)
        for (loss, norm, cosine), dense, sparse, label in zip(
            curves, method_styles(len(runs), dense=True), method_styles(len(runs)), labels
        ):
            loss_axis.plot(*loss, label=label, **dense)
            norm_axis.semilogy(*norm, label=label, **sparse)  # exact every few iterations: each point marked
            cosine_axis.plot(*cosine, label=label, **sparse)
        name = DATASET_NAMES.get(runs[0].dataset, runs[0].dataset)
        loss_axis.set(
            xlabel="hyper-iteration", ylabel="upper-level (validation) loss", title=f"{name}: upper-level loss"
        )
        norm_axis.set(
            xlabel="hyper-iteration", ylabel=r"$\|d_\lambda f\|$ (exact)", title=f"{name}: exact gradient norm"
        )
        cosine_axis.axhline(0.0, color="0.6", linewidth=0.6)
        cosine_axis.set(xlabel="hyper-iteration", ylabel=r"cos$(h, d_\lambda f)$", title=f"{name}: cosine")
        cosine_axis.legend()
    figure.suptitle(f"Task interaction, trial {rows[0][0].trial}; features: {features_note(results)}")
    figure.tight_layout()
    return figure


def features_note(results: list[TaskInteractionResult]) -> str:
    """The feature extractor, flagged when it is not the ImageNet-pretrained ResNet."""
    extractors = "; ".join(sorted({r.features["extractor"] for r in results}))
    if all(r.features["pretrained"] for r in results):
        return extractors
    return f"{extractors},\nNOT an ImageNet-pretrained ResNet (reduced scale)"


def register(subparsers) -> None:
    register_figure(
        subparsers,
        "figure-task-interaction",
        "Figure 6 from task-interaction results",
        __doc__,
        TaskInteractionResult,
        fig6_task_interaction,
        shared_settings=False,
    )
