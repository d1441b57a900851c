"""The whole DAG at smoke scale in a scratch copy of the workflow: every output exists and is non-empty,
and running again gives the same bytes: one job of every rule (but those that prepare data and
features, whose outputs feed many jobs) and every job downstream of those run again, and every raw
result, figure and table is compared (in tables, all but the cells of the wall-clock columns; the
runs' timing files are the one thing left out, with Table 1's raw measurements, which hold times; in
the reproduction report, the lines marked "(wall clock)"). Rerunning every job would double the
module's time to run the same rules with other wildcards. Code is an input: a change to the engine
reruns every hyper-optimisation and what depends on it, a change to one figure's module that figure
alone, a comment or docstring nothing; planning another scale reruns nothing of this one; a table job
refuses a result other code wrote, and every result a job reads that another command wrote records
that command's code version and, made to record other code, is refused by a job of every rule that
reads it; the HTML report builds without warnings. The rehearsal, shrunken
to the smoke scale's settings and archive sizes, runs the same hyper-optimisation jobs and estimates
their time from a few hyper-iterations each: each estimate counts the smoke run's hyper-iterations
and follows the documented formula (how close it comes to the smoke run's seconds is printed, not
asserted: it depends on the machine's load), and the reproduction report built on them says it is
a rehearsal."""

import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from truncback.rehearsal.estimates import benchmark_of, read_benchmark
from truncback.reproduction.evidence import load_evidence, load_reference
from truncback.reproduction.report import WALL_CLOCK, report_text
from truncback.io.tables import is_wall_clock
from result_stamps import (
    UNSTAMPED_PRODUCERS,
    command_results,
    planned,
    recorded,
    restamp,
    stamp_of,
    without_redirection,
)
from workflow_copy import REPO, SNAKEMAKE, copy_package, copy_workflow, fake_data_dir, planned_jobs, snakemake

pytestmark = [pytest.mark.slow, pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")]
COMPARED = ("figures/smoke", "paper_tables/smoke", "results/smoke")
ESTIMATES = "paper_tables/rehearsal/full_run_estimates"
RUN_RESULTS = {"hypercleaning": "*_seed*.json", "task_interaction": "*/trial*.json", "omniglot": "*.json"}
TOY_FIGURES = ("fig1_toy_bound", "fig2_toy_descent_ratio", "fig3_toy_biased_convergence", "fig4_toy_convergence")


def split_row(line: str, suffix: str) -> list[str]:
    if suffix == ".csv":
        return next(csv.reader(io.StringIO(line)))
    if suffix == ".md":
        return [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else []
    if suffix == ".html":
        return re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", line)
    return [cell.strip() for cell in line.rstrip("\\ ").split(" & ")] if line.endswith("\\") else []


def table_lines(path) -> list[str]:
    """The lines of a table file, an HTML table's rows joined onto one line each."""
    text = path.read_text()
    if path.suffix == ".html":
        text = re.sub(r"\s*\n\s*(?=<t[hd]|</tr>)", "", text)
    return text.splitlines()


def without_wall_clock(path) -> bytes:
    """A table's bytes with the cells of its wall-clock columns blanked (every other byte kept):
    those cells are measured times, which no two runs share. In the reproduction report, the lines
    marked "(wall clock)" are left out."""
    lines = table_lines(path)
    if path.stem == "reproduction_report":
        return "\n".join(line for line in lines if WALL_CLOCK not in line).encode()
    header = next(
        (split_row(line, path.suffix) for line in lines if any(map(is_wall_clock, split_row(line, path.suffix)))), None
    )
    if header is None:
        return path.read_bytes()
    masked = [i for i, name in enumerate(header) if is_wall_clock(name)]
    kept = []
    for line in lines:
        cells = split_row(line, path.suffix)
        kept.append(repr([c for i, c in enumerate(cells) if i not in masked]) if len(cells) == len(header) else line)
    return "\n".join(kept).encode()


def digests(workdir):
    return {
        str(path.relative_to(workdir)): hashlib.sha256(
            without_wall_clock(path) if path.suffix in (".csv", ".md", ".tex", ".html") else path.read_bytes()
        ).hexdigest()
        for folder in COMPARED
        for path in sorted((workdir / folder).rglob("*"))
        if path.is_file()
        and not path.name.endswith(".timing.json")
        and "complexity" not in path.parts
        and not path.stem.endswith("_time")
    }


def planned_outputs(workdir) -> dict:
    """Every output file of the DAG and the rule that makes it, from `snakemake --summary`."""
    lines = snakemake(workdir, "--cores", "1", "--config", "scale=smoke", "--summary").stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("output_file"))
    return dict(line.split("\t")[:3:2] for line in lines[header + 1 :] if line.strip())


def one_output_per_rule(outputs: dict) -> list[str]:
    """The first output (in path order) of every rule but those that prepare data and features."""
    first = {}
    for path, rule in sorted(outputs.items()):
        if not rule.startswith(("data_", "task_interaction_features")):
            first.setdefault(rule, path)
    return sorted(first.values())


def run_results(results: Path, experiment: str) -> list[Path]:
    """The result files of ``experiment``'s hyper-optimisation jobs under ``results`` (results/<scale>)."""
    return [
        path
        for path in sorted((results / experiment).glob(RUN_RESULTS[experiment]))
        if not path.name.endswith(".timing.json") and path.name != "depth.json"
    ]


def rehearsal_result_paths() -> dict:
    """The raw results the targeted rehearsal made (relative to the workflow copy), as ``load_evidence`` takes them."""
    results = Path("results/rehearsal")
    return {
        "toy_dir": results / "toy",
        **{experiment: list(map(str, run_results(results, experiment))) for experiment in RUN_RESULTS},
        "depth": results / "omniglot" / "depth.json",
        "complexity": results / "complexity" / "measurements.csv",
    }


def machine_load_ratio(workdir) -> float:
    """How much slower the rehearsal's jobs ran than the smoke run's for the machine's load alone: the
    two runs share the machine with other test files (make test's workers), not equally. The toy's
    jobs do the same work in both (their results are the same bytes), so the ratio of their seconds
    (Snakemake's benchmark files) measures it."""

    def seconds(scale):
        return sum(
            read_benchmark(path)["seconds"] for path in sorted((workdir / "benchmarks" / scale / "toy").glob("*.tsv"))
        )

    for path in sorted((workdir / "results/smoke/toy").iterdir()):
        assert path.read_bytes() == (workdir / "results/rehearsal/toy" / path.name).read_bytes(), path.name
    return seconds("rehearsal") / seconds("smoke")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """A workflow copy in which the smoke DAG has run once."""
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"))
    snakemake(workdir, "--cores", "2", "--config", "scale=smoke")
    return workdir


def test_smoke_dag_outputs_exist_and_repeat_byte_for_byte(smoke_run):
    workdir = smoke_run
    outputs = planned_outputs(workdir)
    for name in TOY_FIGURES:
        assert f"figures/smoke/{name}.pdf" in outputs and f"figures/smoke/{name}.png" in outputs
    empty_or_missing = [
        path for path in outputs if not (workdir / path).is_file() or (workdir / path).stat().st_size == 0
    ]
    assert not empty_or_missing
    first = digests(workdir)
    rerun = one_output_per_rule(outputs)
    rerun_rules = {outputs[path] for path in rerun}
    assert rerun_rules >= {
        "toy_reference",
        "hypercleaning_run",
        "task_interaction_run",
        "omniglot_run",
        "aid_vs_itd_run",
        "fom_ufom_run",
        "reproduction_report",
    }
    for path in rerun:
        (workdir / path).unlink()
    log = snakemake(workdir, "--cores", "2", "--config", "scale=smoke")
    assert all((workdir / path).is_file() for path in rerun)
    ran = re.findall(r"^(?:local)?rule (\w+):", log.stdout + log.stderr, flags=re.MULTILINE)
    assert set(ran) >= rerun_rules, "a rule whose output was deleted did not run again"
    second = digests(workdir)
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []


def test_the_report_gives_the_health_of_every_omniglot_run_the_companion_s_included(smoke_run):
    """Run health lists Table 4's Omniglot runs and, apart, the FOM/UFOM companion's (config's
    companion_runs), whose results no claim of the paper reads."""
    text = (smoke_run / "paper_tables" / "smoke" / "reproduction_report.md").read_text()
    section = text[text.index("## Run health") :]
    section = section[: section.index("\n## ", 1)]
    companion = section[section.index("**Omniglot, the FOM/UFOM companion's runs") :]
    assert "**Omniglot (Table 4)**" in section and "of 2 run(s) stable" in companion.splitlines()[0]
    names = [line.split("|")[1].strip() for line in companion.splitlines() if line.startswith("| ")][1:]
    assert [name.split()[0] for name in names] == ["FOM", "UFOM"]


def planned_rules(result) -> set:
    """The rules of the jobs `snakemake -n` would run (empty when it has nothing to do)."""
    return set(planned_jobs(result)) - {"all"}


def edit(package: Path, module: str, old: str, new: str) -> None:
    """Replaces ``old`` by ``new`` in a module of the private package copy (``old`` must be there)."""
    path = package / "truncback" / module
    text = path.read_text()
    assert old in text, (module, old)
    path.write_text(text.replace(old, new, 1))


HYPER_OPTIMISATIONS = {
    "toy_reference",
    "toy_trajectories",
    "hypercleaning_run",
    "task_interaction_run",
    "omniglot_run",
    "omniglot_depth",
    "aid_vs_itd_run",
    "fom_ufom_run",
    "complexity_measure",
    "complexity_baselines",
}
DOWNSTREAM = {
    "toy_figure",
    "hypercleaning_table",
    "hypercleaning_figure",
    "task_interaction_table",
    "task_interaction_figure",
    "omniglot_table",
    "omniglot_figure",
    "complexity_table",
    "complexity_baselines_table",
    "aid_vs_itd_table",
    "aid_vs_itd_figure",
    "fom_ufom_table",
    "fom_ufom_figure",
    "fom_ufom_omniglot_table",
    "reproduction_report",
}


def test_a_job_reruns_when_the_code_it_runs_changes_and_only_then(smoke_run):
    workdir = smoke_run
    package = copy_package(workdir)
    smoke = ("-n", "--config", "scale=smoke")
    # a comment, a docstring and the layout of a line change nothing that runs (nor does the copy itself)
    edit(package, "hypergrad/reverse.py", '"""', '"""A docstring that says more. ')
    edit(package, "hypergrad/reverse.py", "\nimport", "\n# a comment\nimport")
    assert planned_rules(snakemake(workdir, *smoke, package=package)) == set()
    # the engine: every hyper-optimisation and what depends on it, and no data job
    edit(package, "hypergrad/reverse.py", "\ndef ", "\nUNUSED = 1\n\n\ndef ")
    planned = planned_rules(snakemake(workdir, *smoke, package=package))
    assert planned == HYPER_OPTIMISATIONS | DOWNSTREAM
    # one figure's module: that figure's job alone
    package = copy_package(workdir)
    edit(package, "experiments/hypercleaning/figure.py", "\ndef ", "\nUNUSED = 1\n\n\ndef ")
    planned = snakemake(workdir, *smoke, package=package)
    assert planned_rules(planned) == {"hypercleaning_figure"}
    assert re.search(
        r"rule hypercleaning_figure:\n(    .*\n)*    reason: Params have changed since last execution", planned.stdout
    )


def test_planning_another_scale_reruns_nothing_of_this_one(smoke_run, tmp_path):
    workdir = smoke_run
    data_dir = fake_data_dir(tmp_path / "datasets", "quick")
    quick = snakemake(workdir, "-n", "--config", "scale=quick", f"data_dir={data_dir}")
    assert "hypercleaning_run" in planned_rules(quick)
    assert planned_rules(snakemake(workdir, "-n", "--config", "scale=smoke")) == set()


def test_the_html_report_builds_without_warnings(smoke_run):
    result = snakemake(smoke_run, "--config", "scale=smoke", "--report", "report.html")
    assert "WARNING" not in result.stdout + result.stderr and (smoke_run / "report.html").stat().st_size > 0


def test_the_shrunken_rehearsal_runs_the_same_jobs_and_estimates_their_time(smoke_run, monkeypatch):
    workdir = smoke_run
    # one task-interaction trial of the smoke run's two: 6 jobs fewer, and the same jobs as its trial 0
    (workdir / "shrunken.yaml").write_text(
        yaml.safe_dump({"rehearsal": {"archive_sizes": "smoke"}, "task_interaction": {"trials": 1}})
    )
    snakemake(
        workdir,
        "--cores",
        "2",
        "--configfile",
        "config/smoke.yaml",
        "shrunken.yaml",
        "--config",
        "scale=rehearsal",
        "--",
        f"{ESTIMATES}_jobs.csv",
    )
    jobs = pd.read_csv(workdir / f"{ESTIMATES}_jobs.csv")
    load = machine_load_ratio(workdir)
    results, benchmarks = workdir / "results/smoke", workdir / "benchmarks/smoke"
    for experiment in RUN_RESULTS:
        smoke = [
            path
            for path in run_results(results, experiment)
            if experiment != "task_interaction" or path.name.startswith("trial0_")
        ]
        names = [str(path.relative_to(results / experiment).with_suffix("")) for path in smoke]
        rows = jobs[(jobs["experiment"] == experiment) & jobs["iterations"].notna()]  # the hyper-optimisations
        assert sorted(rows["job"]) == sorted(names)
        for path, name in zip(smoke, names):
            row = rows[rows["job"] == name].iloc[0]
            ran = json.loads(path.read_text())["run"]["iterations_run"]
            # the smoke run's own length (task interaction's maximum, which early stopping may cut short)
            assert row["iterations"] == ran if experiment != "task_interaction" else row["iterations"] >= ran
            formula = (
                row["overhead s"]
                + (row["iterations"] - 1) * row["s/iteration"]
                + row["exact comparisons"] * row["s/exact"]
                + row["evaluated tasks"] * row["s/task"]
            )
            # the CSV holds 4 significant digits
            assert row["overhead s"] >= 0 and row["estimate s"] == pytest.approx(formula, rel=2e-3, abs=0.01), name
        measured = sum(read_benchmark(benchmark_of(path, results, benchmarks))["seconds"] for path in smoke)
        estimated = rows[rows["job"].isin(names)]["estimate s"].sum()
        # reported, not asserted: wall seconds depend on the machine's load (`pytest -s` shows it)
        print(
            f"{experiment}: estimated {estimated:.1f} s, the smoke run took {measured:.1f} s, ratio "
            f"{estimated / measured / load:.2f} after dividing out the load ratio {load:.2f}"
        )
    features = jobs[jobs["job"].str.startswith("features_")]
    assert sorted(features["job"]) == ["features_cifar10", "features_cifar100"]
    monkeypatch.chdir(workdir)
    evidence = load_evidence("rehearsal", **rehearsal_result_paths())
    assert not evidence.missing
    # the depth study names the run whose learnt lambda it read by that run's label (the report matches it)
    assert evidence.depth["learned_from"] in {result.label for result in evidence.omniglot}
    reference = load_reference(REPO / "config" / "paper_reference.yaml")
    report = report_text(reference, evidence, estimates=f"{ESTIMATES}.csv")
    assert "**Rehearsal.**" in report and f"Estimated from the rehearsal ({ESTIMATES}.csv" in report
    total = pd.read_csv(f"{ESTIMATES}.csv", dtype=str).iloc[-1]
    assert re.search(r"\| " + re.escape(total.iloc[0]) + r" +\| " + re.escape(total.iloc[1]) + r" +\|", report)
    assert not list((workdir / "results").glob("full*"))  # nothing written over the paper scale's outputs


def test_a_table_job_refuses_a_result_written_by_other_code(smoke_run):
    """Run with --rerun-triggers mtime, Snakemake does not rerun a hyper-optimisation whose code changed;
    the table job reading its result names the stale file and how to remake it instead of using it."""
    workdir = smoke_run
    package = copy_package(workdir)
    edit(package, "experiments/hypercleaning/run.py", "\ndef ", "\nUNUSED = 1\n\n\ndef ")
    result = snakemake(
        workdir,
        "--cores",
        "1",
        "--rerun-triggers",
        "mtime",
        "--forcerun",
        "hypercleaning_table",
        "--config",
        "scale=smoke",
        "--",
        "paper_tables/smoke/table2_hypercleaning.csv",
        package=package,
        expect_success=False,
    )
    log = (workdir / "logs/smoke/hypercleaning/table2.log").read_text()
    assert "Traceback" not in log and log.count("\n") == 1
    assert re.search(
        r"results/smoke/hypercleaning/\S+\.json is stale: it was written by other code "
        r"\(truncback\.experiments\.hypercleaning\.run or a module it imports has changed since\)",
        log,
    )
    assert "snakemake --cores all results/smoke/hypercleaning/" in log and result.returncode != 0


def test_every_result_a_job_reads_records_its_command_and_a_job_of_each_reading_rule_refuses_other_code(
    smoke_run, tmp_path
):
    """Every file a job reads that another job's command wrote (those of UNSTAMPED_PRODUCERS left out,
    tests/result_stamps.py says why) records that command's code version. Then, in a copy of the run,
    the outputs of each producing rule in turn are made to record other code, and one job of every rule
    that reads them, run by hand, fails naming one of them instead of reading it."""
    workdir = tmp_path / "copy"
    shutil.copytree(smoke_run, workdir, ignore=shutil.ignore_patterns(".snakemake"))
    jobs = planned(smoke_run, "smoke")
    reads = [read for read in command_results(jobs) if read[2] not in UNSTAMPED_PRODUCERS]
    assert [(path, producer) for _, path, producer in reads if recorded(workdir / path) != stamp_of(producer)] == []
    made_by = {path: job for job in jobs for path in job.outputs}
    readers: dict = {}  # producing rule: {reading rule: one of its jobs}
    for job, path, _ in reads:
        readers.setdefault(made_by[path].rule, {}).setdefault(job.rule, job)
    assert {"toy_figure", "reproduction_report"} <= set(readers["toy_reference"])
    assert {"complexity_table", "reproduction_report"} <= set(readers["complexity_measure"])
    for producing_rule, reading_jobs in sorted(readers.items()):
        stale = sorted({path for _, path, _ in reads if made_by[path].rule == producing_rule})
        kept = {path: (workdir / path).read_bytes() for path in stale}
        for path in stale:
            restamp(workdir / path, f"{stamp_of(made_by[path].command).partition('@')[0]}@{'0' * 16}")
        for reading_rule, job in sorted(reading_jobs.items()):
            command = [sys.executable, *without_redirection(job.shell)[1:]]
            result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
            named = [path for path in stale if f"{path} is stale: it was written by other code" in result.stderr]
            assert (
                result.returncode == 1 and named
            ), f"{reading_rule} did not refuse {producing_rule}'s outputs made by other code:\n{result.stderr}"
        for path, content in kept.items():
            (workdir / path).write_bytes(content)
