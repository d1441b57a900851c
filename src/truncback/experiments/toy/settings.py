"""Settings of the toy experiments (the config's ``toy`` section). T and gamma are the paper's; the
rest are our choices (docs/assumptions.md)."""

from dataclasses import dataclass
from typing import ClassVar

from truncback.runtime.settings import Settings, setting

PAIR = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}


@dataclass(frozen=True)
class ToySettings(Settings):
    """The run settings of the toy experiments."""

    section: ClassVar[str] = "toy"

    T: int = setting(100, "lower-level gradient-descent steps", type="integer", minimum=1)
    gamma: float = setting(
        0.1, "lower-level learning rate (at most 1/beta = 1)", type="number", exclusiveMinimum=0, maximum=1
    )
    bound_point: tuple = setting(
        (1.0, 1.0), "lam at which Fig. 1 compares the truncation error with the bound (10)", **PAIR
    )
    start: tuple = setting((-1.5, 1.5), "lam_1, the start of every hyper-optimisation path (Figs. 2-4)", **PAIR)
    hyper_iterations: int = setting(100, "hyper-gradient steps per path", type="integer", minimum=1)
    K_values: tuple = setting(
        (1, 2, 5, 10, 25, 100),
        "truncation depths K compared in Figs. 2-4 (a study of the "
        "depth itself, so depths rather than method specs); must include 1 (Fig. 2 follows "
        "the 1-RMD path)",
        type="array",
        items={"type": "integer", "minimum": 1},
        minItems=1,
        uniqueItems=True,
        contains={"const": 1},
    )
    first_step_norm: float = setting(
        0.6, "eta_0 makes the first hyper-step eta_1 h(lam_1) this long (footnote 4)", type="number", exclusiveMinimum=0
    )
    ratio_iterations: int = setting(
        60, "Fig. 2 evaluates the ratio at the first this many points of the 1-RMD path", type="integer", minimum=1
    )
    grid_extent: float = setting(
        3.0, "the landscape grid covers [-grid_extent, grid_extent]^2", type="number", exclusiveMinimum=0
    )
    grid_points: int = setting(301, "landscape grid points per axis", type="integer", minimum=3)
    optimum_starts: int = setting(
        21, "starts per axis of the multi-start search for the optimum of f~ (Fig. 3)", type="integer", minimum=1
    )
    optimum_iterations: int = setting(2000, "exact-gradient steps from each start", type="integer", minimum=1)
    optimum_rate: float = setting(0.02, "step size of that search", type="number", exclusiveMinimum=0)

    @classmethod
    def from_dict(cls, values: dict) -> "ToySettings":
        values = {name: tuple(value) if isinstance(value, list) else value for name, value in values.items()}
        return super().from_dict(values)

    def check(self) -> None:
        bad_K = [K for K in self.K_values if not 1 <= K <= self.T]
        if bad_K or 1 not in self.K_values:
            raise ValueError(f"K_values={list(self.K_values)} must include 1 and lie in [1, T={self.T}]")
        if not 1 <= self.ratio_iterations <= self.hyper_iterations + 1:
            raise ValueError(
                f"ratio_iterations={self.ratio_iterations} must lie in "
                f"[1, hyper_iterations + 1 = {self.hyper_iterations + 1}]"
            )
