"""Settings of a run, built from a config section: an unknown key or a bad value is named."""

from dataclasses import fields
from typing import ClassVar


class Settings:
    """Base of an experiment's frozen settings dataclass; subclasses name their config ``section``
    and may override ``check`` to reject bad values with a ValueError naming them."""

    section: ClassVar[str]

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
