"""Methods as data: a method is a spec ``{"name": "krmd", "K": 5}``; ``METHODS`` declares, for each
name, the function that computes it and the options it takes (name, type, range, default), and
:func:`hypergradient` is the one place a spec becomes a call.

Experiments, the command line, the config schema and the benchmark read ``METHODS`` (through
:func:`resolve`, :func:`label`, :func:`display_name` and :func:`json_schema`) instead of knowing which
method takes K or q.
"""

import json
import math
import re
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Method:
    """A hypergradient method: ``function(problem, hparams, **options, return_info=...)``.

    exact: "always" (the exact d_lam f), "at_full_depth" (exact when its K equals T) or "never".
    random: whether it draws random numbers (it then takes ``generator``)."""

    name: str
    function: Callable
    display: str
    options: tuple = ()
    exact: str = "never"
    random: bool = False

    def option(self, name: str) -> Option:
        return next(option for option in self.options if option.name == name)


_K_TRUNCATED = Option(
    "K", int, "reverse steps: back-propagation through the last K of T steps", minimum=0, maximum=AT_MOST_T
)
_K_SOLVER = Option("K", int, "linear-solver iterations", minimum=0)

METHODS = {
    method.name: method
    for method in (
        Method("rmd", rmd, "Full RMD", exact="always"),
        Method("unrolled", unrolled, "Unrolled RMD", exact="always"),
        Method("krmd", krmd, "{K}-RMD", (_K_TRUNCATED,), exact="at_full_depth"),
        Method(
            "checkpointed",
            checkpointed,
            "Checkpointed RMD",
            (Option("every", int, "steps between checkpoints (default ceil(sqrt T))", minimum=1, required=False),),
            exact="always",
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
            exact="always",
        ),
        Method("aid_fp", aid_fp, "AID-FP (K={K})", (_K_SOLVER,)),
        Method(
            "aid_cg",
            aid_cg,
            "AID-CG (K={K})",
            (
                _K_SOLVER,
                Option("tol", float, "stop once ||residual|| <= tol ||rhs||", minimum=0.0, required=False, default=0.0),
            ),
        ),
        Method("fom", fom, "FOM"),
        Method(
            "ufom",
            ufom,
            "UFOM (q={q})",
            (
                Option(
                    "q", float, "probability of the exact correction", minimum=0.0, exclusive_minimum=True, maximum=1.0
                ),
            ),
            random=True,
        ),
    )
}


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
    exact = METHODS[spec["name"]].exact
    return exact == "always" or (exact == "at_full_depth" and T is not None and spec["K"] == T)


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


def hypergradient(problem, hparams, spec="rmd", *, return_info: bool = False, generator=None, **options):
    """The hypergradient of ``problem`` at ``hparams`` by the method ``spec`` (a dict such as
    ``{"name": "aid_cg", "K": 10}``, or a name with the options as keywords:
    ``hypergradient(p, lam, "krmd", K=5)``). ``generator`` seeds the random methods (UFOM)."""
    spec = resolve({**_as_spec(spec), **options}, getattr(problem, "T", None))
    method = METHODS[spec.pop("name")]
    if method.random:
        spec["generator"] = generator
    return method.function(problem, hparams, **spec, return_info=return_info)


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
