"""Omniglot meta-training at smoke size on the synthetic Omniglot fixtures: an interrupted run resumes
from its checkpoint and ends exactly where an uninterrupted one does; results, Table 4 and Fig. 7
are reproducible byte for byte."""

import copy
import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from truncback.cli import main as cli
from truncback.determinism import configure_torch
from truncback.data.fixtures import FixtureSize, write_fixture
from truncback.data.parsers import parse_omniglot
from truncback.determinism import derive_seed
from truncback.experiments.omniglot import (Method, OmniglotSettings, RunInterrupted, clipped, cosine, run_omniglot,
                                            samplers)
from truncback.experiments.omniglot_model import flat_hyperparameters, initial_hyperparameters, one_shot_problem
from truncback.hypergrad import krmd, rmd

SMOKE = OmniglotSettings(ways=3, query_per_class=2, meta_train_classes=24, filters=4, T=3, init_rho=1.0,
                         hyper_lr=0.01, eval_every=2, curve_tasks=2, validation_tasks=2, test_tasks=3,
                         cosine_every=2, checkpoint_every=2, depth_tasks=1, log_every=100)
KRMD = Method("krmd1", K=1, T=3, iterations=5, milestones=(3, 5))
TIMINGS = ("seconds_per_iteration", "cpu_seconds_per_iteration")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread, as the pipeline runs (several threads on a loaded machine are much slower)."""
    configure_torch(1)


@pytest.fixture(scope="module")
def omniglot(tmp_path_factory):
    """(background, evaluation): the prepared arrays of the seeded fixture zips (20 characters each)."""
    folder = tmp_path_factory.mktemp("omniglot")
    size = FixtureSize(train=0, test=0, alphabets=4, characters=5)
    return tuple(parse_omniglot(write_fixture(key, folder / f"{key}.zip", seed=3, size=size))
                 for key in ("omniglot_background", "omniglot_evaluation"))


def without_timings(result: dict) -> dict:
    result = copy.deepcopy(result)
    for key in TIMINGS:
        assert result["measured"].pop(key) > 0
    return result


def test_an_interrupted_run_resumes_from_its_last_checkpoint_and_ends_like_an_uninterrupted_one(omniglot, tmp_path):
    uninterrupted, final = run_omniglot(*omniglot, SMOKE, KRMD, seed=0, log=lambda line: None)
    checkpoint, lines = tmp_path / "krmd1.ckpt", []
    with pytest.raises(RunInterrupted, match="after 3 hyper-iterations"):
        run_omniglot(*omniglot, SMOKE, KRMD, seed=0, log=lines.append, checkpoint=checkpoint, stop_after=3)
    assert checkpoint.is_file()
    resumed, resumed_final = run_omniglot(*omniglot, SMOKE, KRMD, seed=0, log=lines.append, checkpoint=checkpoint)
    assert any("resuming after 2" in line for line in lines), "the checkpoint of iteration 2 is the last one"
    assert without_timings(resumed) == without_timings(uninterrupted)
    for name, array in flat_hyperparameters(final).items():
        assert np.array_equal(flat_hyperparameters(resumed_final)[name], array), name
    assert uninterrupted["train"]["iteration"] == [0, 1, 2, 3, 4]
    assert uninterrupted["evaluations"]["iteration"] == [0, 2, 3, 4, 5]
    assert [m["iteration"] for m in uninterrupted["milestones"]] == [3, 5]
    assert uninterrupted["milestones"][0]["tasks"] == 3 and len(uninterrupted["cosine"]["value"]) == 3
    assert uninterrupted["final_hyperparameters"]["gamma"] != pytest.approx(0.1, abs=1e-6)


def test_a_checkpoint_of_other_settings_is_set_aside(omniglot, tmp_path):
    checkpoint = tmp_path / "run.ckpt"
    with pytest.raises(RunInterrupted):
        run_omniglot(*omniglot, SMOKE, KRMD, seed=0, log=lambda line: None, checkpoint=checkpoint, stop_after=3)
    lines = []
    other = OmniglotSettings(**{**SMOKE.__dict__, "hyper_lr": 0.02})
    result, _ = run_omniglot(*omniglot, other, KRMD, seed=0, log=lines.append, checkpoint=checkpoint)
    assert (tmp_path / "run.ckpt.stale").is_file()
    assert any("settings differ" in line for line in lines)
    assert result["train"]["iteration"] == [0, 1, 2, 3, 4]


def test_the_cosine_compares_truncated_and_exact_hypergradients_at_the_same_lam(omniglot):
    result, _ = run_omniglot(*omniglot, SMOKE, Method("krmd1", 1, 3, 1, (1,)), seed=0, log=lambda line: None)
    task_seed = derive_seed("omniglot", 0, 0)
    train_sampler, _ = samplers(*omniglot, SMOKE, task_seed)
    lam = initial_hyperparameters(SMOKE.filters, SMOKE.ways, SMOKE.batch_norm, SMOKE.init_rho, SMOKE.init_gamma,
                                  task_seed)
    problem = one_shot_problem(train_sampler.task("train", 0), 3, SMOKE.batch_norm)
    assert result["cosine"]["value"] == [pytest.approx(cosine(krmd(problem, lam, 1), rmd(problem, lam)), abs=1e-6)]


def test_short_horizon_and_full_rmd_have_no_cosine_and_full_rmd_holds_all_states(omniglot):
    short, _ = run_omniglot(*omniglot, SMOKE, Method("short", 1, 1, 2, (2,)), seed=0, log=lambda line: None)
    full, _ = run_omniglot(*omniglot, SMOKE, Method("rmd", 3, 3, 2, (2,)), seed=0, log=lambda line: None)
    assert (short["label"], full["label"]) == ("Short horizon", "Full RMD")
    assert short["cosine"]["value"] == [] and full["cosine"]["value"] == []
    assert full["measured"]["states_held"] == 4 and short["measured"]["states_held"] == 2


def test_clipping_shortens_only_long_hypergradients():
    h = {"a": torch.tensor([3.0, 0.0]), "b": torch.tensor(4.0)}
    short = clipped(h, 2.0)
    assert torch.allclose(short["a"], torch.tensor([1.2, 0.0])) and torch.isclose(short["b"], torch.tensor(1.6))
    assert clipped(h, 5.0) is h and clipped(h, None) is h


def test_a_diverging_lower_level_stops_the_run_naming_the_iteration(omniglot):
    diverging = OmniglotSettings(**{**SMOKE.__dict__, "init_gamma": 1e12})
    with pytest.raises(FloatingPointError, match="krmd1: non-finite hypergradient at hyper-iteration 0"):
        run_omniglot(*omniglot, diverging, KRMD, seed=0, log=lambda line: None)


def test_settings_and_methods_reject_bad_values():
    with pytest.raises(ValueError, match=r"unknown omniglot setting\(s\) \['filter'\]"):
        OmniglotSettings.from_dict({"filter": 8})
    with pytest.raises(ValueError, match="T must be a positive int, got T=0"):
        OmniglotSettings.from_dict({"T": 0})
    with pytest.raises(ValueError, match="clip_norm must be positive or None"):
        OmniglotSettings.from_dict({"clip_norm": 0.0})
    with pytest.raises(ValueError, match="curve_tasks=10 must not exceed test_tasks=5"):
        OmniglotSettings.from_dict({"curve_tasks": 10, "test_tasks": 5})
    with pytest.raises(ValueError, match="method krmd: K=4 and T=3 must satisfy"):
        Method("krmd", 4, 3, 10, (10,))
    with pytest.raises(ValueError, match=r"milestones \[20\] must be non-empty and lie in \[1, iterations=10\]"):
        Method("krmd", 1, 3, 10, (20,))


def test_command_line_run_stop_resume_table_and_figure_are_reproducible(omniglot, tmp_path):
    background, evaluation = tmp_path / "background.npz", tmp_path / "evaluation.npz"
    for path, arrays in zip((background, evaluation), omniglot):
        np.savez(path, **arrays)
    settings = json.dumps(SMOKE.__dict__)

    def run(method, K, T, folder, *extra):
        return cli(["omniglot", "--background", str(background), "--evaluation", str(evaluation), "--settings",
                    settings, "--method", method, "--K", str(K), "--T", str(T), "--iterations", "4",
                    "--output", str(folder / f"{method}.json"), "--hparams", str(folder / f"{method}.npz"), *extra])

    first, second = tmp_path / "first", tmp_path / "second"
    for method, K in (("krmd1", 1), ("rmd", 3)):
        assert run(method, K, 3, first) == 0
    assert run("krmd1", 1, 3, second, "--stop-after", "3") == 3
    assert not (second / "krmd1.json").exists() and (second / "krmd1.json.ckpt").is_file()
    assert run("krmd1", 1, 3, second) == 0 and run("rmd", 3, 3, second) == 0
    assert not (second / "krmd1.json.ckpt").exists()
    for method in ("krmd1", "rmd"):
        results = [json.loads((folder / f"{method}.json").read_text()) for folder in (first, second)]
        assert without_timings(results[0]) == without_timings(results[1])
        assert (first / f"{method}.npz").read_bytes() == (second / f"{method}.npz").read_bytes()
    for folder in (first, second):
        assert cli(["omniglot-depth", "--background", str(background), "--evaluation", str(evaluation),
                    "--settings", settings, "--hparams", str(folder / "rmd.npz"),
                    "--output", str(folder / "depth.json")]) == 0
        results = [str(folder / f"{method}.json") for method in ("krmd1", "rmd")]
        assert cli(["table-omniglot", "--results", *results, "--output", str(folder / "table4")]) == 0
        assert cli(["figure-omniglot", "--results", *results, "--depth", str(folder / "depth.json"),
                    "--output", str(folder / "fig7")]) == 0
    assert (first / "depth.json").read_bytes() == (second / "depth.json").read_bytes()
    depth = json.loads((first / "depth.json").read_text())
    assert set(depth["learned"]) >= {"rho_positive", "rho_zero"} and 0 < depth["learned"]["rho_positive"]["fit"]["rate"]
    table = (first / "table4.csv").read_text().splitlines()
    assert table[0] == "Method,Accuracy,Iter.,Sec/iter,CPU s/iter,Peak MiB,States held,State MiB"
    assert [row.split(",")[0] for row in table[1:]] == ["1-RMD", "Full RMD"]
    for suffix in ("pdf", "png"):
        assert (first / f"fig7.{suffix}").read_bytes() == (second / f"fig7.{suffix}").read_bytes()


def test_a_killed_command_resumes_from_its_checkpoint_and_ends_like_an_uninterrupted_one(omniglot, tmp_path):
    """SIGKILL right after the first checkpoint (of 2 hyper-iterations, of 12) is written."""
    background, evaluation = tmp_path / "background.npz", tmp_path / "evaluation.npz"
    for path, arrays in zip((background, evaluation), omniglot):
        np.savez(path, **arrays)

    def arguments(folder):
        return ["omniglot", "--background", str(background), "--evaluation", str(evaluation),
                "--settings", json.dumps(SMOKE.__dict__), "--method", "krmd1", "--K", "1", "--T", "3",
                "--iterations", "12", "--output", str(folder / "krmd1.json"), "--hparams", str(folder / "krmd1.npz")]

    killed, whole = tmp_path / "killed", tmp_path / "whole"
    killed.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "truncback", *arguments(killed)], stderr=subprocess.DEVNULL)
    checkpoint, deadline = killed / "krmd1.json.ckpt", time.monotonic() + 120
    while not checkpoint.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert process.poll() is None, "the run ended before it could be killed after its first checkpoint"
    process.kill()
    process.wait()
    assert checkpoint.is_file() and not (killed / "krmd1.json").exists()
    assert cli([*arguments(killed), "--log", str(killed / "log")]) == 0 and cli(arguments(whole)) == 0
    assert "resuming after" in (killed / "log").read_text()
    results = [json.loads((folder / "krmd1.json").read_text()) for folder in (killed, whole)]
    assert without_timings(results[0]) == without_timings(results[1])
    assert (killed / "krmd1.npz").read_bytes() == (whole / "krmd1.npz").read_bytes()
