"""The experiments: each folder's ``descriptor.py`` declares, in one place, the experiment's commands, its
config section, the files its jobs make at a scale, the benchmark files the report reads, and its tables
and figures with their captions. ``DESCRIPTORS`` lists them, one line each; the command line
(``COMMANDS``), the config schema, the workflow (rules/common.smk's file lists, one rule per table and
figure in rules/outputs.smk, each experiment's rule file) and the report (its inputs and command line,
rules/report.smk; its run times) read them.

A descriptor is imported by this registry only, never by the experiment's commands, so describing an
experiment changes no command's code version; it imports nothing heavy (its settings class is named, and
its file lists import what they need when the workflow calls them), so that ``python -m truncback`` does
not pay for torch before it knows the command."""

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DESCRIPTORS = (
    "truncback.experiments.toy.descriptor",
    "truncback.experiments.hypercleaning.descriptor",
    "truncback.experiments.task_interaction.descriptor",
    "truncback.experiments.omniglot.descriptor",
    "truncback.experiments.complexity.descriptor",
    "truncback.experiments.aid_vs_itd.descriptor",
    "truncback.experiments.fom_ufom.descriptor",
    "truncback.experiments.sensitivity.descriptor",
)
"""The descriptor module of every experiment, in the order the workflow defines their files and rules (an
experiment reading another's files comes after it)."""

TABLE_SUFFIXES = ("csv", "html", "md", "tex")
FIGURE_SUFFIXES = ("pdf", "png")
ASKED_ORDER = {"csv": 0, "md": 1, "tex": 2, "html": 3}
"""The order of a table's files in rule all's inputs."""


@dataclass(frozen=True)
class Scale:
    """What an experiment's files depend on: the scale's validated config, the labels ``check_config``
    made of it, the scale's results and benchmark folders, and the files the experiments before it
    defined (``known``, by name)."""

    config: dict
    labels: dict
    results: str
    benchmarks: str
    known: Mapping = field(default_factory=dict)

    @property
    def scale(self) -> str:
        return self.config["scale"]

    def benchmark(self, experiment: str, job: str) -> str:
        """Snakemake's benchmark file of a job: benchmarks/<scale>/<experiment>/<job>.tsv."""
        return f"{self.benchmarks}/{experiment}/{job}.tsv"

    def prepared(self, name: str) -> str:
        """The prepared array file of dataset ``name`` at this scale."""
        from truncback.data.layout import prepared_path

        return str(prepared_path(self.scale, name))


def unique_labels(labels: list, where: str) -> list:
    """``labels``, refusing one that appears more than once (each names a result file)."""
    repeated = sorted({name for name in labels if labels.count(name) > 1})
    if repeated:
        raise ValueError(f"{where}: method label(s) {repeated} appear more than once (each names a result file)")
    return labels


def method_labels(specs, T: int, section: str, about_T: str = "") -> list:
    """The labels of a section's method specs, each resolved against T; a bad spec or a repeated
    label is named with its config key."""
    from truncback.hypergrad import methods

    labels = []
    for index, spec in enumerate(specs):
        try:
            labels.append(methods.label(methods.resolve(spec, T)))
        except ValueError as error:
            raise ValueError(f"config {section}.methods[{index}] = {spec}: {error}{about_T}") from None
    return unique_labels(labels, f"config {section}.methods")


def timings(results) -> list[str]:
    """The timing file beside each result file (wall seconds per hyper-iteration)."""
    from truncback.runtime.files import timing_path

    return [str(timing_path(path)) for path in results]


@dataclass(frozen=True)
class Output:
    """A table (csv, md, tex, html) or a figure (pdf, png) of an experiment: one local rule, named ``rule``,
    running ``python -m truncback <command> <arguments>`` (Snakemake's shell syntax: ``{input.results:q}``,
    ``{params.stem:q}``, the output's path without its suffix, ``{wildcards.<name>:q}``), its log under
    logs/<scale>/<experiment>/<log>.log. ``inputs(files)`` makes the rule's inputs (a list or a dict)
    from the experiment's files; with a ``wildcard`` in ``name``, ``inputs(files, value)`` of its value,
    one of ``values(files)``. ``params(files)``: further params; ``also``: further figure files
    <name>_<also>.pdf/.png, each with the param <also>_stem. ``caption``: its file under rules/captions/."""

    rule: str
    kind: str
    name: str
    command: str
    arguments: str
    inputs: Callable[..., Any]
    caption: str
    log: str
    wildcard: str = ""
    values: Callable[[Mapping], list] | None = None
    params: Callable[[Mapping], dict] = lambda files: {}
    also: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind not in ("table", "figure"):
            raise ValueError(f"{self.rule}: kind {self.kind!r} is neither 'table' nor 'figure'")
        if bool(self.wildcard) != (self.values is not None):
            raise ValueError(f"{self.rule}: a wildcard needs its values, and values a wildcard")

    @property
    def suffixes(self) -> tuple[str, ...]:
        return TABLE_SUFFIXES if self.kind == "table" else FIGURE_SUFFIXES

    def stems(self, files: Mapping) -> list[str]:
        """Its file names without suffix (every value of its wildcard; its ``also`` files)."""
        names = (
            [self.name.format(**{self.wildcard: value}) for value in self.values(files)] if self.values else [self.name]
        )
        return [f"{name}{part}" for name in names for part in ("", *(f"_{also}" for also in self.also))]


@dataclass(frozen=True)
class ReportInput:
    """Files of an experiment that the reproduction report (``python -m truncback reproduction-report``)
    reads: the report rule's input ``name`` (the inputs of one name, from several experiments, are joined
    in the registry's order), ``files(files)`` made from the experiment's files, passed to the report as
    ``option`` followed by the files (by their folder, the first file's, with ``folder``; not passed at
    all without an option: files the report reads beside others', such as the timing files beside the
    results). ``present``: only those that exist when the workflow is read (a study the report shows
    where it has run). An experiment the report has no section for passes its results as ``--results``:
    the report lists them by experiment."""

    name: str
    files: Callable[[Mapping], list]
    option: str = ""
    folder: bool = False
    present: bool = False


@dataclass(frozen=True)
class Experiment:
    """One experiment. ``name``: its folder (and its logs', results' and benchmarks' folders);
    ``title``: its category in Snakemake's report; ``commands``: command name -> module;
    ``computing``: those of its commands whose outputs torch computes (their rules carry torch's
    version); ``section``/``settings``/``description``: its config section, the settings dataclass
    (``module:Class``) that section's schema is made from, and the schema's description of it;
    ``rules``: its rule file (relative to the Snakefile, or absolute); ``files(scale)``: the names its
    rule files read (its runs, jobs, results by scale), made from the scale's config; ``benchmarks``: the
    name, among them, of the benchmark files the report's run times read (none: not in the report);
    ``outputs``: its tables and figures; ``report``: the files of it the reproduction report reads;
    ``in_all(files)``: whether rule all asks for them;
    ``labels(config)``: what the schema cannot check of its section (method specs against their T,
    unique labels), raising a ValueError naming the config key at fault, else its labels by key (the
    scale's ``labels`` of its files)."""

    name: str
    title: str
    commands: Mapping[str, str]
    rules: str
    files: Callable[[Scale], dict]
    computing: frozenset = frozenset()
    section: str = ""
    settings: str = ""
    description: str = ""
    benchmarks: str = ""
    outputs: tuple[Output, ...] = ()
    report: tuple[ReportInput, ...] = ()
    in_all: Callable[[Mapping], bool] = lambda files: True
    labels: Callable[[dict], dict] | None = None

    def settings_class(self):
        """The settings dataclass of its config section (imported now)."""
        module, _, name = self.settings.partition(":")
        return getattr(importlib.import_module(module), name)

    def final_outputs(self, files: Mapping, tables: str, figures: str) -> list[str]:
        """The files of its tables and figures that rule all asks for."""
        if not self.in_all(files):
            return []
        return [
            f"{tables if output.kind == 'table' else figures}/{stem}.{suffix}"
            for output in self.outputs
            for stem in output.stems(files)
            for suffix in sorted(output.suffixes, key=lambda suffix: ASKED_ORDER.get(suffix, 0))
        ]


@dataclass
class ReportFiles:
    """The report rule's input of one name: its option (none: an input only), whether the option takes the
    files' folder, and the files, from every experiment declaring it."""

    option: str
    folder: bool
    files: list = field(default_factory=list)


def report_inputs(experiments, files_by_name: Mapping) -> dict[str, ReportFiles]:
    """The reproduction report's inputs by name, from every experiment's ``report`` (of its files,
    ``files_by_name[experiment.name]``), in the registry's order; an input of one name that two experiments
    declare with different options is refused."""
    inputs: dict[str, ReportFiles] = {}
    for experiment in experiments:
        for entry in experiment.report:
            paths = [str(path) for path in entry.files(files_by_name[experiment.name])]
            if entry.present:
                paths = [path for path in paths if Path(path).is_file()]
            known = inputs.setdefault(entry.name, ReportFiles(entry.option, entry.folder))
            if (known.option, known.folder) != (entry.option, entry.folder):
                raise ValueError(
                    f"{experiment.name}: the report's input {entry.name!r} is passed as {entry.option!r} "
                    f"here and as {known.option!r} by an experiment before it"
                )
            known.files.extend(paths)
    return inputs


def report_options(inputs: Mapping[str, ReportFiles]) -> list[str]:
    """The report's command-line options passing its inputs (those with an option and files)."""
    options: list[str] = []
    for entry in inputs.values():
        if entry.option and entry.files:
            options += (
                [entry.option, str(Path(entry.files[0]).parent)] if entry.folder else [entry.option, *entry.files]
            )
    return options


def load(names=DESCRIPTORS) -> tuple[Experiment, ...]:
    """The ``EXPERIMENT`` of each descriptor module, refusing a command or section that two declare."""
    experiments = tuple(importlib.import_module(name).EXPERIMENT for name in names)
    for what in ("commands", "section", "name"):
        seen: dict[str, str] = {}
        for experiment in experiments:
            values = experiment.commands if what == "commands" else [getattr(experiment, what)]
            for value in values:
                if value and value in seen:
                    raise ValueError(
                        f"{what[:-1] if what == 'commands' else what} {value!r} is declared by both "
                        f"{seen[value]} and {experiment.name}"
                    )
                seen[value] = experiment.name
    return experiments


EXPERIMENTS = load()


def commands() -> dict[str, str]:
    """Every experiment's commands: command name -> module."""
    return {command: module for experiment in EXPERIMENTS for command, module in experiment.commands.items()}


def computing() -> set[str]:
    """The experiments' commands whose outputs torch computes."""
    return {command for experiment in EXPERIMENTS for command in experiment.computing}
