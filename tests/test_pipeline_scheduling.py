"""The pinned Snakemake runs no more jobs at once than --cores allows. Snakemake 9.10 to 9.14 started
every job waiting on a shared prerequisite at once (snakemake/snakemake#3913), e.g. five
hypercleaning runs after the data preparation on 2 cores, which slows each one and spoils the
measured seconds per iteration."""

import pytest

from workflow_copy import SNAKEMAKE, snakemake

SNAKEFILE = """
rule all:
    input: expand("out{n}", n=range(5))

rule prepare:
    output: "common"
    shell: "touch {output}"

rule work:
    input: "common"
    output: "out{n}"
    shell: "echo start $(date +%s.%N) >> trace; sleep 1; echo end $(date +%s.%N) >> trace; touch {output}"
"""


def most_at_once(trace: str) -> int:
    events = sorted((float(time), 1 if kind == "start" else -1)
                    for kind, time in (line.split() for line in trace.splitlines()))
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def test_jobs_behind_a_shared_prerequisite_respect_the_cores(tmp_path):
    if SNAKEMAKE is None:
        pytest.skip("snakemake is not installed")
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    snakemake(tmp_path, "--cores", "2", "--quiet")
    assert most_at_once((tmp_path / "trace").read_text()) == 2
