"""Settings of a run, built from a config section: an unknown key or a bad value is named.

A setting's default, description and JSON-schema constraints live in one place, the field of its
settings dataclass (:func:`setting`); ``config/schema.yaml`` is generated from those dataclasses
(``python -m truncback config-schema``) and a test fails when the committed file is stale.
"""

import copy
import dataclasses
from dataclasses import fields
from typing import Any, ClassVar

NO_DEFAULT = dataclasses.MISSING
METHOD_LIST = {"type": "array", "items": {"$ref": "#/$defs/method"}, "minItems": 1}
"""The schema of a list of method specs (config/schema.yaml defines ``method`` from ``METHODS``)."""


def setting(default, description: str, **schema):
    """A dataclass field with its default, its description and its JSON-schema constraints (``type``,
    ``minimum``, ``enum``, ...). ``nested=SettingsClass`` makes it a section of that class's settings."""
    metadata = {"description": description, "schema": schema}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def compile_setting(what: str):
    """The ``compile`` setting of an experiment whose lower level runs ``what`` (``COMPILES`` of
    ``hypergrad.problem``: false, true, strict), strict by default: the paper scale on a CPU."""
    return setting(
        "strict",
        f"run {what} through torch.compile, float32 CPU matrix products by oneDNN (gradient_descent(..., "
        "compile=...)): less time per hyper-iteration at paper size on a CPU (docs/benchmarks.md), seconds to "
        "tens of seconds to compile once per run. strict: a part of the fast path that does not happen (this "
        "torch lacks the oneDNN operator, dynamo runs a compiled step eagerly, no C++ compiler) is an error; "
        "true: a warning, in the run's log and its timing file; false: the steps run eagerly (the reduced scales)",
        enum=[False, True, "strict"],
    )


class Settings:
    """Base of an experiment's frozen settings dataclass; subclasses name their config ``section``
    and may override ``check`` to reject bad values with a ValueError naming them."""

    section: ClassVar[str]
    # Declared (not set) so that the checker sees the subclasses' dataclass fields; @dataclass sets it.
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @classmethod
    def from_dict(cls, values: dict):
        known = sorted(f.name for f in fields(cls))
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown {cls.section} setting(s) {unknown}; known: {known}")
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Nothing to check beyond the keys."""

    @classmethod
    def defaults(cls) -> dict:
        """Every field's default (nested sections included), as plain JSON-able values."""
        return {name: entry.get("default") for name, entry in cls.json_schema()["properties"].items()}

    @classmethod
    def json_schema(cls) -> dict:
        """The JSON schema of this section: one property per field with its description, constraints
        and default; unknown keys are errors."""
        properties = {}
        for item in fields(cls):
            schema = dict(item.metadata.get("schema", {}))
            nested = schema.pop("nested", None)
            entry = {"description": item.metadata.get("description", "")}
            if nested is not None:
                entry.update(nested.json_schema())
                entry["default"] = {}
            else:
                entry.update(schema)
                default = item.default_factory() if item.default_factory is not NO_DEFAULT else item.default
                if default is not NO_DEFAULT:
                    entry["default"] = list(default) if isinstance(default, tuple) else default
            properties[item.name] = entry
        return {"type": "object", "additionalProperties": False, "properties": properties}
