"""Methods as data: a method is a spec ``{"name": "krmd", "K": 5}``; ``METHODS`` declares, for each
name, the function that computes it, the options it takes (name, type, range, default) and what is
known of it: whether it is exact, its time and memory orders (Table 1), whether it draws random
numbers, how the benchmark measures it and what the guide (docs/choosing.md) says of it.
:func:`hypergradient` is the one place a spec becomes a call.

Experiments, the command line, the config schema, the benchmark, Table 1 and the guide read
``METHODS`` (through :func:`resolve`, :func:`label`, :func:`display_name` and :func:`json_schema`)
instead of keeping their own list of methods; a new method is one :func:`register` call (or one
entry of the tuple below).
"""

import inspect
import json
import math
import re
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Callable

from truncback.hypergrad.first_order import fom, ufom
from truncback.hypergrad.forward import fmd
from truncback.hypergrad.implicit import aid_cg, aid_fp
from truncback.hypergrad.reverse import checkpointed, krmd, rmd, unrolled

AT_MOST_T = "T"
"""An option's ``maximum`` that is the problem's number of lower-level steps (checked when T is known)."""


@dataclass(frozen=True)
class Option:
    """One option of a method: its type (int or float), its range and, when it is optional, its default."""

    name: str
    kind: type
    description: str
    minimum: float | None = None
    maximum: float | str | None = None
    exclusive_minimum: bool = False
    required: bool = True
    default: Any = None

    def check(self, method: str, value, T: int | None):
        where = f"method {method!r}: option {self.name}"
        if self.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{where} must be an int, got {value!r}")
        if self.kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{where} must be a finite number, got {value!r}")
            value = float(value)
        if self.minimum is not None and (value <= self.minimum if self.exclusive_minimum else value < self.minimum):
            relation = ">" if self.exclusive_minimum else ">="
            raise ValueError(f"{where} must be {relation} {self.minimum}, got {self.name}={value}")
        if self.maximum == AT_MOST_T:
            if T is not None and value > T:
                raise ValueError(f"{where}={value} is larger than the number of lower-level steps T={T}")
        elif self.maximum is not None and value > self.maximum:
            raise ValueError(f"{where} must be <= {self.maximum}, got {self.name}={value}")
        return value


EXACTNESS = ("exact", "truncated", "approximate", "random")
"""What a method computes: ``exact`` the exact d_lam f; ``truncated`` the exact one only at full depth
(its K equals T); ``approximate`` a biased estimate (exact at a fixed point at most); ``random`` an
estimate that is exact in expectation (it draws random numbers)."""


@dataclass(frozen=True)
class Cost:
    """Table 1's orders of one hypergradient, as the paper (or the paper that introduced the method)
    gives them: c is the cost of one lower-level step, M = |w|, N = |lambda|."""

    time: str
    memory: str
    memory_exponent: float
    """how peak memory is expected to grow with T (the slope Table 1 sets beside the measured one)"""
    source: str = "paper"


@dataclass(frozen=True)
class Bench:
    """What ``bench-methods`` needs to measure a method (truncback.experiments.complexity.benchmark)."""

    options: dict = field(default_factory=dict, compare=False)
    """values of its required options other than K at which it is measured (UFOM: q = 1, its worst case)"""
    max_T: int | None = None
    """cases with a larger T are skipped"""
    why_max_T: str = ""
    """why (the skipped cases' note)"""
    note: str = ""
    """written beside its measurements"""
    directions_option: str | None = None
    """its time is linear in the number of hyperparameters: a few directions are measured, in one
    batch whose size is this option, the others held fixed, and the time is scaled up"""


@dataclass(frozen=True)
class Method:
    """A hypergradient method: ``function(problem, hparams, **options, return_info=...)``, and what is
    known of it.

    cost (required, a keyword like the rest): its orders for Table 1. exactness: one of
    :data:`EXACTNESS`. random: whether it draws random numbers (it then takes ``generator``; the
    benchmark seeds torch before each case).
    bench: how the benchmark measures it. guide_exact, guide_needs: the guide's "Exact" and
    "Needs / costs" columns (docs/choosing.md)."""

    name: str
    function: Callable
    display: str
    options: tuple = ()
    _: KW_ONLY
    cost: Cost
    exactness: str = "approximate"
    random: bool = False
    bench: Bench = Bench()
    guide_exact: str = ""
    guide_needs: str = ""

    def option(self, name: str) -> Option:
        return next(option for option in self.options if option.name == name)


def register(method: Method) -> Method:
    """Adds ``method`` to ``METHODS`` (the config schema, the benchmark, Table 1 and the guide then
    list it); refuses a name already taken or incomplete metadata."""
    if not re.fullmatch(r"[a-z_]+", method.name):
        raise ValueError(f"method name {method.name!r}: lower-case letters and underscores only")
    if method.name in METHODS:
        raise ValueError(f"method {method.name!r} is already registered")
    if method.exactness not in EXACTNESS:
        raise ValueError(f"method {method.name!r}: exactness {method.exactness!r} is not one of {EXACTNESS}")
    if method.exactness == "truncated" and "K" not in [option.name for option in method.options]:
        raise ValueError(f"method {method.name!r} is truncated but takes no K")
    if method.exactness == "random" and not method.random:
        raise ValueError(f"method {method.name!r} is exact in expectation only, so it must be random=True")
    if not method.guide_exact or not method.guide_needs:
        raise ValueError(f"method {method.name!r} needs its guide_exact and guide_needs (docs/choosing.md)")
    METHODS[method.name] = method
    return method


_K_TRUNCATED = Option(
    "K", int, "reverse steps: back-propagation through the last K of T steps", minimum=0, maximum=AT_MOST_T
)
_K_SOLVER = Option("K", int, "linear-solver iterations", minimum=0)

METHODS: dict[str, Method] = {}
"""Every method by name, in the order Table 1's and the guide's own rows follow; :func:`register` adds one."""

_AT_A_FIXED_POINT = "at a fixed point only"
_K_STATES = "K states"
for _method in (
    Method(
        "rmd",
        rmd,
        "Full RMD",
        exactness="exact",
        cost=Cost("O(cT)", "O(MT)", 1.0),
        guide_exact="yes",
        guide_needs="memory grows with T",
    ),
    Method(
        "unrolled",
        unrolled,
        "Unrolled RMD",
        exactness="exact",
        cost=Cost("O(cT)", "O(MT)", 1.0),
        guide_exact="yes",
        guide_needs="memory grows with T, several states' worth per step (every step's graph); no step runs twice",
    ),
    Method(
        "krmd",
        krmd,
        "{K}-RMD",
        (_K_TRUNCATED,),
        exactness="truncated",
        cost=Cost("O(cK) beyond the forward O(cT)", "O(MK)", 0.0),
        guide_exact="no (bias shrinks exponentially in K on contracting dynamics)",
        guide_needs=_K_STATES,
    ),
    Method(
        "checkpointed",
        checkpointed,
        "Checkpointed RMD",
        (Option("every", int, "steps between checkpoints (default ceil(sqrt T))", minimum=1, required=False),),
        exactness="exact",
        cost=Cost("O(cT), twice the constant", "O(M sqrt T)", 0.5),
        guide_exact="yes",
        guide_needs="recomputes the forward pass between ~sqrt(T) checkpoints",
    ),
    Method(
        "fmd",
        fmd,
        "FMD",
        (
            Option(
                "chunk_size",
                int,
                "hyperparameter directions per vmapped batch (default: what fits 1 GiB)",
                minimum=1,
                required=False,
            ),
        ),
        exactness="exact",
        cost=Cost("O(cNT)", "O(MN)", 0.0),
        bench=Bench(directions_option="chunk_size"),
        guide_exact="yes",
        guide_needs="time grows with the number of hyperparameters (one forward pass per direction)",
    ),
    Method(
        "aid_fp",
        aid_fp,
        "AID-FP (K={K})",
        (_K_SOLVER,),
        cost=Cost("O(c(T + K))", "O(M)", 0.0, "Grazzi et al. 2020"),
        guide_exact=_AT_A_FIXED_POINT,
        guide_needs="a converged lower level; A contracting",
    ),
    Method(
        "aid_cg",
        aid_cg,
        "AID-CG (K={K})",
        (
            _K_SOLVER,
            Option("tol", float, "stop once ||residual|| <= tol ||rhs||", minimum=0.0, required=False, default=0.0),
        ),
        cost=Cost("O(c(T + K))", "O(M)", 0.0, "Grazzi et al. 2020"),
        guide_exact=_AT_A_FIXED_POINT,
        guide_needs="a converged lower level; I - A positive definite",
    ),
    Method(
        "fom",
        fom,
        "FOM",
        cost=Cost("O(cT)", "O(M)", 0.0, "Likhosherstov et al. 2021"),
        guide_exact="no (drops every A_t: biased where the step depends on w)",
        guide_needs="nothing",
    ),
    Method(
        "ufom",
        ufom,
        "UFOM (q={q})",
        (Option("q", float, "probability of the exact correction", minimum=0.0, exclusive_minimum=True, maximum=1.0),),
        exactness="random",
        random=True,
        cost=Cost("O(c(T + qT^2)) expected", "O(M)", 0.0, "Likhosherstov et al. 2021"),
        bench=Bench(
            options={"q": 1.0},
            max_T=100,
            why_max_T="the exact branch costs O(T^2) steps",
            note="worst case xi = 1 (exact branch); expected time = fom + q (this - fom)",
        ),
        guide_exact="in expectation",
        guide_needs="variance grows as q falls; expected time O(T + q T^2)",
    ),
):
    register(_method)


def _as_spec(spec) -> dict:
    if isinstance(spec, str):
        return {"name": spec}
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"a method spec is a dict with a 'name' (e.g. {{'name': 'krmd', 'K': 5}}), got {spec!r}")
    return dict(spec)


def resolve(spec, T: int | None = None) -> dict:
    """The spec checked against ``METHODS``: a known name, every required option, no unknown one, each
    of the right type and range (K <= T when T is given). Returns it with optional options that were
    left out omitted (their default applies). Raises a ValueError naming the spec and what is wrong."""
    spec = _as_spec(spec)
    name = spec.pop("name")
    if name not in METHODS:
        raise ValueError(f"method {name!r} is unknown; choose one of {sorted(METHODS)}")
    method = METHODS[name]
    known = [option.name for option in method.options]
    unknown = sorted(set(spec) - set(known))
    if unknown:
        raise ValueError(f"method {name!r} takes no option(s) {unknown}; its options: {known or 'none'}")
    missing = [option.name for option in method.options if option.required and option.name not in spec]
    if missing:
        raise ValueError(f"method {name!r} needs option(s) {missing}")
    checked = {
        option.name: option.check(name, spec[option.name], T) for option in method.options if option.name in spec
    }
    return {"name": name, **checked}


def _format(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def label(spec) -> str:
    """A short name for file names and table keys: ``krmd-K5``, ``aid_cg-K10``, ``ufom-q0.2``, ``rmd``."""
    spec = resolve(spec)
    options = [
        f"{option.name}{_format(spec[option.name])}" for option in METHODS[spec["name"]].options if option.name in spec
    ]
    return "-".join([spec["name"], *options])


def display_name(spec, T: int | None = None) -> str:
    """The name a table row or a legend shows: ``5-RMD``, ``Full RMD`` (also K-RMD with K = T),
    ``AID-CG (K=10)``, ``UFOM (q=0.2)``."""
    spec = resolve(spec)
    if is_exact(spec, T) and spec["name"] == "krmd":
        return "Full RMD"
    shown = {key: _format(value) for key, value in spec.items()}
    return METHODS[spec["name"]].display.format(**shown)


def is_exact(spec, T: int | None = None) -> bool:
    """Whether the spec computes the exact d_lam f (full RMD, checkpointed, FMD, K-RMD with K = T)."""
    spec = resolve(spec, T)
    exactness = METHODS[spec["name"]].exactness
    return exactness == "exact" or (exactness == "truncated" and T is not None and spec["K"] == T)


def parse_spec(text: str) -> dict:
    """A spec from the command line: JSON (``'{"name": "krmd", "K": 5}'``) or a label (``krmd-K5``)."""
    text = text.strip()
    if text.startswith("{"):
        try:
            return resolve(json.loads(text))
        except json.JSONDecodeError as error:
            raise ValueError(f"method spec {text!r} is not valid JSON: {error}") from None
    word = re.match(r"[a-z_]+", text)
    name = word.group(0) if word else text
    if name not in METHODS:
        raise ValueError(f"method {name!r} is unknown; choose one of {sorted(METHODS)}")
    spec, rest = {"name": name}, text[len(name) :]
    while rest:
        part = re.match(r"-([A-Za-z_]+?)([-+]?\d[\d.]*(?:e[-+]?\d+)?)(?=-|$)", rest)
        option = None if part is None else next((o for o in METHODS[name].options if o.name == part.group(1)), None)
        if part is None or option is None:
            raise ValueError(
                f"method label {text!r}: {rest!r} does not start with an option of {name!r} "
                f"({[o.name for o in METHODS[name].options]}) and its value"
            )
        try:
            spec[option.name] = option.kind(part.group(2))
        except ValueError:
            raise ValueError(f"method label {text!r}: {part.group(2)!r} is not a valid {option.name}") from None
        rest = rest[part.end() :]
    return resolve(spec)


def hypergradient(
    problem, hparams, spec="rmd", *, return_info: bool = False, alpha_norms: bool = True, generator=None, **options
):
    """The hypergradient of ``problem`` at ``hparams`` by the method ``spec`` (a dict such as
    ``{"name": "aid_cg", "K": 10}``, or a name with the options as keywords:
    ``hypergradient(p, lam, "krmd", K=5)``). ``generator`` seeds the random methods (UFOM).
    ``alpha_norms=False`` asks a method that records ||alpha_t|| in its info (a function with that
    keyword) not to: the info without the per-step norms, for a caller that reads none."""
    spec = resolve({**_as_spec(spec), **options}, getattr(problem, "T", None))
    method = METHODS[spec.pop("name")]
    if method.random:
        spec["generator"] = generator
    if not alpha_norms:
        spec.update(without_alpha_norms(method.function))
    return method.function(problem, hparams, **spec, return_info=return_info)


def without_alpha_norms(function) -> dict:
    """The keywords that ask the method ``function`` for its info without ||alpha_t||:
    ``{"alpha_norms": False}`` where it takes that keyword (the methods that record them), else none."""
    return {"alpha_norms": False} if "alpha_norms" in inspect.signature(function).parameters else {}


def json_schema() -> dict:
    """The JSON schema of a method spec, made from ``METHODS`` (config/schema.yaml embeds it): a known
    name, then, for that name, exactly its options with their types and ranges (K <= T is checked
    when the experiment's T is known, by :func:`resolve`)."""
    rules = []
    for method in METHODS.values():
        properties = {"name": {"const": method.name}}
        for option in method.options:
            entry = {"type": "integer" if option.kind is int else "number", "description": option.description}
            if option.minimum is not None:
                entry["exclusiveMinimum" if option.exclusive_minimum else "minimum"] = option.minimum
            if isinstance(option.maximum, (int, float)):
                entry["maximum"] = option.maximum
            properties[option.name] = entry
        rules.append(
            {
                "if": {"properties": {"name": {"const": method.name}}},
                "then": {
                    "additionalProperties": False,
                    "properties": properties,
                    "required": ["name", *[o.name for o in method.options if o.required]],
                },
            }
        )
    return {
        "description": "a hypergradient method: its name and options (truncback.hypergrad.METHODS)",
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"enum": sorted(METHODS)}},
        "allOf": rules,
    }
