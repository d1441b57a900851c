"""A checkpoint is resumed only by the code, the torch and the data that made it. A run killed right after a
checkpoint and rerun by other code (a private copy of the package with one module edited) or another
torch (its checkpoint records torch's version) or on other data starts from hyper-iteration 0, saying why in its log,
and sets the checkpoint aside; the same code resumes it (tests/test_experiment_runs.py)."""

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from experiment_data import kill_after_first_checkpoint, smoke_digits
from truncback.cli import main as cli
from truncback.runtime.checkpoint import checkpoint_path
from truncback.runtime.code_version import code_version
from truncback.runtime.determinism import write_npz
from workflow_copy import copy_package

MODULE = "truncback.experiments.hypercleaning.run"
EVERY = 4
SETTINGS = {
    "compile": False,
    "n_train": 200,
    "n_val": 100,
    "n_test": 200,
    "T": 10,
    "lr": 0.015,
    "hyper_lr": 0.3,
    "hyper_iterations": 10,
    "exact_every": 5,
    "checkpoint_every": EVERY,
}


@pytest.fixture
def stopped_run(tmp_path):
    """(the command line of a hypercleaning run, its output): the run was killed with SIGKILL right
    after its first checkpoint, made by this code and this torch."""
    data, output = tmp_path / "mnist.npz", tmp_path / "run.json"
    write_npz(data, **smoke_digits(tmp_path))
    arguments = ["hypercleaning", "--data", str(data), "--settings", json.dumps(SETTINGS), "--method", "krmd-K2"]
    arguments += ["--threads", "1", "--device", "cpu", "--output", str(output)]
    stopped = kill_after_first_checkpoint(arguments, checkpoint_path(output), every=EVERY)
    assert stopped.returncode == -signal.SIGKILL and not output.exists()
    return arguments, output


def written(output) -> dict:
    """The result file as written (read_json would refuse one that the edited copy of the code wrote)."""
    return json.loads(output.read_text())


def assert_started_afresh(output, log: str, maker: str, then: str, now: str) -> None:
    """The rerun writing ``output`` set its checkpoint aside, saying it was made by ``maker`` (``then``:
    its code and torch in words, ``now``: the rerun's), and ran every hyper-iteration itself."""
    checkpoint = checkpoint_path(output)
    assert (
        f"checkpoint {checkpoint} was made by {maker} ({then}; this run is {now}); moved to "
        f"{checkpoint}.stale, starting from hyper-iteration 0"
    ) in log
    assert "resuming after" not in log
    assert checkpoint.with_name(checkpoint.name + ".stale").is_file() and not checkpoint.exists()
    assert written(output)["run"]["iterations_run"] == SETTINGS["hyper_iterations"]


def test_a_run_rerun_by_other_code_starts_from_hyper_iteration_0_and_says_why(stopped_run, tmp_path):
    arguments, output = stopped_run
    package = copy_package(tmp_path / "edited")
    module = package / "truncback/experiments/hypercleaning/run.py"
    text = module.read_text()
    module.write_text(text.replace("\ndef ", "\nUNUSED = 1\n\n\ndef ", 1))  # a change of the code, not its docs
    log = tmp_path / "rerun.log"
    rerun = subprocess.run(
        [sys.executable, "-m", "truncback", *arguments, "--log", str(log)],
        env={**os.environ, "PYTHONPATH": str(package)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    old, new = code_version(MODULE), written(output)["code_version"]["version"]
    assert new != old, "the rerun did not run the edited copy of the package"
    torch_version = f"with torch {torch.__version__}"
    assert_started_afresh(
        output,
        log.read_text(),
        "other code",
        f"{MODULE} version {old} {torch_version}",
        f"{MODULE} version {new} {torch_version}",
    )


def test_a_run_rerun_with_another_torch_starts_from_hyper_iteration_0_and_says_why(
    stopped_run, tmp_path, torch_state_restored
):
    arguments, output = stopped_run
    checkpoint = checkpoint_path(output)
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["made_by"]["torch"] == torch.__version__
    saved["made_by"]["torch"] = "1.13.1"  # as the torch before an upgrade recorded it
    torch.save(saved, checkpoint)
    log = tmp_path / "rerun.log"
    assert cli([*arguments, "--log", str(log)]) == 0
    code = f"{MODULE} version {code_version(MODULE)}"
    assert_started_afresh(
        output, log.read_text(), "another torch", f"{code} with torch 1.13.1", f"{code} with torch {torch.__version__}"
    )


def test_a_run_rerun_on_other_data_starts_from_hyper_iteration_0_and_says_why(stopped_run, tmp_path):
    """Snakemake reruns a job whose data changed; the checkpoint the killed run left is of the old data."""
    arguments, output = stopped_run
    data = arguments[arguments.index("--data") + 1]
    digits = smoke_digits(tmp_path)
    digits["labels"] = (digits["labels"] + 1) % 10  # the same shapes, other data
    write_npz(data, **digits)
    log = tmp_path / "rerun.log"
    assert cli([*arguments, "--log", str(log)]) == 0
    checkpoint = checkpoint_path(output)
    assert (
        f"checkpoint {checkpoint} was made from other data ({data} differ); moved to {checkpoint}.stale, "
        "starting from hyper-iteration 0"
    ) in log.read_text()
    assert "resuming after" not in log.read_text()
    assert written(output)["run"]["iterations_run"] == SETTINGS["hyper_iterations"]
