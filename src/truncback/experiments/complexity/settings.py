"""Settings of Table 1's measurement (the config's ``complexity`` section): which benchmark problem, at
which size, which horizons T and which methods. The measurement is ``bench-methods`` and, against what
a user writes by hand, ``bench-baselines`` (the same code as ``make bench``)."""

from dataclasses import dataclass
from typing import ClassVar

from truncback.runtime.settings import METHOD_LIST, Settings, setting

PROBLEMS = ("hypercleaning", "convnet")


@dataclass(frozen=True)
class ComplexitySection(Settings):
    """Table 1: every method's time and peak memory at several T, with growth exponents fitted in T."""

    section: ClassVar[str] = "complexity"

    problem: str = setting(
        "hypercleaning",
        "benchmark problem: hypercleaning-sized (W in R^{10x785}, one "
        "hyperparameter per training example) or a small conv net",
        enum=list(PROBLEMS),
    )
    n_train: int = setting(
        5000,
        "training (and validation) examples of the hypercleaning-sized problem: the number of hyperparameters N",
        type="integer",
        minimum=1,
    )
    T_values: list = setting(
        [50, 100, 200, 400],
        "lower-level horizons T at which every method is measured (the growth exponents are fitted over them)",
        type="array",
        items={"type": "integer", "minimum": 2},
        minItems=2,
        uniqueItems=True,
    )
    methods: list = setting(
        [
            {"name": "rmd"},
            {"name": "checkpointed"},
            {"name": "fmd"},
            {"name": "krmd", "K": 1},
            {"name": "krmd", "K": 5},
            {"name": "krmd", "K": 25},
            {"name": "aid_fp", "K": 10},
            {"name": "aid_cg", "K": 10},
            {"name": "fom"},
            {"name": "ufom", "q": 1.0},
        ],
        "methods of Table 1, in row order (UFOM is timed in its worst case, q = 1; K at most the smallest T)",
        **METHOD_LIST,
    )
    baseline_repeats: int = setting(
        5,
        "alternating rounds (after a warm-up round) in which bench-baselines times "
        "our methods against hand-written autograd and the matmul floor on the same "
        "problem and horizons (the median is kept)",
        type="integer",
        minimum=1,
    )
    compile: bool = setting(
        True,
        "bench-baselines also times our methods on the compiled fast path "
        "(gradient_descent(..., compile=True)); the reduced scales turn it off",
        type="boolean",
    )
