"""Settings of the sensitivity study (the config's ``sensitivity`` section) and the runs it makes.

Three parts, each a list of ordinary runs of an existing command (resumable, stamped with their code
version, their health recorded like every other run):

- ``hypercleaning``: the default and every entry of ``variants``, each with every method and seed:
  ``python -m truncback hypercleaning``;
- ``omniglot``: the default and every entry of ``variants``, each with every run and seed:
  ``python -m truncback omniglot``;
- ``data_scaling``: every pool size, each with every run and seed: ``python -m truncback omniglot``
  meta-trained on the first ``N`` characters of ``pool_alphabets`` and meta-tested on the alphabets
  ``held_out`` (``python -m truncback sensitivity-pool`` writes both files; the paper scale's: the
  background file's characters, the evaluation file's alphabets).

A run's settings are the scale's (config ``hypercleaning.settings`` or ``omniglot.settings``), overlaid
by the part's ``settings`` (the default variant), overlaid by the variant's ``settings``: a variant is
one config entry naming only what it changes. The defaults below are the paper scale's; the offline
and quick overlays name the offline files' alphabets.
"""

from dataclasses import dataclass
from typing import ClassVar

from truncback.experiments.hypercleaning.settings import HypercleaningSettings
from truncback.experiments.omniglot.settings import RUN_SCHEMA, OmniglotRun, OmniglotSettings
from truncback.hypergrad import label, resolve
from truncback.runtime.settings import METHOD_LIST, Settings, setting

DEFAULT = "default"
"""The name of every part's default variant: the scale's settings with the part's ``settings``."""
PARTS = ("hypercleaning", "omniglot", "data_scaling")
FILES = ("background", "evaluation")
"""The two prepared Omniglot files an alphabet is named in: ``background/<alphabet>``, ``evaluation/<alphabet>``."""
PAPER_CHARACTERS = OmniglotSettings.meta_train_classes
"""The paper's meta-training characters (1,200: Vinyals et al.'s split), where the data-scaling trend is read."""

VARIANT_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "choice", "reading", "settings"],
    "properties": {
        "name": {
            "type": "string",
            "pattern": "^[a-z0-9][a-z0-9_]*$",
            "description": "the variant's folder under results/<scale>/sensitivity/<part>/ (not 'default')",
        },
        "choice": {"type": "string", "description": "the open choice it reads otherwise (the table groups by it)"},
        "reading": {"type": "string", "description": "this reading of the choice, in words (shown in the table)"},
        "settings": {
            "type": "object",
            "description": "the settings this reading changes, over the default's (every other setting is the default's)",
        },
    },
}
SEEDS = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1, "uniqueItems": True}
ALPHABETS = {"type": "array", "items": {"type": "string", "pattern": "^(background|evaluation)/.+$"}}
OVERRIDES = {"type": "object"}


@dataclass(frozen=True)
class HypercleaningChoices(Settings):
    """Table 2's open choices: one hyper-optimisation per (variant, method, seed)."""

    section: ClassVar[str] = "sensitivity.hypercleaning"

    methods: list = setting(
        [{"name": "krmd", "K": 1}, {"name": "rmd"}],
        "methods of every variant (C4 compares the smallest-K K-RMD with full RMD)",
        **METHOD_LIST,
    )
    seeds: list = setting([0], "seed indices of every variant (each its own split and corruption)", **SEEDS)
    settings: dict = setting(
        {}, "over the scale's hypercleaning.settings for every run of the study (the default variant)", **OVERRIDES
    )
    thresholds: list = setting(
        [0.0, -1.0, -2.0, -4.0],
        "F1 of the default variant's final lam also at these thresholds (lam_i < t flags example i), from its "
        "saved lam: footnote 7 says other thresholds give similar F1",
        type="array",
        items={"type": "number"},
        uniqueItems=True,
    )
    variants: list = setting(
        [
            {
                "name": "paper_sum",
                "choice": "inner loss",
                "reading": "the paper's sum over the n = 5000 examples (weight decay 0.001 on the sum), gamma = 1/n: "
                "the mean with weight decay 0.001/n",
                "settings": {"inner_loss": "sum", "lr": 0.0002},
            },
            {
                "name": "stable_step",
                "choice": "inner step size",
                "reading": "gamma = 0.2 instead of the paper's 1: gamma beta <= 0.89 on the lower-level path at every "
                "lam measured (Prop. 3.6's gamma < 1/beta; at gamma = 1 it is 2.05-9.1)",
                "settings": {"lr": 0.2},
            },
        ],
        "readings of Table 2's open choices other than the default, one entry each",
        type="array",
        items=VARIANT_SCHEMA,
    )


OMNIGLOT_RUNS = [
    {"method": {"name": "krmd", "K": 1}, "iterations": 1000, "milestones": [1000]},
    {"method": {"name": "rmd"}, "iterations": 1000, "milestones": [1000]},
]


@dataclass(frozen=True)
class OmniglotChoices(Settings):
    """Table 4's open choices: one meta-training per (variant, run, seed), shortened to a stated length."""

    section: ClassVar[str] = "sensitivity.omniglot"

    runs: list = setting(
        OMNIGLOT_RUNS,
        "runs of every variant (as omniglot.runs; the same length for all, so C4's difference compares like with like)",
        type="array",
        items=RUN_SCHEMA,
        minItems=1,
    )
    seeds: list = setting([0], "seed indices of every variant (tasks and initial lam)", **SEEDS)
    settings: dict = setting(
        {}, "over the scale's omniglot.settings for every run of this part (the default variant)", **OVERRIDES
    )
    variants: list = setting(
        [
            {
                "name": "w0_fixed",
                "choice": "w_0",
                "reading": "w_0 fixed at c's value at the start of meta-training, independent of lam (B_0 = 0, c only "
                "the regulariser's centre)",
                "settings": {"w0": "fixed"},
            },
            {
                "name": "exp_gamma_rho",
                "choice": "gamma, rho",
                "reading": "gamma = exp(theta), rho_j = exp(theta_j), unbounded, from the default's initial values "
                "(gamma_max = 1000 >> gamma: gamma_max sigmoid(theta) is exp(theta') to 1e-4)",
                "settings": {"gamma_max": 1000.0, "rho_min": 0.0},
            },
            {
                "name": "exp_gamma_rho_from_0_1",
                "choice": "gamma, rho",
                "reading": "the same from gamma = 0.1, rho_j = 1 (the parametrisation before the stability bound)",
                "settings": {"gamma_max": 1000.0, "rho_min": 0.0, "init_gamma": 0.1},
            },
            {
                "name": "no_clipping",
                "choice": "clipping",
                "reading": "hypergradients not clipped (clip_norm null)",
                "settings": {"clip_norm": None},
            },
        ],
        "readings of Table 4's open choices other than the default, one entry each",
        type="array",
        items=VARIANT_SCHEMA,
    )


@dataclass(frozen=True)
class DataScaling(Settings):
    """Table 4 against the meta-training data: pools of growing size, one fixed held-out meta-test set."""

    section: ClassVar[str] = "sensitivity.data_scaling"

    runs: list = setting(
        [
            {"method": {"name": "krmd", "K": 1}, "iterations": 5000, "milestones": [5000]},
            {"method": {"name": "rmd"}, "iterations": 5000, "milestones": [5000]},
        ],
        "runs on every pool (as omniglot.runs; Table 4's 5,000 hyper-iterations)",
        type="array",
        items=RUN_SCHEMA,
        minItems=1,
    )
    seeds: list = setting([0, 1], "seed indices on every pool (tasks and initial lam)", **SEEDS)
    settings: dict = setting(
        {"eval_every": 5000},
        "over the scale's omniglot.settings for every run of this part (the split is always 'files': the pool "
        "meta-trains, the held-out alphabets meta-test); by default scored only at the start and the end",
        **OVERRIDES,
    )
    held_out: list = setting(
        ["evaluation/*"],
        "alphabets of the meta-test set, as <file>/<alphabet> with file background or evaluation (<file>/*: all "
        "of that file's); no pool may hold one of their drawings (checked image by image)",
        **ALPHABETS,
    )
    pool_alphabets: list = setting(
        ["background/*"],
        "alphabets the pools take their characters from, in this order, as <file>/<alphabet> (or <file>/*)",
        **ALPHABETS,
    )
    pools: list = setting(
        [241, 482, 964],
        "pool sizes in characters: pool N meta-trains on the first N characters of pool_alphabets (the paper "
        "scale: a quarter, half and all of the background file's 964; none: the part is not run)",
        type="array",
        items={"type": "integer", "minimum": 2},
        uniqueItems=True,
    )

    def check(self) -> None:
        if self.pools and not (self.held_out and self.pool_alphabets):
            raise ValueError("sensitivity.data_scaling: pools need held_out and pool_alphabets")
        shared = sorted(set(self.held_out) & set(self.pool_alphabets))
        if shared:
            raise ValueError(f"sensitivity.data_scaling: {shared} both held out and in the pools")


@dataclass(frozen=True)
class SensitivitySection(Settings):
    """The config's ``sensitivity`` section."""

    section: ClassVar[str] = "sensitivity"

    hypercleaning: dict = setting({}, "Table 2's open choices", nested=HypercleaningChoices)
    omniglot: dict = setting({}, "Table 4's open choices", nested=OmniglotChoices)
    data_scaling: dict = setting({}, "Table 4 against the meta-training characters", nested=DataScaling)


@dataclass(frozen=True)
class StudyRun:
    """One run of the study: ``part``, ``variant`` (``default``, a variant's name or ``pool<N>``), the
    run's file label (its method's, with -T<T> for another horizon), ``seed``, its complete settings and
    its method spec (hypercleaning) or run entry (Omniglot); ``pool``: its pool size (data scaling)."""

    part: str
    variant: str
    label: str
    seed: int
    settings: dict
    method: dict
    run: OmniglotRun | None = None
    pool: int | None = None

    @property
    def job(self) -> str:
        """Its path under results/<scale>/sensitivity/, without suffix: <part>/<variant>/<label>_seed<seed>."""
        return f"{self.part}/{self.variant}/{self.label}_seed{self.seed}"

    @property
    def benchmark(self) -> str:
        """Its Snakemake benchmark file's name under benchmarks/<scale>/sensitivity/, without suffix."""
        return self.job.replace("/", "_")


def run_named(runs: dict, part: str, wildcards) -> StudyRun:
    """The run of ``part`` among ``runs`` (by job) that a rule's wildcards name: its folder (``variant``,
    or the pool's ``size``), ``label`` and ``seed``."""
    folder = pool_name(int(wildcards.size)) if part == "data_scaling" else wildcards.variant
    return runs[f"{part}/{folder}/{wildcards.label}_seed{wildcards.seed}"]


def names(runs: dict, part: str, attribute: str) -> list[str]:
    """The distinct values of ``attribute`` (variant, label, pool) of the runs of ``part``, as strings."""
    return sorted({str(getattr(run, attribute)) for run in runs.values() if run.part == part})


def pool_name(size: int) -> str:
    return f"pool{size}"


def _variants(section: dict, where: str) -> list[tuple[str, dict]]:
    """(name, settings over the part's) of the default, then of each configured variant."""
    names = [variant["name"] for variant in section["variants"]]
    repeated = sorted({name for name in names if names.count(name) > 1} | ({DEFAULT} & set(names)))
    if repeated:
        raise ValueError(f"config {where}.variants: name(s) {repeated} repeated or reserved for the default")
    return [(DEFAULT, {})] + [(variant["name"], variant["settings"]) for variant in section["variants"]]


def _checked(settings_class, values: dict, where: str):
    try:
        return settings_class.from_dict(values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"config {where}: {error}") from None


def _omniglot_runs(part: str, section: dict, base: dict, variants) -> list[StudyRun]:
    """The runs of an Omniglot part: ``variants`` lists (name, settings over the part's, pool size or None)."""
    runs = []
    for variant, overrides, pool in variants:
        values = {**base, **section["settings"], **overrides}
        where = f"sensitivity.{part} ({variant})"
        settings = _checked(OmniglotSettings, values, where)
        labels = []
        for index, entry in enumerate(section["runs"]):
            try:
                run = OmniglotRun.from_dict(entry).checked(settings)
            except ValueError as error:
                raise ValueError(f"config sensitivity.{part}.runs[{index}] = {entry}: {error}") from None
            labels.append(run.name(settings))
            runs += [
                StudyRun(part, variant, labels[-1], seed, values, run.method, run, pool) for seed in section["seeds"]
            ]
        if len(set(labels)) < len(labels):
            raise ValueError(f"config sensitivity.{part}.runs: run names {labels} repeat (each names a result file)")
    return runs


def study_runs(config: dict) -> list[StudyRun]:
    """Every run of the study, from the whole (validated) config: its ``sensitivity`` section and the
    scale's hypercleaning and Omniglot settings. A bad variant, method or run is a ValueError naming its
    config key."""
    study = config["sensitivity"]
    runs = []
    part = study["hypercleaning"]
    for variant, overrides in _variants(part, "sensitivity.hypercleaning"):
        values = {**config["hypercleaning"]["settings"], **part["settings"], **overrides}
        settings = _checked(HypercleaningSettings, values, f"sensitivity.hypercleaning ({variant})")
        for index, spec in enumerate(part["methods"]):
            try:
                method = resolve(spec, settings.T)
            except ValueError as error:
                raise ValueError(f"config sensitivity.hypercleaning.methods[{index}] = {spec}: {error}") from None
            runs += [StudyRun("hypercleaning", variant, label(method), seed, values, method) for seed in part["seeds"]]
    base = config["omniglot"]["settings"]
    part = study["omniglot"]
    variants = [(name, overrides, None) for name, overrides in _variants(part, "sensitivity.omniglot")]
    runs += _omniglot_runs("omniglot", part, base, variants)
    part = study["data_scaling"]
    _checked(DataScaling, part, "sensitivity.data_scaling")
    pools = [(pool_name(size), {"split": "files"}, size) for size in part["pools"]]
    runs += _omniglot_runs("data_scaling", part, base, pools)
    labels = [run.job for run in runs]
    if len(set(labels)) < len(labels):
        raise ValueError("config sensitivity: two runs share a result file")
    return runs
