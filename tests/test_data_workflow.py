"""rules/data.smk under Snakemake, in a scratch copy of the workflow: the job graph of each scale,
an archive keyed by its content (neither the scale nor where it came from reruns it), a data_dir
that lacks files refused before planning, and a real run of one smoke-scale target (fixtures,
then prepare) through the `python -m truncback` commands."""

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from truncback.data import load_prepared
from workflow_copy import SNAKEMAKE, copy_workflow, fake_data_dir, snakemake

pytestmark = pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "workflow").mkdir()
    return copy_workflow(tmp_path / "workflow")


def output_of(result):
    return result.stdout + result.stderr


def test_quick_scale_with_data_dir_takes_real_subsets_and_cifar_fixtures(workdir, tmp_path):
    data_dir = fake_data_dir(tmp_path / "datasets", "quick")
    out = output_of(
        snakemake(workdir, "--cores", "1", "data_all", "-n", "-p", "--config", "scale=quick", f"data_dir={data_dir}")
    )
    for archive in (
        "mnist_test_images",
        "mnist_test_labels",
        "omniglot_background_small1",
        "omniglot_background_small2",
    ):
        assert f"data-fetch {archive} --scale quick --data-dir {data_dir}" in out
    assert "data-fetch mnist_train_images" not in out and "data-fetch cifar10" not in out
    assert (
        "data-fixtures data/fixtures/quick/cifar10/cifar-10-python.tar.gz "
        "data/fixtures/quick/cifar100/cifar-100-python.tar.gz --scale quick --seed 0"
    ) in out
    assert (
        "data-prepare omniglot_evaluation data/raw/omniglot/images_background_small2.zip --scale quick "
        "--output data/prepared/quick/omniglot_evaluation.npz"
    ) in out


def test_a_data_dir_that_lacks_files_is_refused_before_planning_naming_every_one(workdir, tmp_path):
    data_dir = fake_data_dir(tmp_path / "datasets", "quick")
    (data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    (data_dir / "omniglot" / "images_background_small2.zip").unlink()
    out = output_of(
        snakemake(
            workdir, "--cores", "1", "-n", "--config", "scale=quick", f"data_dir={data_dir}", expect_success=False
        )
    )
    assert "lacks 2 file(s) that scale 'quick' needs" in out
    assert "mnist/t10k-labels-idx1-ubyte.gz" in out and "omniglot/images_background_small2.zip" in out
    assert "Building DAG of jobs" not in out
    out = output_of(
        snakemake(
            workdir,
            "--cores",
            "1",
            "-n",
            "--config",
            "scale=quick",
            f"data_dir={tmp_path / 'nowhere'}",
            expect_success=False,
        )
    )
    assert f"data_dir {tmp_path / 'nowhere'} does not exist" in out


def test_full_scale_downloads_every_archive(workdir):
    out = output_of(snakemake(workdir, "--cores", "1", "data_all", "-n", "--config", "scale=full"))
    jobs = {line.split()[0] for line in out.splitlines() if line.startswith("data_")}
    assert {
        f"data_archive_{key}"
        for key in (
            "mnist_train_images",
            "mnist_train_labels",
            "mnist_test_images",
            "mnist_test_labels",
            "cifar10",
            "cifar100",
            "omniglot_background",
            "omniglot_evaluation",
        )
    } <= jobs
    assert "data_fixtures" not in jobs and len([job for job in jobs if job.startswith("data_prepare_")]) == 8


SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is absent (only on the project machine)")
def test_an_archive_is_keyed_by_its_content_not_by_the_scale_or_where_it_came_from(workdir):
    archive = "data/raw/mnist/t10k-labels-idx1-ubyte.gz"
    snakemake(workdir, "--cores", "1", archive, "--config", "scale=quick", f"data_dir={SHARED}")
    for config in (
        ["scale=quick", f"data_dir={SHARED}/./"],
        ["scale=quick", f"data_dir={SHARED.parent}/../shared/datasets"],
        ["scale=smoke"],
    ):
        assert "Nothing to be done" in output_of(
            snakemake(workdir, "--cores", "1", "-n", archive, "--config", *config)
        ), config


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is absent (only on the project machine)")
def test_a_data_dir_recreated_with_the_same_bytes_reruns_nothing(workdir, tmp_path):
    """The archives are copies, dated when copied: a data_dir copied afresh (every file newer than the
    prepared arrays, same bytes) leaves the jobs downstream of it done."""
    data_dir = tmp_path / "datasets"
    shutil.copytree(SHARED, data_dir)
    target = "data/prepared/quick/mnist_test.npz"
    snakemake(workdir, "--cores", "1", target, "--config", "scale=quick", f"data_dir={data_dir}")
    later = time.time() + 3600
    for path in data_dir.rglob("*"):
        os.utime(path, (later, later))
    out = output_of(snakemake(workdir, "--cores", "1", "-n", target, "--config", "scale=quick", f"data_dir={data_dir}"))
    assert "Nothing to be done" in out, out


@pytest.mark.slow
def test_smoke_target_builds_from_fixtures(workdir):
    snakemake(workdir, "--cores", "1", "data/prepared/smoke/mnist_test.npz", "--config", "scale=smoke")
    arrays = load_prepared(workdir / "data" / "prepared" / "smoke" / "mnist_test.npz")
    assert arrays["images"].shape[1:] == (28, 28) and arrays["labels"].dtype == np.int64
    assert (workdir / "data" / "fixtures" / "smoke" / "cifar10" / "cifar-10-python.tar.gz").is_file()
