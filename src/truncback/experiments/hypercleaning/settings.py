"""Settings of data hypercleaning: the run's (``HypercleaningSettings``) and the pipeline's
(``HypercleaningSection``: which dataset, methods and seeds). The defaults are the paper's settings;
docs/assumptions.md explains the choices the paper leaves open."""

from dataclasses import dataclass
from typing import ClassVar

from truncback.runtime.harness import HYPER_OPTIMIZERS, LoopSettings
from truncback.hypergrad.problem import check_compile
from truncback.runtime.settings import METHOD_LIST, Settings, compile_setting, setting


@dataclass(frozen=True)
class HypercleaningSettings(Settings):
    """Sizes and optimiser settings of one run."""

    section: ClassVar[str] = "hypercleaning"

    n_train: int = setting(5000, "training examples (Franceschi et al. 2017)", type="integer", minimum=1)
    n_val: int = setting(5000, "clean validation examples", type="integer", minimum=1)
    n_test: int = setting(10000, "test examples", type="integer", minimum=1)
    corrupted_fraction: float = setting(
        0.5, "training labels changed to another class", type="number", minimum=0, maximum=1
    )
    T: int = setting(100, "lower-level gradient steps", type="integer", minimum=1)
    lr: float = setting(1.0, "lower-level step size gamma", type="number", exclusiveMinimum=0)
    weight_decay: float = setting(0.001, "coefficient of ||W||_F^2 in g", type="number", minimum=0)
    inner_loss: str = setting(
        "mean",
        "how g weighs the training losses: mean, (1/n) sum_i sigmoid(lam_i) CE_i + weight_decay ||W||^2 (stable at "
        "lr 1); sum, the paper's sum_i sigmoid(lam_i) CE_i + weight_decay ||W||^2, whose curvature is n times the "
        "mean's (lr 1/n makes it the mean with weight decay weight_decay/n): docs/assumptions.md",
        enum=["mean", "sum"],
    )
    hyper_iterations: int = setting(1000, "hypergradient steps", type="integer", minimum=1)
    hyper_optimizer: str = setting("adam", "optimiser of lam", enum=sorted(HYPER_OPTIMIZERS))
    hyper_lr: float = setting(0.1, "its learning rate", type="number", exclusiveMinimum=0)
    exact_every: int = setting(
        10, "hyper-iterations between exact (full RMD) gradient evaluations for Fig. 5", type="integer", minimum=1
    )
    threshold: float = setting(
        -3.0, "example i is flagged corrupted when lam_i < threshold (sigmoid(lam_i) < sigmoid(-3))", type="number"
    )
    dtype: str = setting("float32", "floating-point type", enum=["float32", "float64"])
    compile: bool | str = compile_setting(
        "the lower level's steps (the graph-free forward steps and the reverse passes' vector-Jacobian products)"
    )
    log_every: int = setting(10, "hyper-iterations between progress lines", type="integer", minimum=1)
    checkpoint_every: int = setting(
        50, "hyper-iterations between checkpoints (a killed run resumes from the last)", type="integer", minimum=1
    )

    def check(self) -> None:
        check_compile(self.compile)
        self.loop()

    def loop(self) -> LoopSettings:
        return LoopSettings(
            iterations=self.hyper_iterations,
            hyper_lr=self.hyper_lr,
            hyper_optimizer=self.hyper_optimizer,
            exact_every=self.exact_every,
            log_every=self.log_every,
            checkpoint_every=self.checkpoint_every,
        )


@dataclass(frozen=True)
class HypercleaningSection(Settings):
    """The config's ``hypercleaning`` section: one run per (method, seed)."""

    section: ClassVar[str] = "hypercleaning"

    dataset: str = setting(
        "mnist_train",
        "prepared MNIST dataset the examples are drawn from (mnist_train; quick uses mnist_test)",
        enum=["mnist_train", "mnist_test"],
    )
    methods: list = setting(
        [
            {"name": "krmd", "K": 1},
            {"name": "krmd", "K": 5},
            {"name": "krmd", "K": 25},
            {"name": "krmd", "K": 50},
            {"name": "rmd"},
        ],
        "hypergradient methods, one run each (Table 2's rows, in order)",
        **METHOD_LIST,
    )
    seeds: list = setting(
        [0],
        "seed indices; each draws its own split and corruption (mean +- std in Table 2)",
        type="array",
        items={"type": "integer", "minimum": 0},
        minItems=1,
        uniqueItems=True,
    )
    settings: dict = setting({}, "passed to HypercleaningSettings", nested=HypercleaningSettings)
