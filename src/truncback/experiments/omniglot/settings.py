"""Settings of one-shot Omniglot: one meta-training run's (``OmniglotSettings``), a run of the
pipeline (``OmniglotRun``: method, horizon, iterations, Table 4's milestones) and the config's
section (``OmniglotSection``). The defaults are the paper's settings; docs/assumptions.md explains
the choices it leaves open."""

import json
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import torch

from truncback.experiments.omniglot.model import INITIAL_STATES, Constraints, initial_hyperparameters
from truncback.experiments.omniglot.tasks import SPLITS
from truncback.hypergrad import display_name, label, resolve
from truncback.runtime.harness import HYPER_OPTIMIZERS, LoopSettings
from truncback.hypergrad.problem import check_compile
from truncback.runtime.settings import Settings, compile_setting, setting

POSITIVE = {"type": "integer", "minimum": 1}
GAMMA_MAX = 0.006
"""The bound of gamma: at gamma = 0.99 gamma_max and the initial lam, gamma beta <= 0.72 along the
lower-level path (w_0, w_{T/4}, ..., w_T) of the measured tasks, beta the largest |eigenvalue| of the Hessian
of g_S (64 filters, 5-way, T = 50); at 0.008 it reaches 1.08: docs/measurements/omniglot_stability.md."""
GAMMA_MAX_SHORT_HORIZON = 0.011
"""The bound of gamma of the short horizon (T = 1), by the same rule as ``GAMMA_MAX`` on its one-step path:
at gamma = 0.99 gamma_max and the initial lam gamma beta <= 0.69 (beta at w_0 up to 63; 1/beta = 0.016):
docs/measurements/omniglot_stability_short_horizon.md."""
RHO_MIN = 0.01
"""The floor of every rho_j (the paper asks rho_j > 0), a hundredth of the initial rho: docs/assumptions.md."""


@dataclass(frozen=True)
class OmniglotSettings(Settings):
    """Everything of a meta-training run but its method and length."""

    section: ClassVar[str] = "omniglot"

    ways: int = setting(5, "classes per task (k-way)", type="integer", minimum=2)
    query_per_class: int = setting(15, "drawings per class in Q (MAML's convention); S has one", **POSITIVE)
    rotations: bool = setting(
        True, "rotate each sampled class by a random multiple of 90 degrees (MAML)", type="boolean"
    )
    split: str = setting(
        "pooled",
        "pooled: both files' characters shuffled, the first meta_train_classes "
        "meta-train; files: background file meta-trains, evaluation file meta-tests",
        enum=list(SPLITS),
    )
    meta_train_classes: int = setting(
        1200, "meta-training characters of the pooled split (Vinyals et al. 2016)", **POSITIVE
    )
    split_seed: int = setting(0, "seed of the pooled split's shuffle", type="integer", minimum=0)
    filters: int = setting(64, "3x3 filters per convolution layer (Franceschi et al. 2018)", **POSITIVE)
    batch_norm: bool = setting(
        True, "batch normalisation with batch statistics after each convolution (else a bias)", type="boolean"
    )
    T: int = setting(50, "lower-level gradient steps (the paper)", **POSITIVE)
    gamma_max: float = setting(
        GAMMA_MAX,
        "bound of the inner step size, gamma = gamma_max * sigmoid(theta) < gamma_max: Prop. 3.6 assumes "
        "gamma < 1/beta, and at gamma = 0.99 gamma_max and the initial lam gamma beta <= 0.72 with beta the "
        "largest |eigenvalue| of the Hessian of g_S measured along the lower-level path w_0, ..., w_T "
        "(docs/measurements/omniglot_stability.md)",
        type="number",
        exclusiveMinimum=0,
    )
    init_gamma: float = setting(
        GAMMA_MAX / 2, "initial inner step size gamma, in (0, gamma_max)", type="number", exclusiveMinimum=0
    )
    rho_min: float = setting(
        RHO_MIN,
        "floor of the regularisation weights: rho_j = rho_min + exp(theta_j) > rho_min (the paper: rho_j > 0)",
        type="number",
        minimum=0,
    )
    init_rho: float = setting(
        1.0, "initial regularisation weights rho_j, above rho_min", type="number", exclusiveMinimum=0
    )
    w0: str = setting(
        "c",
        "the lower level's initial state: c, w_0 = c (a hyperparameter, so B_0 = d w_0 / d lam != 0: the term "
        "K-RMD with K < T leaves out, eq. 8); fixed, w_0 = c's value at the start of meta-training, a constant "
        "(B_0 = 0, c only the regulariser's centre). The paper does not say (docs/assumptions.md)",
        enum=list(INITIAL_STATES),
    )
    hyper_optimizer: str = setting("adam", "optimiser of lam", enum=sorted(HYPER_OPTIMIZERS))
    hyper_lr: float = setting(0.001, "its learning rate", type="number", exclusiveMinimum=0)
    clip_norm: float | None = setting(
        1.0,
        "hypergradients longer than this are scaled down to it before the optimiser step (null: no "
        "clipping), for every method alike: a safety net whose every use the run records; with gamma "
        "bounded the exact norms stayed at most 1.9 (median 1.1) over 150 measured hyper-iterations, with "
        "the unbounded gamma = 0.1 they reached 1e7 (docs/measurements/omniglot_stability.md)",
        type=["number", "null"],
        exclusiveMinimum=0,
    )
    meta_batch: int = setting(1, "tasks per hyper-iteration (the paper samples one)", **POSITIVE)
    eval_every: int = setting(500, "hyper-iterations between points of the curves (Fig. 7 plots 1-2)", **POSITIVE)
    curve_tasks: int = setting(120, "meta-test tasks of each curve point (the first of test_tasks)", **POSITIVE)
    validation_tasks: int = setting(120, "fixed meta-training tasks whose Q loss is the validation error", **POSITIVE)
    test_tasks: int = setting(120, "meta-test tasks of Table 4's accuracy (the paper's 120)", type="integer", minimum=2)
    exact_every: int = setting(
        50,
        "hyper-iterations between comparisons with the exact (full-RMD) hypergradient (Fig. 7 plot 3)",
        **POSITIVE,
    )
    checkpoint_every: int = setting(
        250, "hyper-iterations between checkpoints (a killed run resumes from the last)", **POSITIVE
    )
    depth_tasks: int = setting(4, "meta-test tasks of the depth study (Fig. 7 plot 4)", **POSITIVE)
    dtype: str = setting("float32", "floating-point type of meta-training", enum=["float32", "float64"])
    compile: bool | str = compile_setting(
        "the lower level's steps of meta-training (the graph-free forward steps and the reverse passes' vector-Jacobian products; one compilation for every task)"
    )
    log_every: int = setting(50, "hyper-iterations between progress lines", **POSITIVE)

    def check(self) -> None:
        check_compile(self.compile)
        for name in (
            "ways",
            "query_per_class",
            "filters",
            "T",
            "meta_batch",
            "eval_every",
            "curve_tasks",
            "validation_tasks",
            "test_tasks",
            "exact_every",
            "checkpoint_every",
            "depth_tasks",
            "log_every",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {name}={value!r}")
        if self.split not in SPLITS:
            raise ValueError(f"split={self.split!r}; choose one of {SPLITS}")
        if self.curve_tasks > self.test_tasks:
            raise ValueError(
                f"curve_tasks={self.curve_tasks} must not exceed test_tasks={self.test_tasks} "
                "(the curves use the first curve_tasks of the test tasks)"
            )
        if not isinstance(getattr(torch, self.dtype, None), torch.dtype):
            raise ValueError(f"dtype={self.dtype!r} is not a torch dtype")
        self.constraints()
        if not 0 < self.init_gamma < self.gamma_max:
            raise ValueError(f"init_gamma={self.init_gamma} must lie strictly between 0 and gamma_max={self.gamma_max}")
        if not self.init_rho > self.rho_min:
            raise ValueError(f"init_rho={self.init_rho} must exceed rho_min={self.rho_min}")
        self.loop(1)

    def constraints(self) -> Constraints:
        """The bounds of gamma and rho (``model.Constraints``)."""
        return Constraints(self.gamma_max, self.rho_min)

    def initial_hyperparameters(self, seed: int, dtype=None) -> dict:
        """lam at the start of meta-training (``model.initial_hyperparameters``) for this network, these
        initial values and bounds, drawn from ``seed``; in ``dtype`` (default: the settings' dtype)."""
        return initial_hyperparameters(
            self.filters,
            self.ways,
            self.batch_norm,
            self.init_rho,
            self.init_gamma,
            self.constraints(),
            seed,
            dtype if dtype is not None else getattr(torch, self.dtype),
        )

    def loop(self, iterations: int) -> LoopSettings:
        return LoopSettings(
            iterations=iterations,
            hyper_lr=self.hyper_lr,
            hyper_optimizer=self.hyper_optimizer,
            clip_norm=self.clip_norm,
            exact_every=self.exact_every,
            log_every=self.log_every,
            checkpoint_every=self.checkpoint_every,
        )


@dataclass(frozen=True)
class OmniglotRun:
    """One meta-training run: ``method`` (a spec) through T lower-level steps (None: the settings' T;
    T = 1 with full RMD is the short horizon), ``iterations`` hyper-iterations, scored on all test
    tasks after each of ``milestones`` hyper-iterations (Table 4's iteration counts). ``settings``
    overrides the section's settings for this run alone (e.g. the short horizon's bound of gamma)."""

    method: dict
    iterations: int
    milestones: tuple
    T: int | None = None
    settings: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.T is not None and (isinstance(self.T, bool) or not isinstance(self.T, int) or self.T < 1):
            raise ValueError(f"run {self.method}: T={self.T!r} must be a positive int")
        if not isinstance(self.settings, dict):
            raise ValueError(f"run {label(self.method)}: settings={self.settings!r} must be a mapping")
        if "T" in self.settings:
            raise ValueError(f"run {label(self.method)}: settings may not set T; give the run's horizon as its own T")
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, int) or self.iterations < 1:
            raise ValueError(f"run {label(self.method)}: iterations={self.iterations!r} must be at least 1")
        outside = [m for m in self.milestones if not 1 <= m <= self.iterations]
        if outside or not self.milestones:
            raise ValueError(
                f"run {label(self.method)}: milestones {list(self.milestones)} must be non-empty and "
                f"lie in [1, iterations={self.iterations}]"
            )

    def horizon(self, settings: OmniglotSettings) -> int:
        return self.T or settings.T

    def checked(self, settings: OmniglotSettings) -> "OmniglotRun":
        """This run with its method resolved against its horizon (K <= T) and its settings checked
        (``prepared``)."""
        return self.prepared(settings)[0]

    def prepared(self, settings: OmniglotSettings) -> tuple["OmniglotRun", OmniglotSettings]:
        """This run checked against the section's ``settings`` and the settings it meta-trains with:
        ``settings`` with the run's own over them, checked as a section's are (``Settings.from_dict``:
        an unknown key or a bad value is refused naming the run); the method resolved against the
        run's horizon (K <= T)."""
        try:
            applied = OmniglotSettings.from_dict({**asdict(settings), **self.settings})
        except (TypeError, ValueError) as error:
            raise ValueError(f"run {label(self.method)}: settings {self.settings}: {error}") from None
        run = OmniglotRun(
            resolve(self.method, self.horizon(settings)),
            self.iterations,
            tuple(self.milestones),
            self.T,
            dict(self.settings),
        )
        return run, applied

    def name(self, settings: OmniglotSettings) -> str:
        """File label: the method's label, plus -T<T> when the horizon is not the settings' T."""
        T = self.horizon(settings)
        return label(self.method) + (f"-T{T}" if T != settings.T else "")

    def display(self, settings: OmniglotSettings) -> str:
        T = self.horizon(settings)
        if T < settings.T:
            return "Short horizon" if T == 1 else f"Short horizon (T={T})"
        return display_name(self.method, T)

    def arguments(self) -> list:
        """The options of the ``omniglot`` command that describe this run."""
        horizon = ["--T", self.T] if self.T is not None else []
        own = ["--run-settings", json.dumps(self.settings, sort_keys=True)] if self.settings else []
        return [
            "--method",
            json.dumps(self.method, sort_keys=True),
            *horizon,
            *own,
            "--iterations",
            self.iterations,
            "--milestones",
            *self.milestones,
        ]

    @classmethod
    def from_dict(cls, values: dict) -> "OmniglotRun":
        unknown = sorted(set(values) - {"method", "iterations", "milestones", "T", "settings"})
        if unknown:
            raise ValueError(f"omniglot run {values}: unknown key(s) {unknown}")
        return cls(
            values["method"],
            values["iterations"],
            tuple(values["milestones"]),
            values.get("T"),
            dict(values.get("settings", {})),
        )


SHORT_HORIZON = {"gamma_max": GAMMA_MAX_SHORT_HORIZON, "init_gamma": GAMMA_MAX_SHORT_HORIZON / 2}
"""The short horizon's own settings: gamma bounded for its one-step path (``GAMMA_MAX_SHORT_HORIZON``),
starting, as every run, at half its bound."""

RUN_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["method", "iterations", "milestones"],
    "properties": {
        "method": {"$ref": "#/$defs/method"},
        "T": {
            "type": "integer",
            "minimum": 1,
            "description": "lower-level steps; omitted means settings.T (T = 1 is the short horizon)",
        },
        "settings": {
            "type": "object",
            "description": "OmniglotSettings fields set for this run alone, over the section's settings (not T)",
        },
        "iterations": {"type": "integer", "minimum": 1, "description": "hyper-iterations"},
        "milestones": {
            "type": "array",
            "items": {"type": "integer", "minimum": 1},
            "minItems": 1,
            "uniqueItems": True,
            "description": "hyper-iteration counts reported in Table 4",
        },
    },
}


@dataclass(frozen=True)
class OmniglotSection(Settings):
    """The config's ``omniglot`` section: one meta-training run per entry of ``runs``."""

    section: ClassVar[str] = "omniglot"

    seed: int = setting(
        0,
        "seed index; the meta-training tasks, the evaluation tasks and the initial lam derive "
        "from it (the same for every run)",
        type="integer",
        minimum=0,
    )
    depth_from: str = setting(
        "rmd",
        "the run (by its label) whose final lam the depth study (Fig. 7 plot 4) starts from; a full-RMD run",
        type="string",
    )
    runs: list = setting(
        [
            {"method": {"name": "krmd", "K": 1}, "iterations": 15000, "milestones": [5000, 15000]},
            {"method": {"name": "krmd", "K": 10}, "iterations": 15000, "milestones": [5000, 15000]},
            {"method": {"name": "krmd", "K": 25}, "iterations": 5000, "milestones": [5000]},
            {"method": {"name": "rmd"}, "iterations": 5000, "milestones": [5000]},
            {"method": {"name": "rmd"}, "T": 1, "iterations": 15000, "milestones": [15000], "settings": SHORT_HORIZON},
        ],
        "meta-training runs (Table 4's rows, in order): a method, optionally a horizon T and settings of its own, "
        "the hyper-iterations and the milestones whose meta-test accuracy goes into Table 4",
        type="array",
        items=RUN_SCHEMA,
        minItems=1,
    )
    companion_runs: list = setting(
        [
            {"method": {"name": "fom"}, "iterations": 5000, "milestones": [5000]},
            {"method": {"name": "ufom", "q": 0.1}, "iterations": 5000, "milestones": [5000]},
        ],
        "runs of the FOM-vs-UFOM companion table (Likhosherstov et al. 2021), shown beside the 1-RMD and full-RMD "
        "runs of runs; not in Table 4 or Fig. 7",
        type="array",
        items=RUN_SCHEMA,
    )
    settings: dict = setting({}, "passed to OmniglotSettings", nested=OmniglotSettings)


RUN_KEYS = ("runs", "companion_runs")
"""The keys of the config's ``omniglot`` section that list runs: Table 4's, then the FOM-vs-UFOM companion's."""


def every_run(section: dict) -> list:
    """Every run entry of the config's ``omniglot`` section (``RUN_KEYS`` in order)."""
    return [run for key in RUN_KEYS for run in section[key]]
