"""What the rehearsal changes in the paper-scale configuration: only counts of work, never a size.

Every hyper-optimisation runs ``iterations`` hyper-iterations (the first is profiled for memory, the
others are timed) with an exact comparison every ``exact_every``; Omniglot scores ``evaluation_tasks``
tasks per evaluation (at the start and at the end, a milestone); the ResNet computes the features of
the first ``feature_images`` images of each split. The jobs, their labels, the data, the model sizes,
T, K and the toy and Table 1 studies stay those of the paper scale; the other changes are two
lower-level step sizes, which the real data allow and the synthetic data do not: hypercleaning's
(``hypercleaning_lr``) and task interaction's (``task_interaction_lr``). A step costs the same at any
step size.
"""

import copy
from dataclasses import dataclass
from typing import ClassVar

from truncback.experiments.omniglot.settings import every_run
from truncback.runtime.settings import Settings, setting

POSITIVE = {"type": "integer", "minimum": 1}


@dataclass(frozen=True)
class RehearsalSettings(Settings):
    """The config's ``rehearsal`` section (read at ``scale=rehearsal`` only)."""

    section: ClassVar[str] = "rehearsal"

    iterations: int = setting(
        5,
        "hyper-iterations of every hyper-optimisation (the first is profiled for memory, the others timed)",
        type="integer",
        minimum=2,
    )
    exact_every: int = setting(2, "hyper-iterations between exact (full-RMD) comparisons", **POSITIVE)
    evaluation_tasks: int = setting(
        4, "Omniglot tasks per evaluation (curve, validation and milestone test tasks)", type="integer", minimum=2
    )
    feature_images: int = setting(
        200, "images per CIFAR split whose ResNet features are computed (the others are left zero)", **POSITIVE
    )
    hypercleaning_lr: float = setting(
        0.015,
        "hypercleaning's lower-level step size: the synthetic digits are dense "
        "(MNIST's are sparse) and the paper's 1.0 diverges on them (as at the smoke "
        "scale); a step costs the same at any step size",
        type="number",
        exclusiveMinimum=0,
    )
    task_interaction_lr: float = setting(
        0.01,
        "task interaction's lower-level step size: the synthetic ResNet's features of the few images computed, "
        "standardised among zero rows, are far larger than real ones, and the paper's 0.1 diverges on them "
        "(non-finite full-RMD hypergradients on CIFAR-100); a step costs the same at any step size",
        type="number",
        exclusiveMinimum=0,
    )
    archive_sizes: str = setting(
        "published",
        "sizes of the synthetic archives: published (the real ones) or smoke "
        "(the tests' shrunken rehearsal, with config/smoke.yaml's settings)",
        enum=["published", "smoke"],
    )


def rehearsal_config(config: dict) -> dict:
    """A copy of the (validated, paper-scale) ``config`` with the work counts of its ``rehearsal`` section."""
    caps = RehearsalSettings.from_dict(config.get("rehearsal", {}))
    capped = copy.deepcopy(config)
    loop = {"exact_every": caps.exact_every, "log_every": 1}
    capped["hypercleaning"]["settings"].update(hyper_iterations=caps.iterations, lr=caps.hypercleaning_lr, **loop)
    capped["task_interaction"]["settings"].update(
        max_hyper_iterations=caps.iterations, lr=caps.task_interaction_lr, **loop
    )
    capped["task_interaction"]["features"]["max_images"] = caps.feature_images
    for run in every_run(capped["omniglot"]):
        run.update(iterations=caps.iterations, milestones=[caps.iterations])
    capped["omniglot"]["settings"].update(
        eval_every=caps.iterations,
        curve_tasks=caps.evaluation_tasks,
        validation_tasks=caps.evaluation_tasks,
        test_tasks=caps.evaluation_tasks,
        **loop,
    )
    return capped
