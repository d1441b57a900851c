"""Result files record the code version of the command that wrote them and are checked on read: each
format's writer records it (the same bytes when written twice) and its reader refuses a file that
other code wrote, or (CSV, npz) that records none, naming the file and how to remake it; and every
file a job of the DAG reads that another job's command wrote is of one of those formats, but for the
producers tests/result_stamps.py lists with their reasons. That each job reads them through those
readers, on the smoke run's real files: test_pipeline_smoke.py."""

import re
from pathlib import Path

import numpy as np
import pytest

from result_stamps import FORMATS, UNSTAMPED_PRODUCERS, command_results, planned, recorded, restamp
from truncback.cli import COMMANDS
from truncback.runtime.code_version import StaleResultError, code_version, running_module
from truncback.runtime.determinism import write_npz
from truncback.runtime.files import load_npz, read_csv, read_json, write_csv, write_json
from workflow_copy import SNAKEMAKE, copy_workflow, snakemake

MODULE = COMMANDS["toy"]
WRITE = {
    ".json": lambda path: write_json(path, {"a": 1}),
    ".csv": lambda path: write_csv(path, ["a", "b"], [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]),
    ".npz": lambda path: write_npz(path, a=np.arange(3)),
}
READ = {
    ".json": read_json,
    ".csv": lambda path: read_csv(path).to_dict("records"),
    ".npz": lambda path: {key: array.tolist() for key, array in load_npz(path).items()},
}
WRITTEN = {".json": {"a": 1}, ".csv": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], ".npz": {"a": [0, 1, 2]}}


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_result_records_its_commands_code_version_and_is_refused_once_that_code_changed(tmp_path, suffix):
    path = tmp_path / f"result{suffix}"
    with running_module(MODULE):
        WRITE[suffix](path)
        first = path.read_bytes()
        WRITE[suffix](path)
    assert path.read_bytes() == first
    assert recorded(path) == f"{MODULE}@{code_version(MODULE)}"
    assert READ[suffix](path) == WRITTEN[suffix]
    restamp(path, f"{MODULE}@{'0' * 16}")
    with pytest.raises(
        StaleResultError, match=rf"^{re.escape(str(path))} is stale: it was written by other code"
    ) as error:
        READ[suffix](path)
    assert f"`snakemake --cores all {path}`" in str(error.value)
    restamp(path, f"truncback.gone@{'0' * 16}")
    with pytest.raises(StaleResultError, match=r"written by 'truncback.gone', which is no longer a module"):
        READ[suffix](path)


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_a_csv_or_npz_result_that_records_no_code_version_is_refused(tmp_path, suffix):
    path = tmp_path / f"result{suffix}"
    WRITE[suffix](path)  # outside a command: nothing to record
    assert recorded(path) == ""
    with pytest.raises(StaleResultError, match=rf"^{re.escape(str(path))} records no code version") as error:
        READ[suffix](path)
    assert f"`snakemake --cores all {path}`" in str(error.value)


def test_data_named_like_the_code_version_is_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match="the column 'code_version' is the code version's"):
        write_csv(tmp_path / "a.csv", ["code_version"], [{"code_version": 1}])
    with pytest.raises(ValueError, match="the array name 'code_version' is the code version's"):
        write_npz(tmp_path / "a.npz", code_version=np.arange(2))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
def test_every_file_a_command_reads_that_a_command_wrote_is_of_a_stamped_format_or_its_producer_is_exempt(tmp_path):
    """On the rehearsal's DAG of every rule that can be a target (those outside rule all too): a job of
    every rule, the rehearsal's estimates and their reading by the report included."""
    workdir = copy_workflow(tmp_path)
    rehearsal = ("--config", "scale=rehearsal")
    jobs = planned(workdir, "rehearsal", *snakemake(workdir, "--list-target-rules", *rehearsal).stdout.split())
    assert set(snakemake(workdir, "--list-rules", *rehearsal).stdout.split()) == {job.rule for job in jobs}
    reads = command_results(jobs)
    stamped = [(job.rule, path, producer) for job, path, producer in reads if producer not in UNSTAMPED_PRODUCERS]
    assert [read for read in stamped if Path(read[1]).suffix not in FORMATS] == []
    assert {Path(path).suffix for _, path, _ in stamped} == set(FORMATS)
    exempt = {producer for *_, producer in reads} & set(UNSTAMPED_PRODUCERS)
    assert exempt == set(UNSTAMPED_PRODUCERS) - {"data-fetch"}  # no download at the rehearsal
    readers = {rule for rule, *_ in stamped}
    assert {
        "reproduction_report",
        "toy_figure",
        "complexity_table",
        "omniglot_depth",
        "task_interaction_run",
    } <= readers
