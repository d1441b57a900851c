"""Settings of the AID-vs-ITD comparison (the config's ``aid_vs_itd`` section). Grazzi et al. (2020) fix
the comparison (t lower-level steps, k = t solver iterations, error against the implicit
hypergradient); the problem sizes, regularisation and seeds are our choices (docs/assumptions.md)."""

from dataclasses import dataclass
from typing import ClassVar

from truncback.hypergrad import METHODS, resolve
from truncback.runtime.settings import Settings, setting

PROBLEMS = ("ridge", "logistic", "hypercleaning")
"""ridge: synthetic ridge regression with one regulariser per feature (closed form);
logistic: multinomial logistic regression on MNIST images with one regulariser per input pixel;
hypercleaning: the main paper's data hypercleaning (sec. 4.2.1) with a weight decay that makes g
strongly convex."""

POSITIVE = {"type": "number", "exclusiveMinimum": 0}


@dataclass(frozen=True)
class AidVsItdSettings(Settings):
    """The sizes of the three problems and the iteration counts t compared."""

    section: ClassVar[str] = "aid_vs_itd"

    iterations: list = setting(
        [1, 5, 10, 25, 50, 100, 150, 200, 300, 400, 500, 600, 800],
        "lower-level steps t at which every method is evaluated (AID also takes k = t solver iterations)",
        type="array",
        items={"type": "integer", "minimum": 1},
        minItems=2,
        uniqueItems=True,
    )
    methods: list = setting(
        [{"name": "rmd"}, {"name": "krmd", "K": 10}, {"name": "aid_fp"}, {"name": "aid_cg"}],
        "method specs compared, curves in this order: rmd is ITD through all t steps, krmd "
        "keeps its K (capped at t), and aid_fp / aid_cg given without K take k = t solver "
        "iterations (as in Grazzi et al.)",
        type="array",
        minItems=1,
        items={"type": "object", "required": ["name"], "properties": {"name": {"enum": sorted(METHODS)}}},
    )
    tolerances: list = setting(
        [1e-2, 1e-4, 1e-6],
        "relative errors whose first iteration count the table gives",
        type="array",
        items=POSITIVE,
        minItems=1,
    )
    ridge_features: int = setting(100, "ridge: features d (and regularisers)", type="integer", minimum=1)
    ridge_train: int = setting(200, "ridge: training examples", type="integer", minimum=1)
    ridge_val: int = setting(200, "ridge: validation examples", type="integer", minimum=1)
    ridge_spectrum: float = setting(
        0.1, "ridge: the features' scales fall geometrically from 1 to this value", **POSITIVE
    )
    mnist_train: int = setting(
        1000, "logistic and hypercleaning: training images drawn from the dataset", type="integer", minimum=1
    )
    mnist_val: int = setting(1000, "logistic and hypercleaning: validation images", type="integer", minimum=1)
    ridge_regularization: float = setting(
        0.05,
        "ridge: exp(lam_j) at the point of comparison is this value times a seeded factor in [0.5, 2]",
        **POSITIVE,
    )
    logistic_regularization: float = setting(
        0.3,
        "logistic: exp(lam_j) at the point of comparison is this value times a seeded factor in [0.5, 2]",
        **POSITIVE,
    )
    weight_decay: float = setting(
        0.02,
        "hypercleaning: coefficient of ||W||^2 (the main paper's 0.001 makes g too ill-conditioned for t <= 1000)",
        **POSITIVE,
    )
    corrupted_fraction: float = setting(
        0.5, "hypercleaning: training labels changed to another class", type="number", minimum=0, maximum=1
    )
    seed: int = setting(0, "seed of the data draw and of the point lam", type="integer", minimum=0)
    reference_tolerance: float = setting(
        1e-12,
        "the reference solves the lower level to ||grad_w g|| and the "
        "implicit system to a relative residual below this",
        **POSITIVE,
    )

    def check(self) -> None:
        if sorted(self.iterations) != list(self.iterations):
            raise ValueError(f"aid_vs_itd iterations={self.iterations} must be increasing")
        for index, spec in enumerate(self.methods):
            try:
                spec_at(spec, self.iterations[-1])
            except ValueError as error:
                raise ValueError(f"aid_vs_itd methods[{index}] = {spec}: {error}") from None


SOLVER_ITERATIONS = ("aid_fp", "aid_cg")


def spec_at(spec: dict, t: int) -> dict:
    """The method spec evaluated after t lower-level steps: AID without K takes K = t solver iterations,
    K-RMD's K is capped at t (then it is ITD through all t steps)."""
    spec = dict(spec)
    if spec.get("name") in SOLVER_ITERATIONS and "K" not in spec:
        spec["K"] = t
    if spec.get("name") == "krmd" and isinstance(spec.get("K"), int):
        spec["K"] = min(spec["K"], t)
    return resolve(spec, t)
