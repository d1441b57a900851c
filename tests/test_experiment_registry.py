"""A new experiment is one folder and one line of the registry (src/truncback/experiments/registry.py):
its descriptor's commands, config section, rules, table and benchmark files reach the command line, the
config schema, the workflow and the report, with nothing else edited."""

import os
import subprocess
import sys
import textwrap

import pytest

from truncback.cli import COMMANDS, build_parser
from truncback.experiments.registry import EXPERIMENTS, Experiment, ReportInput, commands, report_inputs, report_options
from truncback.tools.config_schema import config_schema
from truncback.tools.docs import CLAIMS
from workflow_copy import SNAKEMAKE, copy_package, copy_workflow, planned_jobs, snakemake

TINY = {
    "__init__.py": '"""A tiny experiment, defined by a test."""\n',
    "settings.py": """
        from dataclasses import dataclass
        from typing import ClassVar

        from truncback.runtime.settings import Settings, setting


        @dataclass(frozen=True)
        class TinySettings(Settings):
            section: ClassVar[str] = "tiny"

            size: int = setting(3, "how many numbers the tiny experiment writes", type="integer", minimum=1)
        """,
    "run.py": '''
        """The tiny experiment's command: `tiny run` writes its numbers, `tiny table` their table."""

        import json
        from pathlib import Path


        def main(args):
            if args.part == "run":
                Path(args.output).write_text(json.dumps(list(range(json.loads(args.settings)["size"]))))
            else:
                numbers = json.loads(Path(args.result).read_text())
                for suffix in ("csv", "md", "tex", "html"):
                    Path(f"{args.output}.{suffix}").write_text(" ".join(map(str, numbers)))


        def register(subparsers):
            parser = subparsers.add_parser("tiny", help="the tiny experiment of the registry's test")
            parser.add_argument("part", choices=["run", "table"])
            parser.add_argument("--settings", default='{"size": 3}')
            parser.add_argument("--result")
            parser.add_argument("--output", required=True)
            parser.set_defaults(run=main)
        ''',
    "descriptor.py": """
        from pathlib import Path

        from truncback.experiments.registry import Experiment, Output, ReportInput

        HERE = Path(__file__).parent


        def files(scale):
            return {
                "TINY": scale.config["tiny"],
                "TINY_RESULT": f"{scale.results}/tiny/numbers.json",
                "TINY_BENCHMARKS": [scale.benchmark("tiny", "run")],
            }


        EXPERIMENT = Experiment(
            name="tiny",
            title="Tiny experiment",
            commands={"tiny": "truncback.experiments.tiny.run"},
            section="tiny",
            settings="truncback.experiments.tiny.settings:TinySettings",
            description="the tiny experiment of the registry's test",
            rules=str(HERE / "rules.smk"),
            files=files,
            benchmarks="TINY_BENCHMARKS",
            report=(ReportInput("tiny", lambda files: [files["TINY_RESULT"]], "--results"),),
            outputs=(
                Output(
                    rule="tiny_table",
                    kind="table",
                    name="tiny_numbers",
                    command="tiny",
                    arguments="table --result {input:q} --output {params.stem:q}",
                    inputs=lambda files: [files["TINY_RESULT"]],
                    caption=str(HERE / "caption.rst"),
                    log="table",
                ),
            ),
        )
        """,
    "rules.smk": """
        rule tiny_run:
            output:
                TINY_RESULT,
            log:
                f"{LOGS}/tiny/run.log",
            benchmark:
                benchmark("tiny", "run")
            localrule: True
            resources:
                mem_mb=1000,
                runtime="10m",
            params:
                settings=json.dumps(TINY, sort_keys=True),
                code=code("tiny"),
            shell:
                "python -m truncback tiny run --settings {params.settings:q} --output {output:q} > {log:q} 2>&1"
        """,
    "caption.rst": "The tiny experiment's numbers.\n",
}
REGISTRY_LINE = '    "truncback.experiments.tiny.descriptor",\n'


def test_every_experiment_s_commands_and_section_come_from_its_descriptor():
    assert set(commands()) <= set(COMMANDS)
    sections = config_schema()["properties"]
    for experiment in EXPERIMENTS:
        assert experiment.section in sections and set(experiment.commands) <= set(COMMANDS)
        assert sections[experiment.section]["properties"] == experiment.settings_class().json_schema()["properties"]


def test_each_claim_of_the_docs_names_experiments_and_outputs_their_descriptors_declare():
    by_name = {experiment.name: experiment for experiment in EXPERIMENTS}
    for claim in CLAIMS:
        assert set(claim.experiments) <= set(by_name), claim
        made = {
            f"{stem}.{suffix}"
            for name in claim.experiments
            for output in by_name[name].outputs
            for stem in output.stems({})
            for suffix in output.suffixes
        }
        assert set(claim.targets) <= made, claim


def test_the_report_s_inputs_are_the_descriptors_and_their_options_the_report_command_s():
    parser = build_parser("reproduction-report")
    report = next(action for action in parser._actions if action.dest == "command").choices["reproduction-report"]
    options = {entry.option for experiment in EXPERIMENTS for entry in experiment.report if entry.option}
    assert options <= set(report._option_string_actions)
    assert "--results" in report._option_string_actions  # an experiment the report has no section for


def _reporting(name, *report):
    return Experiment(name=name, title=name, commands={}, rules="", files=lambda scale: {}, report=report)


def test_report_inputs_join_the_inputs_of_one_name_in_the_registry_s_order(tmp_path):
    present = tmp_path / "present.json"
    present.write_text("{}")
    experiments = (
        _reporting(
            "a", ReportInput("a", lambda files: files["RUNS"], "--a"), ReportInput("timings", lambda f: ["a.t"])
        ),
        _reporting(
            "b",
            ReportInput("timings", lambda files: ["b.t"]),
            ReportInput("toy", lambda f: ["t/x.json"], "--toy-dir", folder=True),
        ),
        _reporting(
            "c", ReportInput("c", lambda files: [str(present), str(tmp_path / "absent.json")], "--c", present=True)
        ),
    )
    inputs = report_inputs(experiments, {"a": {"RUNS": ["a1", "a2"]}, "b": {}, "c": {}})
    assert {name: entry.files for name, entry in inputs.items()} == {
        "a": ["a1", "a2"],
        "timings": ["a.t", "b.t"],
        "toy": ["t/x.json"],
        "c": [str(present)],
    }
    assert report_options(inputs) == ["--a", "a1", "a2", "--toy-dir", "t", "--c", str(present)]
    clash = (*experiments, _reporting("d", ReportInput("a", lambda files: [], "--other")))
    with pytest.raises(ValueError, match="'a'"):
        report_inputs(clash, {"a": {"RUNS": []}, "b": {}, "c": {}, "d": {}})


@pytest.mark.slow
@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
def test_a_tiny_experiment_is_one_folder_and_one_registry_line(tmp_path):
    workdir = copy_workflow(tmp_path)
    package = copy_package(tmp_path)
    folder = package / "truncback" / "experiments" / "tiny"
    folder.mkdir()
    for name, text in TINY.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip())
    registry = package / "truncback" / "experiments" / "registry.py"
    text = registry.read_text()
    last = '    "truncback.experiments.sensitivity.descriptor",\n'
    registry.write_text(text.replace(last, last + REGISTRY_LINE))
    env = {**os.environ, "PYTHONPATH": str(package)}

    def truncback(*args):
        result = subprocess.run(
            [sys.executable, "-m", "truncback", *args], cwd=workdir, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    assert "tiny" in truncback("--help")
    truncback("config-schema", "--output", "config/schema.yaml")  # generated: the tiny section's defaults
    assert "the tiny experiment of the registry's test" in (workdir / "config" / "schema.yaml").read_text()

    planned = snakemake(workdir, "-n", "-p", "--config", "scale=smoke", package=package)
    assert {"tiny_run", "tiny_table"} <= set(planned_jobs(planned))
    report_command = next(line for line in planned.stdout.splitlines() if "truncback reproduction-report" in line)
    assert "benchmarks/smoke/tiny/run.tsv" in report_command
    assert "--results results/smoke/tiny/numbers.json" in report_command

    snakemake(
        workdir, "--cores", "1", "paper_tables/smoke/tiny_numbers.csv", "--config", "scale=smoke", package=package
    )
    assert (workdir / "paper_tables" / "smoke" / "tiny_numbers.csv").read_text() == "0 1 2"
    truncback(
        "reproduction-report",
        "--scale",
        "smoke",
        "--reference",
        "config/paper_reference.yaml",
        "--results",
        "results/smoke/tiny/numbers.json",
        "--benchmarks",
        "benchmarks/smoke/tiny/run.tsv",
        "--output",
        "report.md",
    )
    report = (workdir / "report.md").read_text()
    assert "tiny: 1 job(s)" in report and "tiny: 1 result file(s)" in report
