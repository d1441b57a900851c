"""Settings of the FOM vs UFOM experiment (the config's ``fom_ufom`` section), after Likhosherstov et al.
2021. The task family, step sizes and sizes are our choices: two task types, flat (curvature 0.1, the
inner loop keeps most of lam) and steep (curvature 1.0, it forgets it: M_i = 0.9^20 ~ 0.12) whose
validation target lies 1 from its inner target, so that FOM's floor ||grad F(lam_FOM)|| is large."""

from dataclasses import dataclass
from typing import ClassVar

from truncback.runtime.settings import Settings, setting

STANDARD_ERRORS = 4
"""How far a mean over the draws may lie from its expectation, in standard errors of the mean: the test of
claims L2 (UFOM unbiased) and L3 (its expected cost), and the bands the figure draws around those means."""
POSITIVE_NUMBERS = {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 1}
PROBABILITIES = {
    "type": "array",
    "items": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    "minItems": 1,
    "uniqueItems": True,
}


@dataclass(frozen=True)
class FomUfomSettings(Settings):
    """The run settings of the FOM vs UFOM experiment."""

    section: ClassVar[str] = "fom_ufom"

    d: int = setting(4, "dimension of lam and of every task's weights", type="integer", minimum=1)
    curvatures: tuple = setting(
        (0.1, 1.0),
        "inner curvature of each task type (its Hessian's diagonal, the same "
        "in every coordinate); at least two, or FOM is unbiased up to a scale",
        **{**POSITIVE_NUMBERS, "minItems": 2},
    )
    validation_offsets: tuple = setting(
        (0.0, 1.0),
        "per task type, c'_i - c_i in every coordinate: how far the "
        "validation target lies from the inner one (one per curvature)",
        type="array",
        items={"type": "number"},
        minItems=2,
    )
    tasks_per_type: int = setting(4, "tasks of each type", type="integer", minimum=1)
    target_spread: float = setting(
        0.1, "standard deviation of the inner targets c_i ~ N(0, spread^2 I)", type="number", minimum=0
    )
    task_seed: int = setting(0, "seed of the inner targets (numpy)", type="integer", minimum=0)
    alpha: float = setting(
        0.1, "lower-level step size; alpha * curvature must lie in (0, 2)", type="number", exclusiveMinimum=0
    )
    T: int = setting(
        20, "lower-level gradient-descent steps of the paths and the estimator study", type="integer", minimum=1
    )
    seeds: int = setting(
        3, "SGD paths per method (seeded start, task sequence and UFOM coins)", type="integer", minimum=1
    )
    iterations: int = setting(
        400, "hyper-iterations of each SGD path (one task drawn per iteration)", type="integer", minimum=1
    )
    eta0: float = setting(
        0.3, "step size eta_tau = eta0 / sqrt(tau) of the SGD paths", type="number", exclusiveMinimum=0
    )
    start_scale: float = setting(
        1.0,
        "the SGD starts and the estimator study's lam are drawn from N(0, start_scale^2 I)",
        type="number",
        minimum=0,
    )
    tail_fraction: float = setting(
        0.25,
        "the table averages ||grad F|| over this last fraction of each path",
        type="number",
        exclusiveMinimum=0,
        maximum=1,
    )
    path_q: tuple = setting(
        (0.2,), "UFOM's probability q of the exact correction on the SGD paths (one path set per q)", **PROBABILITIES
    )
    estimator_q: tuple = setting(
        (0.05, 0.1, 0.2, 0.5, 1.0), "q values of the unbiasedness and time-variance study", **PROBABILITIES
    )
    draws: int = setting(
        200, "UFOM estimates per q in the unbiasedness and time-variance study", type="integer", minimum=2
    )
    estimator_type: int = setting(
        1, "the estimator study uses the first task of this type (index into curvatures)", type="integer", minimum=0
    )
    memory_T: tuple = setting(
        (10, 20, 40, 80),
        "T values of the memory and step-count study",
        type="array",
        items={"type": "integer", "minimum": 1},
        minItems=1,
        uniqueItems=True,
    )

    @classmethod
    def from_dict(cls, values: dict) -> "FomUfomSettings":
        values = {name: tuple(value) if isinstance(value, list) else value for name, value in values.items()}
        return super().from_dict(values)

    def check(self) -> None:
        if len(self.validation_offsets) != len(self.curvatures):
            raise ValueError(
                f"validation_offsets={list(self.validation_offsets)} must have one value per curvature "
                f"({len(self.curvatures)})"
            )
        rates = sorted(self.alpha * a for a in self.curvatures)
        if rates[0] <= 0 or rates[-1] >= 2:
            raise ValueError(f"alpha * curvature = {rates} must lie in (0, 2) (alpha={self.alpha})")
        if not 0 <= self.estimator_type < len(self.curvatures):
            raise ValueError(
                f"estimator_type={self.estimator_type} must index curvatures (0..{len(self.curvatures) - 1})"
            )
