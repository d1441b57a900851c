"""The library outside this repository: `python -m build` makes an sdist and a wheel from the project's
files alone; the wheel, installed into a fresh venv (no editable install, the repository nowhere on the
path; its dependencies - torch, numpy, ... - taken from this venv through a .pth line), imports
`truncback.hypergrad` from the installed copy and runs an example from a folder of its own."""

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# `python -m build --no-isolation` builds with this environment's build and setuptools (the venv's
# requirements and the Nix flake's Python have both)
MISSING = [name for name in ("build", "setuptools") if importlib.util.find_spec(name) is None]
# the installed copy only: a PYTHONPATH naming the repository's src (the Nix dev shell and check set one)
# would shadow it
OUTSIDE = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


@pytest.mark.slow
@pytest.mark.skipif(bool(MISSING), reason=f"python -m build needs {' and '.join(MISSING)}, not installed")
def test_the_wheel_installs_into_a_fresh_venv_and_runs_an_example(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, project / name)
    shutil.copytree(REPO / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(project)],
        check=True,
        capture_output=True,
    )
    wheels, sdists = list(dist.glob("truncback-*.whl")), list(dist.glob("truncback-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1
    assert "truncback/py.typed" in zipfile.ZipFile(wheels[0]).namelist()  # typed, for the user's checker
    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    python = env / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheels[0])], env=OUTSIDE, check=True
    )
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        env=OUTSIDE,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    workdir = tmp_path / "elsewhere"
    shutil.copy2(REPO / "examples" / "maml_init.py", workdir.mkdir() or workdir / "maml_init.py")
    probe = (
        "import truncback, truncback.hypergrad as h; print(truncback.__file__); "
        "print('module_problem' in h.__all__ and 'krmd' in h.__all__)"
    )
    lines = subprocess.run(
        [python, "-c", probe], cwd=workdir, env=OUTSIDE, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert lines[0].startswith(site) and lines[1] == "True"  # the installed copy, not the repository's
    result = subprocess.run([python, "maml_init.py"], cwd=workdir, env=OUTSIDE, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "krmd-K4: meta-gradient at the start 0.000 from the exact one" in result.stdout
