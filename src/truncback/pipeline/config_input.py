"""What a user gives Snakemake, checked before any job, each mistake said in one line naming the key,
option or target at fault (rules/common.smk prints it and stops, without a traceback):

- methods on the command line as the labels results already use, ``--config
  hypercleaning_methods=krmd-K1,rmd``, replacing that experiment's ``methods`` specs
  (:func:`methods_from_labels`; the specs are then checked as a config file's are);
- a config value the schema refuses, as the key at fault and what is wrong (:func:`schema_problem`);
- a target no rule makes: the folder of the scale it belongs to, or the nearest targets that exist
  (:func:`target_hint`).
"""

import difflib
import re

from truncback.hypergrad import methods

LABEL_SECTIONS = ("hypercleaning", "task_interaction", "complexity")
"""The experiments whose ``methods`` is a list of method specs, each also given on the command line as
``<section>_methods=LABEL,LABEL,...``."""

SCALED_FOLDERS = re.compile(r"(?P<folder>figures|paper_tables)/(?:(?P<scale>[^/]+)/)?(?P<name>[^/]+)$")
"""An output under figures/ or paper_tables/: directly there at the paper scale, else under the scale's folder."""


class ConfigError(ValueError):
    """A mistake in the configuration or the targets; its message is one line naming what is at fault."""


def methods_from_labels(config: dict) -> dict:
    """Replaces each ``<section>_methods`` key of ``config`` (Snakemake's ``--config``: labels separated by
    commas, or a YAML list of them) by that section's ``methods`` specs, and returns {section: the option
    as given}, for messages about those specs. Raises ConfigError naming the option and the label at fault."""
    given = {}
    for section in LABEL_SECTIONS:
        key = f"{section}_methods"
        if key not in config:
            continue
        value = config.pop(key)
        labels = value.split(",") if isinstance(value, str) else value
        option = f"--config {key}={','.join(map(str, labels)) if isinstance(labels, list) else value}"
        if not isinstance(labels, list) or not all(isinstance(label, str) and label.strip() for label in labels):
            raise ConfigError(
                f"{option}: give one or more method labels separated by commas, e.g. {key}=krmd-K1,krmd-K5,rmd"
            )
        specs = []
        for label in labels:
            try:
                specs.append(methods.parse_spec(label))
            except ValueError as error:
                raise ConfigError(f"{option}: {error}") from None
        config.setdefault(section, {})["methods"] = specs
        given[section] = option
    return given


def given_as(message: str, given: dict) -> str:
    """``message`` about a section's method specs, prefixed with the command-line option that gave them
    (``given`` from :func:`methods_from_labels`)."""
    for section, option in given.items():
        if message.startswith(f"config {section}.methods"):
            return f"{option}: {message}"
    return message


def schema_problem(error) -> str:
    """One line for a ``jsonschema.ValidationError`` of the config: the key at fault as a dotted path with
    list indices (``hypercleaning.methods[0].K``) and what is wrong; for a method spec, how to give methods
    on the command line (``--config`` passes nested values as strings: ``'5' is not of type 'integer'``)."""
    parts = list(error.absolute_path)
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts).lstrip(".")
    problem = (
        f"config {path}: {' '.join(error.message.split())}" if path else f"config: {' '.join(error.message.split())}"
    )
    if len(parts) > 2 and parts[0] in LABEL_SECTIONS and parts[1] == "methods":
        problem += f" (on the command line give methods as labels: --config {parts[0]}_methods=krmd-K5,rmd)"
    return problem


def _scale_of(target: str, scales) -> str | None:
    """The scale whose folder ``target`` lies in (``full``: directly under figures/ or paper_tables/)."""
    match = SCALED_FOLDERS.match(target)
    if match is None:
        return None
    if match.group("scale") is None:
        return "full"
    return match.group("scale") if match.group("scale") in scales else None


def _in_scale(target: str, scale: str) -> str:
    """``target`` moved to ``scale``'s folder."""
    match = SCALED_FOLDERS.match(target)
    assert match is not None
    return "/".join(
        part for part in (match.group("folder"), None if scale == "full" else scale, match.group("name")) if part
    )


def target_hint(target: str, scale: str, scales, can_make, known) -> str:
    """The message for ``target``, which no rule makes at ``scale``: where it lies in another scale's folder,
    that scale, and the same output at this one where ``can_make`` it; else, and where that output does not
    exist either, up to three of the ``known`` targets (rules and files) nearest to it."""

    def near(name: str) -> str:
        nearest = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
        return f"the nearest: {', '.join(nearest)}" if nearest else "no target is near it"

    other = _scale_of(target, scales)
    if other is not None and other != scale:
        here = _in_scale(target, scale)
        instead = f", or ask for {here}" if can_make(here) else f" (at scale={scale}, {near(here)})"
        return (
            f"{target} lies in the folder of scale={other}, and this run is scale={scale}: the folder of a target "
            f"must match the scale; add --config scale={other} after the targets{instead}"
        )
    return (
        f"no rule makes {target} at scale={scale}; {near(target)} (`snakemake --list-target-rules` lists the rules, "
        "`snakemake -n` the files of rule all)"
    )
