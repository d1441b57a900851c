"""A scratch copy of the workflow (Snakefile, rules, config, profiles) and Snakemake runs inside it,
with the test's Python first on PATH so the rules' `python -m truncback` is this environment's."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from truncback.data.sources import archives_of

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_PARTS = ("Snakefile", "rules", "config", "profiles")
SEARCH_PATH = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
SNAKEMAKE = shutil.which("snakemake", path=SEARCH_PATH)


def fake_data_dir(folder: Path, scale: str) -> Path:
    """A data_dir holding (empty) files of every archive ``scale`` takes from real data: enough to plan."""
    for item in archives_of(scale, "real"):
        (folder / item.relpath).parent.mkdir(parents=True, exist_ok=True)
        (folder / item.relpath).write_bytes(b"")
    return folder


def planned_jobs(result) -> list[str]:
    """The rule of each job `snakemake -n` would run (``all`` included), in its output's order."""
    return re.findall(r"^(?:local)?rule (\w+):", result.stdout + result.stderr, flags=re.MULTILINE)


def copy_workflow(destination: Path) -> Path:
    for part in WORKFLOW_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, destination / part)
        else:
            shutil.copy2(source, destination / part)
    return destination


def copy_package(destination: Path) -> Path:
    """A private copy of the package's source (``destination/src``, replacing an older one), for tests
    that edit the code: run Snakemake with ``package=`` this folder."""
    target = destination / "src"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(REPO / "src", target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return target


def snakemake(
    workdir: Path, *args, expect_success: bool = True, activated: bool = True, package: Path | None = None
) -> subprocess.CompletedProcess:
    """Runs ``snakemake *args`` in ``workdir``; fails the test with Snakemake's output when the exit
    status is not the expected one. ``activated=False`` leaves the test's environment off PATH, as
    when a user runs ``.venv/bin/snakemake`` without activating the venv; ``package`` (a src folder)
    goes first on PYTHONPATH, so the workflow and its jobs run that copy of the code."""
    bin_dir = str(Path(sys.executable).parent)
    path = (
        SEARCH_PATH
        if activated
        else os.pathsep.join(entry for entry in os.environ.get("PATH", "").split(os.pathsep) if entry != bin_dir)
    )
    env = {**os.environ, "PATH": path}
    if package is not None:
        env["PYTHONPATH"] = str(package)
    result = subprocess.run([SNAKEMAKE, *args], cwd=workdir, env=env, capture_output=True, text=True)
    succeeded = result.returncode == 0
    assert succeeded == expect_success, f"exit status {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one line Snakemake stopped with (``Error: ...``), asserting that its output holds no traceback
    and no other error line."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output and 'File "' not in output, output
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, output
    return errors[0]
