"""Small inputs of the three hyper-optimisation experiments, written as the pipeline writes them
(the same fixture generators and parsers; features stamped as the `features` command stamps them), and a helper that stops a run with SIGKILL (or SIGINT) right after
its first checkpoint."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from truncback.data.fixtures import FixtureSize, write_fixture, write_fixtures
from truncback.cli import COMMANDS
from truncback.data.parsers import parse_mnist, parse_omniglot
from truncback.runtime.code_version import running_module
from truncback.runtime.checkpoint import STOP_AFTER
from truncback.runtime.determinism import write_npz


def smoke_digits(folder: Path) -> dict:
    """The smoke scale's MNIST fixture as parsed arrays (500 images)."""
    paths = [folder / name for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")]
    write_fixtures("smoke", paths, seed=0)
    return parse_mnist(*paths)


def paired_classes(n_per_class, classes=6, dim=12, seed=0) -> dict:
    """Feature arrays in which classes 2k and 2k+1 share most of their mean (so coupling them helps)."""
    rng = np.random.default_rng(seed)
    groups = rng.normal(size=(classes // 2, dim))
    means = np.repeat(groups, 2, axis=0) + 0.3 * rng.normal(size=(classes, dim))
    labels = np.arange(n_per_class * classes) % classes
    features = 0.6 * means[labels] + rng.normal(size=(len(labels), dim))
    return {
        "features": features.astype(np.float32),
        "labels": labels,
        "computed": np.ones(len(labels), bool),
        "extractor": np.array(["synthetic paired classes"]),
        "pretrained": np.array([False]),
        "settings": np.array("{}"),
    }


def write_features(path: Path, **arrays) -> Path:
    """Feature arrays written as the `features` command writes them (with its code version), so that
    `task-interaction` reads them."""
    with running_module(COMMANDS["features"]):
        return write_npz(path, **arrays)


def omniglot_arrays(folder: Path) -> tuple[dict, dict]:
    """(background, evaluation): the prepared arrays of seeded fixture zips (20 characters each)."""
    size = FixtureSize(train=0, test=0, alphabets=4, characters=5)
    return tuple(
        parse_omniglot(write_fixture(key, folder / f"{key}.zip", seed=3, size=size))
        for key in ("omniglot_background", "omniglot_evaluation")
    )


def write_inputs(folder: Path) -> dict:
    """Every experiment's input files under ``folder``: {"mnist": path, "ti_train": ..., "ti_test": ...,
    "background": ..., "evaluation": ...}."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "mnist": folder / "mnist.npz",
        "ti_train": folder / "ti_train.npz",
        "ti_test": folder / "ti_test.npz",
        "background": folder / "background.npz",
        "evaluation": folder / "evaluation.npz",
    }
    write_npz(paths["mnist"], **smoke_digits(folder))
    write_features(paths["ti_train"], **paired_classes(12, seed=1))
    write_features(paths["ti_test"], **paired_classes(10, seed=2))
    for key, arrays in zip(("background", "evaluation"), omniglot_arrays(folder)):
        write_npz(paths[key], **arrays)
    return paths


def kill_after_first_checkpoint(
    arguments: list, checkpoint: Path, every: int, timeout: float = 300, signal_name: str = "SIGKILL"
) -> subprocess.CompletedProcess:
    """Runs ``python -m truncback *arguments``, which checkpoints every ``every`` hyper-iterations, and
    makes it send itself ``signal_name`` (SIGKILL; SIGINT is a Ctrl-C) right after its first checkpoint
    (TRUNCBACK_STOP_AFTER_CHECKPOINT): no race with the clock. Its exit status and stderr."""
    env = {**os.environ, STOP_AFTER: f"{every}:{signal_name}"}
    # Ctrl-C as at a terminal: a shell without job control starts background commands with SIGINT
    # ignored, which the child would inherit (and Python would then not raise KeyboardInterrupt)
    result = subprocess.run(
        [sys.executable, "-m", "truncback", *arguments],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        timeout=timeout,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert checkpoint.is_file(), f"no checkpoint at {checkpoint} (exit status {result.returncode}): {result.stderr}"
    return subprocess.CompletedProcess(result.args, result.returncode, "", result.stderr)
