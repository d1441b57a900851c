"""`task-interaction-trials` (the pipeline's job per (dataset, method)) writes, for each trial, the
result file `task-interaction` writes for that trial alone: within float64 rounding when the trials
are batched, bit for bit when the method runs them one after the other (AID-CG's batched conjugate
gradients would share their step sizes across the trials)."""

import dataclasses
import json

import pytest
import torch

from experiment_data import paired_classes, write_features
from test_batched import close
from truncback.cli import main as cli
from truncback.experiments.task_interaction.run import TaskInteractionResult
from truncback.runtime.files import read_json, read_result, timing_path

SETTINGS = {
    "T": 8,
    "train_per_class": 3,
    "val_per_class": 6,
    "max_hyper_iterations": 9,
    "patience": 3,
    "min_delta": 0.001,
    "exact_every": 3,
    "log_every": 100,
    "hyper_lr": 0.05,
    "checkpoint_every": 4,
    "dtype": "float64",
}


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    folder = tmp_path_factory.mktemp("features")
    for split, seed in (("train", 1), ("test", 2)):
        write_features(folder / f"{split}.npz", **paired_classes(12 if split == "train" else 10, seed=seed))
    deterministic = torch.are_deterministic_algorithms_enabled()
    yield folder
    torch.use_deterministic_algorithms(deterministic)


def common(features, method: str) -> list:
    return [
        *("--train", str(features / "train.npz"), "--test", str(features / "test.npz"), "--dataset", "synthetic"),
        *("--settings", json.dumps(SETTINGS), "--method", method, "--threads", "1", "--device", "cpu"),
    ]


@pytest.mark.parametrize("method, batched", [("krmd-K2", True), ('{"name": "aid_cg", "K": 3}', False)])
def test_each_trial_of_the_job_is_its_run_alone(features, tmp_path, method, batched):
    outputs = [tmp_path / f"trial{trial}.json" for trial in range(3)]
    job = ["task-interaction-trials", *common(features, method), "--trials", "0", "1", "2", "--exact-trials", "1"]
    assert cli([*job, "--output", *map(str, outputs)]) == 0
    for trial, output in enumerate(outputs):
        alone = tmp_path / f"alone{trial}.json"
        exact = [] if trial < 1 else ["--no-exact"]
        assert (
            cli(["task-interaction", *common(features, method), "--trial", str(trial), *exact, "--output", str(alone)])
            == 0
        )
        result, reference = (dataclasses.asdict(read_result(path, TaskInteractionResult)) for path in (output, alone))
        if not batched:
            assert result == reference  # the same numbers, bit for bit (the files differ in the command's stamp)
            continue
        for record in (result, reference):
            record["run"].pop("hypergradient_peak_mib")  # the batch's share of its peak
            record["run"].pop("state_mib")  # the state the batch holds, in the kernel form at these sizes
        close(result, reference)
        assert bool(result["run"]["exact"]["iteration"]) == (trial < 1)
        assert read_json(timing_path(output))["timed_iterations"] == result["iterations"] - 1
