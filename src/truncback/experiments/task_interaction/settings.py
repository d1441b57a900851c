"""Settings of task interaction: one run's (``TaskInteractionSettings``) and the pipeline's
(``TaskInteractionSection``: datasets, methods, trials, features and per-dataset subset sizes). The
defaults are the paper's settings; docs/assumptions.md explains the choices it leaves open."""

from dataclasses import dataclass
from typing import ClassVar

from truncback.experiments.task_interaction.features import FeatureSettings
from truncback.runtime.harness import HYPER_OPTIMIZERS, LoopSettings
from truncback.hypergrad.problem import check_compile
from truncback.runtime.settings import METHOD_LIST, Settings, compile_setting, setting

DATASETS = ("cifar10", "cifar100")


@dataclass(frozen=True)
class TaskInteractionSettings(Settings):
    """Sizes, optimiser and stopping rule of one run (the subset sizes come from the dataset's entry
    of the section's ``subsets``)."""

    section: ClassVar[str] = "task_interaction"

    train_per_class: int = setting(50, "training examples per class", type="integer", minimum=1)
    val_per_class: int = setting(50, "validation examples per class", type="integer", minimum=1)
    T: int = setting(100, "lower-level gradient steps", type="integer", minimum=1)
    lr: float = setting(0.1, "lower-level step size", type="number", exclusiveMinimum=0)
    C_init: float = setting(0.001, "initial off-diagonal entries of C (the diagonal is 0)", type="number", minimum=0)
    rho_init: float = setting(0.001, "initial rho", type="number", minimum=0)
    hyper_optimizer: str = setting("adam", "optimiser of (C, rho)", enum=sorted(HYPER_OPTIMIZERS))
    hyper_lr: float = setting(0.001, "its learning rate", type="number", exclusiveMinimum=0)
    max_hyper_iterations: int = setting(10000, "hyper-iterations at most", type="integer", minimum=1)
    patience: int = setting(
        500,
        "early stop after this many hyper-iterations without improvement of the validation loss",
        type="integer",
        minimum=1,
    )
    min_delta: float = setting(
        0.0001, "an improvement is a fall below the best validation loss by more than this", type="number", minimum=0
    )
    exact_every: int = setting(
        10, "hyper-iterations between exact (full RMD) gradient evaluations for Fig. 6", type="integer", minimum=1
    )
    dtype: str = setting("float32", "floating-point type", enum=["float32", "float64"])
    compile: bool | str = compile_setting(
        "the lower level's steps (the graph-free forward steps and the reverse passes' vector-Jacobian products)"
    )
    log_every: int = setting(100, "hyper-iterations between progress lines", type="integer", minimum=1)
    checkpoint_every: int = setting(
        250, "hyper-iterations between checkpoints (a killed run resumes from the last)", type="integer", minimum=1
    )

    def check(self) -> None:
        check_compile(self.compile)
        self.loop()

    def loop(self) -> LoopSettings:
        return LoopSettings(
            iterations=self.max_hyper_iterations,
            hyper_lr=self.hyper_lr,
            hyper_optimizer=self.hyper_optimizer,
            exact_every=self.exact_every,
            log_every=self.log_every,
            checkpoint_every=self.checkpoint_every,
        )


def _subset(train: int, val: int) -> type:
    @dataclass(frozen=True)
    class Subset(Settings):
        section: ClassVar[str] = "task_interaction.subsets"
        train_per_class: int = setting(train, "training examples per class", type="integer", minimum=1)
        val_per_class: int = setting(val, "validation examples per class", type="integer", minimum=1)

    return Subset


@dataclass(frozen=True)
class Subsets(Settings):
    """Examples per class drawn from the training split for the training and the validation subset
    (the test set is the whole test split)."""

    section: ClassVar[str] = "task_interaction.subsets"

    cifar10: dict = setting({}, "CIFAR-10 subset sizes", nested=_subset(50, 50))
    cifar100: dict = setting({}, "CIFAR-100 subset sizes", nested=_subset(3, 3))


@dataclass(frozen=True)
class TaskInteractionSection(Settings):
    """The config's ``task_interaction`` section: one run per (dataset, trial, method)."""

    section: ClassVar[str] = "task_interaction"

    datasets: list = setting(
        list(DATASETS),
        "the datasets, one row of Fig. 6 each ([]: the experiment is not run, "
        "as at the offline scale, which has no CIFAR)",
        type="array",
        items={"enum": list(DATASETS)},
        uniqueItems=True,
    )
    methods: list = setting(
        [{"name": "krmd", "K": 1}, {"name": "krmd", "K": 5}, {"name": "krmd", "K": 25}, {"name": "rmd"}],
        "hypergradient methods, one run each per (dataset, trial)",
        **METHOD_LIST,
    )
    trials: int = setting(
        10,
        "trials per dataset; trial i draws its own training and validation subsets (the same for every method)",
        type="integer",
        minimum=1,
    )
    exact_trials: int = setting(
        1,
        "trials (the first ones) that compare h with the exact d_lam f every exact_every "
        "hyper-iterations, for Fig. 6, which draws the first trial; the others skip that "
        "full-RMD gradient, which no output uses",
        type="integer",
        minimum=0,
    )
    batch_trials: bool = setting(
        True,
        "one job per (dataset, method) running its trials as one batched computation on stacked tensors "
        "(runtime.batched, experiments/task_interaction/batched.py; `make bench`'s bench-batched measures "
        "the time per trial against one at a time, eager and compiled: docs/benchmarks.md); false: one job per "
        "trial, which many cores (a cluster) run side by side",
        type="boolean",
    )
    features: dict = setting(
        {}, "passed to FeatureSettings; computed once per dataset and cached", nested=FeatureSettings
    )
    subsets: dict = setting({}, "examples per class of each dataset's training and validation subsets", nested=Subsets)
    settings: dict = setting(
        {}, "passed to TaskInteractionSettings (with the dataset's subset sizes)", nested=TaskInteractionSettings
    )
