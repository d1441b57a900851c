"""rules/data.smk under Snakemake, in a scratch folder: the job graph of each scale, and a real run
of one smoke-scale target (fixtures, then prepare) through the `python -m truncback` commands."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from truncback.data import load_prepared

RULES = Path(__file__).resolve().parents[1] / "rules" / "data.smk"
SNAKEMAKE = shutil.which("snakemake", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
pytestmark = pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "Snakefile").write_text(
        'config.setdefault("scale", "smoke")\n'
        'config.setdefault("data_dir", None)\n'
        'config.setdefault("data", {"fixture_seed": 0, "download_attempts": 3, "rule_retries": 1})\n'
        f'include: "{RULES}"\n')
    return tmp_path


def snakemake(workdir, *args):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([SNAKEMAKE, "--cores", "1", *args], cwd=workdir, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_quick_scale_with_data_dir_takes_real_subsets_and_cifar_fixtures(workdir):
    out = snakemake(workdir, "data_all", "-n", "-p", "--config", "scale=quick", "data_dir=/somewhere/datasets")
    for archive in ("mnist_test_images", "mnist_test_labels", "omniglot_background_small1",
                    "omniglot_background_small2"):
        assert f"data-fetch {archive} --scale quick --data-dir /somewhere/datasets" in out
    assert "data-fetch mnist_train_images" not in out and "data-fetch cifar10" not in out
    assert ("data-fixtures data/fixtures/quick/cifar10/cifar-10-python.tar.gz "
            "data/fixtures/quick/cifar100/cifar-100-python.tar.gz --scale quick --seed 0") in out
    assert ("data-prepare omniglot_evaluation data/raw/omniglot/images_background_small2.zip --scale quick "
            "--output data/prepared/quick/omniglot_evaluation.npz") in out


def test_full_scale_downloads_every_archive(workdir):
    out = snakemake(workdir, "data_all", "-n", "--config", "scale=full")
    jobs = {line.split()[0] for line in out.splitlines() if line.startswith("data_")}
    assert {f"data_archive_{key}" for key in ("mnist_train_images", "mnist_train_labels", "mnist_test_images",
                                              "mnist_test_labels", "cifar10", "cifar100", "omniglot_background",
                                              "omniglot_evaluation")} <= jobs
    assert "data_fixtures" not in jobs and len([job for job in jobs if job.startswith("data_prepare_")]) == 8


@pytest.mark.slow
def test_smoke_target_builds_from_fixtures(workdir):
    snakemake(workdir, "data/prepared/smoke/mnist_test.npz")
    arrays = load_prepared(workdir / "data" / "prepared" / "smoke" / "mnist_test.npz")
    assert arrays["images"].shape[1:] == (28, 28) and arrays["labels"].dtype == np.int64
    assert (workdir / "data" / "fixtures" / "smoke" / "cifar10" / "cifar-10-python.tar.gz").is_file()
