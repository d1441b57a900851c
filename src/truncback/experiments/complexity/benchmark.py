"""Benchmark of every hypergradient method: time and peak memory against T and K (Table 1).

Two problems (truncback.hypergrad.synthetic): hypercleaning-sized (W in R^{10x785}, one weight per
training example, 5000 of them) and a small convolutional net whose initialisation and step size are
the hyperparameters. What a method needs to be measured (the values of its options, a largest T, a
note, directions measured for a method whose time grows with the hyperparameters) is its ``bench`` in
``METHODS``; there is no list of methods here. Each case
runs after a warm-up call at T = 2; its peak memory is measured by :mod:`truncback.runtime.measure` on one
call (allocator events on CPU, allocator peak on CUDA) and its time is the fastest of three others
(the least disturbed by whatever else the machine runs). ``states held x
state size`` is printed too: the part of that memory Table 1 speaks of.
"""

import argparse
import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from truncback.hypergrad import METHODS, BilevelProblem, label, resolve, without_alpha_norms
from truncback.hypergrad import trees
from truncback.hypergrad.synthetic import PROBLEMS
from truncback.runtime.files import write_csv
from truncback.runtime.measure import peak_memory_mib, states_mib, timed

FULL_GRID = {"T": (50, 100, 200, 400), "K": (1, 5, 25, None)}
QUICK_GRID = {"T": (8, 16), "K": (1, 4, None)}
FMD_DIRECTIONS = 8
"""Directions measured of a method whose time grows with the hyperparameters (its ``bench.directions_option``)."""
TIMING_REPEATS = 3
CSV_FIELDS = ("problem", "method", "T", "K", "seconds", "peak_mib", "states_held", "state_mib", "note")


@dataclass
class Case:
    problem: str
    method: str
    T: int
    K: int | None
    seconds: float = math.nan
    peak_mib: float = math.nan
    states_held: int = 0
    state_mib: float = math.nan
    note: str = ""
    options: dict | None = None
    n_train: int | None = None

    @property
    def label(self) -> str:
        """The method spec's label (K = None: K = T)."""
        return label({"name": self.method, **method_options(self.method, self.K, self.T, self.options)})


def takes_depth(method: str) -> bool:
    """Whether the method's declared options include the depth / iteration count K."""
    return any(option.name == "K" for option in METHODS[method].options)


def method_options(method: str, K: int | None, T: int, given: dict | None = None) -> dict:
    """The options of ``method`` as ``METHODS`` declares them: those ``given``, K (None: T) and the
    values its ``bench`` sets (UFOM's q, timed in its worst case whatever q a spec names)."""
    bench = METHODS[method].bench.options
    options = {key: value for key, value in (given or {}).items() if key != "K" and key not in bench}
    for option in METHODS[method].options:
        if not option.required:
            continue
        if option.name == "K":
            options["K"] = T if K is None else K
        elif option.name in bench:
            options[option.name] = bench[option.name]
        elif option.name not in options:
            raise ValueError(
                f"the benchmark has no value for option {option.name!r} of method {method!r}: "
                "give it in the method's Bench(options=...)"
            )
    return options


def run_case(case: Case) -> Case:
    """Runs one case in this process and fills in its measurements (after a warm-up call at T = 2,
    which takes torch.func's one-off start-up cost out of the timing). A method that refuses the
    problem (a ValueError, e.g. conjugate gradient meeting non-positive curvature on the conv net) is
    left unmeasured with the reason in its note."""
    bench = METHODS[case.method].bench
    if bench.max_T is not None and case.T > bench.max_T:
        case.note = f"skipped: {bench.why_max_T}; measured up to T={bench.max_T}"
        return case
    torch.manual_seed(0)
    try:
        _measure(dataclasses.replace(case, T=2, K=None if case.K is None else min(case.K, 2)))
        return _measure(case)
    except ValueError as error:
        return dataclasses.replace(
            case, seconds=math.nan, peak_mib=math.nan, states_held=0, state_mib=math.nan, note=f"refused: {error}"
        )


def _measure(case: Case) -> Case:
    sizes = {"n_train": case.n_train, "n_val": case.n_train} if case.n_train and case.problem == "hypercleaning" else {}
    problem, hparams = PROBLEMS[case.problem](case.T, **sizes)
    bench = METHODS[case.method].bench
    if bench.directions_option is not None:
        hparams_count = trees.numel(hparams)
        options = {bench.directions_option: FMD_DIRECTIONS}
        problem, restricted = _restrict_fmd(problem, hparams, FMD_DIRECTIONS)
        case.note = f"{FMD_DIRECTIONS} of {hparams_count} directions measured; time scaled by {hparams_count / FMD_DIRECTIONS:.0f}"
        hparams = restricted
    else:
        options = method_options(case.method, case.K, case.T, case.options)
        case.note = bench.note
    method = METHODS[case.method].function
    _, case.peak_mib = peak_memory_mib(method, problem, hparams, **options)
    # the info for the states held, without the alpha norms (a call without return_info computes none)
    lean = without_alpha_norms(method)
    timings = [timed(method, problem, hparams, return_info=True, **options, **lean) for _ in range(TIMING_REPEATS)]
    (_, info), _ = timings[0]
    case.seconds = min(seconds for _, seconds in timings)
    if bench.directions_option is not None:
        case.seconds *= hparams_count / FMD_DIRECTIONS
    case.states_held = info.states_held
    case.state_mib = states_mib(info.states_held, info.final_state)
    return case


def _restrict_fmd(problem, hparams, count):
    """FMD's cost is linear in the number of directions: measure ``count`` of them, the other
    hyperparameters held fixed, by making the first ``count`` coordinates the only free ones."""
    flat_leaves, spec = torch.utils._pytree.tree_flatten(hparams)
    flat = torch.cat([leaf.flatten() for leaf in flat_leaves])

    def expand(free):
        full = torch.cat([free, flat[count:]])
        parts = [
            p.reshape(leaf.shape) for p, leaf in zip(full.split([leaf.numel() for leaf in flat_leaves]), flat_leaves)
        ]
        return torch.utils._pytree.tree_unflatten(parts, spec)

    restricted = BilevelProblem(
        init=lambda lam: problem.init(expand(lam)),
        step=lambda w, lam, t: problem.step(w, expand(lam), t),
        outer=lambda w, lam: problem.outer(w, expand(lam)),
        T=problem.T,
    )
    return restricted, flat[:count].clone()


def cases(grid, problems, specs=None, n_train=None):
    """Every (problem, T, method) case: the given method ``specs``, or each method of ``METHODS``
    with every K of the grid (None: K = T) when it takes K."""
    for problem in problems:
        for T in grid["T"]:
            if specs is not None:
                for spec in specs:
                    options = {key: value for key, value in spec.items() if key != "name"}
                    yield Case(problem, spec["name"], T, options.pop("K", None), options=options, n_train=n_train)
                continue
            for method in sorted(METHODS, key=takes_depth):
                for K in grid["K"] if takes_depth(method) else (None,):
                    yield Case(problem, method, T, K, n_train=n_train)


def main(args) -> int:
    grid = dict(QUICK_GRID if args.quick else FULL_GRID)
    if args.T:
        grid["T"] = tuple(args.T)
    rows = []
    header = f"{'problem':<14}{'method':<14}{'T':>5}{'K':>5}{'seconds':>10}{'peak MiB':>10}{'states':>8}{'state MiB':>11}  note"
    print(header, flush=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    specs = [resolve(spec) for spec in json.loads(args.methods)] if args.methods else None
    for case in map(run_case, cases(grid, args.problems, specs, args.n_train)):
        rows.append(case)
        k = "T" if case.K is None and takes_depth(case.method) else (case.K or "")
        print(
            f"{case.problem:<14}{case.method:<14}{case.T:>5}{k!s:>5}{case.seconds:>10.3f}"
            f"{case.peak_mib:>10.2f}{case.states_held:>8}{case.state_mib:>11.2f}  {case.note}",
            flush=True,
        )
    output = Path(args.output)
    write_csv(
        output,
        [*CSV_FIELDS, "label"],
        ({**{key: getattr(row, key) for key in CSV_FIELDS}, "label": row.label} for row in rows),
    )
    print(f"wrote {output}", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench-methods",
        help="time and peak memory of every hypergradient method",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output", default="benchmarks/methods.csv", help="CSV file to write")
    parser.add_argument("--quick", action="store_true", help="tiny grid of T and K (seconds; for tests)")
    parser.add_argument("--problems", nargs="+", choices=sorted(PROBLEMS), default=sorted(PROBLEMS))
    parser.add_argument("--T", nargs="+", type=int, help="horizons to measure instead of the grid's")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    parser.add_argument(
        "--methods",
        help="JSON list of method specs to measure instead of every method and K "
        "of the grid (Table 1 of the pipeline)",
    )
    parser.add_argument(
        "--n-train",
        type=int,
        help="training (and validation) examples of the hypercleaning-sized "
        "problem, i.e. the number of hyperparameters (default 5000)",
    )
    parser.set_defaults(run=main)
