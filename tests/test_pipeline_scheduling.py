"""The pinned Snakemake runs no more jobs at once than --cores allows. Snakemake 9.10 to 9.14 started
every job waiting on a shared prerequisite at once (snakemake/snakemake#3913), e.g. five
hypercleaning runs after the data preparation on 2 cores, which slows each one and spoils the
measured seconds per iteration. Each job counts the jobs running beside it by marker files, not by
the clock: a loaded machine can only make the count smaller, never make the test fail."""

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
    shell: "mkdir -p running; touch running/{wildcards.n}; ls running | wc -l >> counts; sleep 1; rm running/{wildcards.n}; touch {output}"
"""


def test_jobs_behind_a_shared_prerequisite_respect_the_cores(tmp_path):
    if SNAKEMAKE is None:
        pytest.skip("snakemake is not installed")
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    snakemake(tmp_path, "--cores", "2", "--quiet")
    counts = [int(line) for line in (tmp_path / "counts").read_text().split()]
    assert len(counts) == 5 and max(counts) <= 2, counts
