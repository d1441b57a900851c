"""Ctrl-C without a traceback: a command, or a Snakemake job, interrupted while it still imports torch,
and Snakemake interrupted while it reads the workflow. A ``sitecustomize`` module on PYTHONPATH makes
the chosen process stop at its import of torch until interrupted, so the interrupt lands there
every time (the real import takes a second or two)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workflow_copy import SEARCH_PATH, SNAKEMAKE, copy_workflow

SITECUSTOMIZE = """
import os, sys, time

_WHO = os.environ.get("TEST_BLOCK_TORCH_IN")  # "command" (python -m truncback ...) or "snakemake"
_ME = "command" if sys.argv[:1] == ["-m"] else "snakemake" if sys.argv[:1] and sys.argv[0].endswith("snakemake") else None


class _BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            open(os.environ["TEST_BLOCK_TORCH_MARKER"], "w").close()
            time.sleep(300)
        return None


if _WHO and _WHO == _ME:
    sys.meta_path.insert(0, _BlockTorch())
"""


def blocked(tmp_path: Path, who: str) -> tuple[dict, Path]:
    """The environment making ``who`` stop at its import of torch, and the file it writes when it does."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    marker = tmp_path / "importing-torch"
    env = {
        **os.environ,
        "PATH": SEARCH_PATH,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
        "TEST_BLOCK_TORCH_IN": who,
        "TEST_BLOCK_TORCH_MARKER": str(marker),
    }
    return env, marker


def ctrl_c(command: list, cwd: Path, env: dict, marker: Path, times: int = 1) -> subprocess.CompletedProcess:
    """Runs ``command`` in a process group of its own (a terminal's foreground job), and once ``marker``
    appears sends the group SIGINT ``times`` times, as a terminal's Ctrl-C does (``timeout -s INT``
    sends it twice)."""
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    for _ in range(times):
        os.killpg(process.pid, signal.SIGINT)
        time.sleep(0.2)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def no_traceback(result) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output and 'File "' not in output and "KeyboardInterrupt" not in output, output
    return output


def test_a_command_interrupted_while_importing_torch_says_one_line(tmp_path):
    env, marker = blocked(tmp_path, "command")
    result = ctrl_c([sys.executable, "-m", "truncback", "omniglot", "--help"], tmp_path, env, marker)
    no_traceback(result)
    assert result.returncode == 130
    assert result.stderr == "python -m truncback omniglot: interrupted while starting, before it wrote anything\n"


@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
def test_ctrl_c_during_a_job_s_imports_prints_no_traceback(tmp_path):
    (tmp_path / "workflow").mkdir()
    workdir = copy_workflow(tmp_path / "workflow")
    env, marker = blocked(tmp_path, "command")
    command = [SNAKEMAKE, "--cores", "1", "results/smoke/toy/bound.json", "--config", "scale=smoke"]
    result = ctrl_c(command, workdir, env, marker, times=2)
    output = no_traceback(result)
    assert result.returncode != 0
    assert "python -m truncback toy: interrupted while starting, before it wrote anything\n" in output
    assert "Terminating processes on user request" in output
    assert not (workdir / "results" / "smoke" / "toy" / "bound.json").exists()


@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
def test_ctrl_c_while_snakemake_reads_the_workflow_is_one_line(tmp_path):
    (tmp_path / "workflow").mkdir()
    workdir = copy_workflow(tmp_path / "workflow")
    env, marker = blocked(tmp_path, "snakemake")
    result = ctrl_c([SNAKEMAKE, "--cores", "1", "-n", "--config", "scale=smoke"], workdir, env, marker)
    no_traceback(result)
    assert result.returncode == 130
    assert result.stderr.splitlines()[-1] == "Snakemake: interrupted while reading the workflow, before any job started"
