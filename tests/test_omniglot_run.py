"""Omniglot meta-training at smoke size on the synthetic Omniglot fixtures: an interrupted run resumes
from its checkpoint and ends exactly where an uninterrupted one does; the recorded comparison with
the exact hypergradient is autograd through the unrolled loop; results, Table 4 and Fig. 7 are
reproducible byte for byte."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from experiment_data import omniglot_arrays
from truncback.cli import main as cli
from truncback.experiments.omniglot.model import flat_hyperparameters, initial_hyperparameters, one_shot_problem
from truncback.experiments.omniglot.run import run_omniglot, samplers
from truncback.experiments.omniglot.settings import OmniglotRun, OmniglotSettings
from truncback.hypergrad.reference import unrolled_autograd
from truncback.hypergrad import krmd, trees
from truncback.runtime.determinism import configure_torch, derive_seed
from truncback.runtime.harness import RunInterrupted, clipped

SMOKE = OmniglotSettings(
    compile=False,
    ways=3,
    query_per_class=2,
    meta_train_classes=24,
    filters=4,
    T=3,
    init_rho=1.0,
    hyper_lr=0.01,
    eval_every=2,
    curve_tasks=2,
    validation_tasks=2,
    test_tasks=3,
    exact_every=2,
    checkpoint_every=2,
    depth_tasks=1,
    log_every=100,
)
KRMD = OmniglotRun({"name": "krmd", "K": 1}, iterations=5, milestones=(3, 5))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread, as the pipeline runs (several threads on a loaded machine are much slower)."""
    configure_torch(1)


@pytest.fixture(scope="module")
def omniglot(tmp_path_factory):
    return omniglot_arrays(tmp_path_factory.mktemp("omniglot"))


def quiet(line):
    pass


def test_an_interrupted_run_resumes_from_its_last_checkpoint_and_ends_like_an_uninterrupted_one(omniglot, tmp_path):
    uninterrupted, _, final = run_omniglot(*omniglot, SMOKE, KRMD, seed=0, log=quiet)
    checkpoint, lines = tmp_path / "krmd1.ckpt", []
    with pytest.raises(RunInterrupted, match="after 3 hyper-iterations"):
        run_omniglot(*omniglot, SMOKE, KRMD, seed=0, log=lines.append, checkpoint=checkpoint, stop_after=3)
    assert checkpoint.is_file()
    resumed, _, resumed_final = run_omniglot(*omniglot, SMOKE, KRMD, seed=0, log=lines.append, checkpoint=checkpoint)
    assert any("resuming after 2" in line for line in lines), "the checkpoint of iteration 2 is the last one"
    assert dataclasses.asdict(resumed) == dataclasses.asdict(uninterrupted)
    for name, array in flat_hyperparameters(final).items():
        assert np.array_equal(flat_hyperparameters(resumed_final)[name], array), name
    assert uninterrupted.run.train["iteration"] == [0, 1, 2, 3, 4]
    assert uninterrupted.evaluations["iteration"] == [0, 2, 3, 4, 5]
    assert [m["iteration"] for m in uninterrupted.milestones] == [3, 5]
    assert uninterrupted.milestones[0]["tasks"] == 3 and uninterrupted.run.exact["iteration"] == [0, 2, 4]
    assert uninterrupted.final_hyperparameters["gamma"] != pytest.approx(SMOKE.init_gamma, abs=1e-7)
    assert uninterrupted.final_hyperparameters["gamma"] < SMOKE.gamma_max


def test_a_checkpoint_of_other_settings_is_set_aside(omniglot, tmp_path):
    checkpoint = tmp_path / "run.ckpt"
    with pytest.raises(RunInterrupted):
        run_omniglot(*omniglot, SMOKE, KRMD, seed=0, log=quiet, checkpoint=checkpoint, stop_after=3)
    lines = []
    other = dataclasses.replace(SMOKE, hyper_lr=0.02)
    result, _, _ = run_omniglot(*omniglot, other, KRMD, seed=0, log=lines.append, checkpoint=checkpoint)
    assert (tmp_path / "run.ckpt.stale").is_file()
    assert any("settings differ" in line for line in lines)
    assert result.run.train["iteration"] == [0, 1, 2, 3, 4]


def test_the_exact_comparison_is_autograd_through_the_unrolled_loop_at_the_same_lam(omniglot):
    result, _, _ = run_omniglot(*omniglot, SMOKE, OmniglotRun({"name": "krmd", "K": 1}, 1, (1,)), seed=0, log=quiet)
    task_seed = derive_seed("omniglot", 0, 0)
    train_sampler, _ = samplers(*omniglot, SMOKE, task_seed)
    lam = initial_hyperparameters(
        SMOKE.filters, SMOKE.ways, SMOKE.batch_norm, SMOKE.init_rho, SMOKE.init_gamma, SMOKE.constraints(), task_seed
    )
    problem = one_shot_problem(train_sampler.task("train", 0), 3, SMOKE.batch_norm, SMOKE.constraints())
    h, exact = krmd(problem, lam, 1), unrolled_autograd(problem, lam)
    expected = float(trees.dot(h, exact)) / (trees.norm(h) * trees.norm(exact))
    assert result.run.exact["cosine"] == [pytest.approx(expected, abs=1e-5)]
    assert result.run.exact["grad_norm"] == [pytest.approx(trees.norm(exact), rel=1e-5)]


def test_short_horizon_and_full_rmd_names_and_states_held(omniglot):
    short, _, _ = run_omniglot(*omniglot, SMOKE, OmniglotRun({"name": "rmd"}, 2, (2,), T=1), seed=0, log=quiet)
    full, _, _ = run_omniglot(*omniglot, SMOKE, OmniglotRun({"name": "rmd"}, 2, (2,)), seed=0, log=quiet)
    assert (short.display, short.label, full.display, full.label) == ("Short horizon", "rmd-T1", "Full RMD", "rmd")
    assert full.run.states_held == 4 and short.run.states_held == 2


def test_clipping_shortens_only_long_hypergradients():
    h = {"a": torch.tensor([3.0, 0.0]), "b": torch.tensor(4.0)}
    short = clipped(h, 2.0)
    assert torch.allclose(short["a"], torch.tensor([1.2, 0.0])) and torch.isclose(short["b"], torch.tensor(1.6))
    assert clipped(h, 5.0) is h and clipped(h, None) is h


def test_a_diverging_lower_level_stops_the_run_naming_the_iteration(omniglot):
    diverging = dataclasses.replace(SMOKE, gamma_max=2e12, init_gamma=1e12)
    with pytest.raises(FloatingPointError, match="krmd-K1: non-finite hypergradient at hyper-iteration 0"):
        run_omniglot(*omniglot, diverging, KRMD, seed=0, log=quiet)


def test_settings_and_runs_reject_bad_values():
    with pytest.raises(ValueError, match=r"unknown omniglot setting\(s\) \['filter'\]"):
        OmniglotSettings.from_dict({"filter": 8})
    with pytest.raises(ValueError, match="T must be a positive int, got T=0"):
        OmniglotSettings.from_dict({"T": 0})
    with pytest.raises(ValueError, match="clip_norm must be positive or None"):
        OmniglotSettings.from_dict({"clip_norm": 0.0})
    with pytest.raises(ValueError, match="init_gamma=0.1 must lie strictly between 0 and gamma_max=0.006"):
        OmniglotSettings.from_dict({"init_gamma": 0.1})
    with pytest.raises(ValueError, match="init_rho=0.5 must exceed rho_min=0.5"):
        OmniglotSettings.from_dict({"rho_min": 0.5, "init_rho": 0.5})
    with pytest.raises(ValueError, match="gamma_max=-1.0 must be a positive number"):
        OmniglotSettings.from_dict({"gamma_max": -1.0})
    with pytest.raises(ValueError, match="curve_tasks=10 must not exceed test_tasks=5"):
        OmniglotSettings.from_dict({"curve_tasks": 10, "test_tasks": 5})
    with pytest.raises(ValueError, match="option K=4 is larger than the number of lower-level steps T=3"):
        OmniglotRun({"name": "krmd", "K": 4}, 10, (10,)).checked(SMOKE)
    with pytest.raises(ValueError, match=r"milestones \[20\] must be non-empty and lie in \[1, iterations=10\]"):
        OmniglotRun({"name": "krmd", "K": 1}, 10, (20,))


def test_command_line_run_stop_resume_table_and_figure_are_reproducible(omniglot, tmp_path):
    background, evaluation = tmp_path / "background.npz", tmp_path / "evaluation.npz"
    for path, arrays in zip((background, evaluation), omniglot):
        np.savez(path, **arrays)
    settings = json.dumps(dataclasses.asdict(SMOKE))

    def run(method, folder, *extra):
        return cli(
            [
                "omniglot",
                "--background",
                str(background),
                "--evaluation",
                str(evaluation),
                "--settings",
                settings,
                "--method",
                method,
                "--iterations",
                "4",
                "--output",
                str(folder / f"{method}.json"),
                "--hparams",
                str(folder / f"{method}.npz"),
                *extra,
            ]
        )

    first, second = tmp_path / "first", tmp_path / "second"
    for method in ("krmd-K1", "rmd"):
        assert run(method, first) == 0
    assert run("krmd-K1", second, "--stop-after", "3") == 3
    assert not (second / "krmd-K1.json").exists() and (second / "krmd-K1.json.ckpt").is_file()
    assert run("krmd-K1", second) == 0 and run("rmd", second) == 0
    assert not (second / "krmd-K1.json.ckpt").exists()
    for method in ("krmd-K1", "rmd"):
        assert (first / f"{method}.json").read_bytes() == (second / f"{method}.json").read_bytes()
        assert (first / f"{method}.npz").read_bytes() == (second / f"{method}.npz").read_bytes()
    # the resumed run's timing carries on from its checkpoint: the same hyper-iterations timed as the whole run's
    for method in ("krmd-K1", "rmd"):
        timings = [json.loads((folder / f"{method}.timing.json").read_text()) for folder in (first, second)]
        assert timings[0]["timed_iterations"] == timings[1]["timed_iterations"] == 3  # 4 but the profiled first
    for folder in (first, second):
        assert (
            cli(
                [
                    "omniglot-depth",
                    "--background",
                    str(background),
                    "--evaluation",
                    str(evaluation),
                    "--settings",
                    settings,
                    "--hparams",
                    str(folder / "rmd.npz"),
                    "--learned-from",
                    "rmd",
                    "--output",
                    str(folder / "depth.json"),
                ]
            )
            == 0
        )
        assert json.loads((folder / "depth.json").read_text())["learned_from"] == "rmd"  # the run it was told
        results = [str(folder / f"{method}.json") for method in ("krmd-K1", "rmd")]
        assert cli(["table-omniglot", "--results", *results, "--output", str(folder / "table4")]) == 0
        assert (
            cli(
                [
                    "figure-omniglot",
                    "--results",
                    *results,
                    "--depth",
                    str(folder / "depth.json"),
                    "--output",
                    str(folder / "fig7"),
                ]
            )
            == 0
        )
    assert (first / "depth.json").read_bytes() == (second / "depth.json").read_bytes()
    depth = json.loads((first / "depth.json").read_text())
    assert set(depth["learned"]) >= {"rho_positive", "rho_zero"} and 0 < depth["learned"]["rho_positive"]["fit"]["rate"]
    raised = depth["regularised"]  # the learnt lambda with every rho_j raised to at least rho_in_effect
    assert raised["gamma"] == depth["learned"]["gamma"] and min(raised["rho"]) >= depth["rho_in_effect"] * (1 - 1e-12)
    assert all(
        max(a, depth["rho_in_effect"]) == pytest.approx(b, rel=1e-12)
        for a, b in zip(depth["learned"]["rho"], raised["rho"])
    )
    table = (first / "table4.csv").read_text().splitlines()
    assert table[0] == "Method,Accuracy,Iter.,Sec/iter,CPU s/iter,Peak MiB,States held,State MiB"
    assert [row.split(",")[0] for row in table[1:]] == ["1-RMD", "Full RMD"]
    for suffix in ("pdf", "png"):
        assert (first / f"fig7.{suffix}").read_bytes() == (second / f"fig7.{suffix}").read_bytes()
