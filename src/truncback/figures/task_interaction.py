"""Figure 6 (sec. 4.2.2) from the raw task-interaction results: one row per dataset (CIFAR-10, then
CIFAR-100); columns: the upper-level (validation) loss, the exact hypergradient norm ||d_lam f|| and
cosine(h_{T-K}, d_lam f), against hyper-iteration, one curve per K, for the first trial.

``python -m truncback figure-task-interaction --results results/full/task_interaction/*/trial*.json --output figures/fig6_task_interaction``
"""

import argparse
import json

import numpy as np

from truncback.figures import figure_style, plt, save_figure
from truncback.reports.task_interaction_table import DATASET_NAMES, method_label


def first_trials(results: list[dict]) -> list[dict]:
    """The lowest-index trial of each dataset, CIFAR-10 before CIFAR-100."""
    chosen = {}
    for result in results:
        if result["dataset"] not in chosen or result["trial"] < chosen[result["dataset"]]["trial"]:
            chosen[result["dataset"]] = result
    return [chosen[name] for name in sorted(chosen, key=lambda name: (name not in DATASET_NAMES, name))]


def fig6_task_interaction(results: list[dict]):
    rows = first_trials(results)
    figure, axes = plt.subplots(len(rows), 3, figsize=(11, 3.2 * len(rows)), squeeze=False)
    for (loss_axis, norm_axis, cosine_axis), trial in zip(axes, rows):
        T = trial["settings"]["T"]
        methods = sorted(trial["methods"], key=lambda method: method["K"])
        colours = plt.cm.viridis(np.linspace(0.0, 0.9, len(methods)))
        for method, colour in zip(methods, colours):
            label = method_label(method["K"], T)
            loss_axis.plot(method["curve"]["iteration"], method["curve"]["outer_loss"], color=colour, label=label)
            norm_axis.semilogy(method["exact"]["iteration"], method["exact"]["grad_norm"], color=colour, label=label)
            cosine_axis.plot(method["exact"]["iteration"], method["exact"]["cosine"], color=colour, label=label,
                             marker=".")
        name = DATASET_NAMES.get(trial["dataset"], trial["dataset"])
        loss_axis.set(xlabel="hyper-iteration", ylabel="upper-level (validation) loss",
                      title=f"{name}: upper-level loss")
        norm_axis.set(xlabel="hyper-iteration", ylabel=r"$\|d_\lambda f\|$ (exact)",
                      title=f"{name}: exact gradient norm")
        cosine_axis.axhline(0.0, color="0.6", linewidth=0.6)
        cosine_axis.set(xlabel="hyper-iteration", ylabel=r"cos$(h_{T-K}, d_\lambda f)$", title=f"{name}: cosine")
        cosine_axis.legend()
    figure.suptitle(f"Task interaction, trial {rows[0]['trial']}; features: {features_note(results)}")
    figure.tight_layout()
    return figure


def features_note(results: list[dict]) -> str:
    """The feature extractor, flagged when it is not the ImageNet-pretrained ResNet."""
    extractors = "; ".join(sorted({r["features"]["extractor"] for r in results}))
    if all(r["features"]["pretrained"] for r in results):
        return extractors
    return f"{extractors},\nNOT an ImageNet-pretrained ResNet (reduced scale)"


def main(args) -> int:
    results = [json.loads(open(path).read()) for path in args.results]
    with figure_style():
        save_figure(fig6_task_interaction(results), args.output)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("figure-task-interaction", help="Figure 6 from task-interaction results",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", nargs="+", required=True, help="task-interaction trial JSON files")
    parser.add_argument("--output", required=True, help="output path without suffix (.pdf and .png are written)")
    parser.set_defaults(run=main)
