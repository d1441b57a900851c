"""A torch upgrade reruns the jobs that compute with torch and nothing else of its own accord: their rules
carry torch's version as a param (COMPUTING in rules/common.smk), so Snakemake's params
trigger marks exactly them; the tables, figures and report follow because their inputs are remade, and
no data job reruns."""

import json
import os
import re

import pytest
import torch

from workflow_copy import SNAKEMAKE, copy_workflow, snakemake

pytestmark = pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")

SMOKE = ("--cores", "1", "--config", "scale=smoke")
# the smoke DAG's rules whose command computes with torch: runs, features, benchmarks
COMPUTING_RULES = {
    "toy_reference",
    "toy_trajectories",
    "hypercleaning_run",
    "task_interaction_features",
    "task_interaction_run",
    "omniglot_run",
    "omniglot_depth",
    "aid_vs_itd_run",
    "fom_ufom_run",
    "complexity_measure",
    "complexity_baselines",
}


def summary(workdir) -> dict:
    """{output file: (its rule, its status, its plan)} from `snakemake --summary`: the status of an
    existing output is "params changed" where its job's params differ from those recorded when it ran
    (whatever happens upstream), the plan "update pending" where the job would run."""
    lines = snakemake(workdir, *SMOKE, "--summary").stdout.splitlines()
    header = next(index for index, line in enumerate(lines) if line.startswith("output_file"))
    rows = [line.split("\t") for line in lines[header + 1 :] if line.strip()]
    return {row[0]: (row[2], row[4], row[5]) for row in rows}


def files_of_every_job(workdir) -> list[str]:
    """The outputs and benchmark files of every job of the DAG, from `snakemake -n` in an empty copy."""
    planned = snakemake(workdir, *SMOKE, "-n").stdout
    return [
        name
        for line in re.findall(r"^    (?:output|benchmark): (.*)$", planned, re.MULTILINE)
        for name in line.split(", ")
    ]


def recorded_before_an_upgrade(workdir, old: str) -> int:
    """Rewrites Snakemake's metadata of the jobs as if they had run with torch ``old`` (a record keeps
    each param as its repr). The number of records rewritten."""
    rewritten = 0
    for path in (workdir / ".snakemake" / "metadata").iterdir():
        record = json.loads(path.read_text())
        params = [repr(old) if value == repr(str(torch.__version__)) else value for value in record["params"]]
        if params != record["params"]:
            path.write_text(json.dumps({**record, "params": params}))
            rewritten += 1
    return rewritten


def test_a_torch_upgrade_marks_exactly_the_computing_jobs_for_rerun(tmp_path):
    workdir = copy_workflow(tmp_path)
    files = files_of_every_job(workdir)
    # every job "ran" with this torch (--touch runs none, but records each job's params) and its outputs and
    # benchmark files exist, all as old as one another (no input newer than an output)
    snakemake(workdir, *SMOKE, "--touch")
    for name in files:
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        os.utime(path, (1e9, 1e9))
    assert recorded_before_an_upgrade(workdir, "2.0.0") > 0
    after = summary(workdir)
    assert {rule for rule, status, _ in after.values() if status == "params changed"} == COMPUTING_RULES
    assert all(status == "params changed" for rule, status, _ in after.values() if rule in COMPUTING_RULES)
    assert all(status == "ok" for rule, status, _ in after.values() if rule not in COMPUTING_RULES)
    pending = {rule for rule, _, plan in after.values() if plan == "update pending"}
    assert pending > COMPUTING_RULES | {"hypercleaning_table", "omniglot_figure", "reproduction_report"}
    assert not {rule for rule in pending if rule.startswith("data_")}


@pytest.mark.parametrize(
    "rule_file, old, new, named",
    [
        (  # a computing rule without the param
            "rules/hypercleaning.smk",
            "        torch=TORCH,\n",
            "",
            "hypercleaning_run runs `python -m truncback hypercleaning`, which computes with torch, without the "
            "param torch=TORCH",
        ),
        (  # the table and figure rules with it (the first of them named)
            "rules/outputs.smk",
            "            code=code(entry.command),\n",
            "            code=code(entry.command),\n            torch=TORCH,\n",
            "toy_figure runs `python -m truncback figure-toy`, which does not compute with torch",
        ),
    ],
)
def test_a_rule_with_the_torch_param_where_it_does_not_belong_or_without_it_where_it_does_is_named(
    tmp_path, rule_file, old, new, named
):
    workdir = copy_workflow(tmp_path)
    text = (workdir / rule_file).read_text()
    assert text.count(old) == 1
    (workdir / rule_file).write_text(text.replace(old, new))
    result = snakemake(workdir, *SMOKE, "-n", expect_success=False)
    assert named in result.stdout + result.stderr
