"""Every rule says what its jobs need: memory and run time (with units) for a cluster's scheduler, at
least what the rehearsal of the paper scale measured (its committed per-job estimates)."""

import re

import pandas as pd
import pytest

from workflow_copy import REPO, SNAKEMAKE, copy_workflow, snakemake

pytestmark = pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
ESTIMATES = "paper_tables/rehearsal/full_run_estimates"


def test_every_job_declares_memory_and_time_at_least_what_the_rehearsal_measured(tmp_path):
    """The committed rehearsal estimates (paper_tables/rehearsal) hold each job's peak memory and its
    estimated full-scale time; every job of the paper-scale DAG declares at least those."""
    measured = pd.read_csv(REPO / f"{ESTIMATES}_jobs.csv").set_index("benchmark")
    out = snakemake(copy_workflow(tmp_path), "-n", "--forceall", "--config", "scale=rehearsal").stdout
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(.*?)(?=^\S)", out, flags=re.MULTILINE | re.DOTALL)
    # the paper-scale DAG: every experiment's jobs (task interaction's as the config batches them)
    assert {"hypercleaning_run", "task_interaction_run", "omniglot_run", "complexity_measure"} <= {r for r, _ in jobs}
    compared = 0
    for rule, body in jobs:
        if rule == "all":
            continue
        resources = dict(re.findall(r"(\w+)=([^,\s]+)", re.search(r"resources: (.*)", body).group(1)))
        assert "mem_mb" in resources and "runtime" in resources, (rule, resources)
        benchmark = re.search(r"benchmark: benchmarks/rehearsal/(\S+)", body)
        if benchmark and benchmark.group(1) in measured.index:
            row = measured.loc[benchmark.group(1)]
            assert int(resources["mem_mb"]) >= row["max RSS MB"], (rule, benchmark.group(1), resources)
            if not pd.isna(row["estimate s"]):
                assert int(resources["runtime"]) * 60 >= row["estimate s"], (rule, benchmark.group(1), resources)
            compared += 1
    assert compared == len(measured)  # every job the rehearsal measured is a job of this DAG
