"""The sensitivity study: variants at smoke size through the real command line give one table row each,
with the numbers their runs wrote; the data-scaling pools keep the held-out alphabets out (also the
offline files' shared Greek and Latin); the trend's fit and its interval on exact power laws; the
paper's sum at gamma/n is the mean with weight decay/n; the report's sections, with the study and
without; the offline target plans only the study's jobs and data."""

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from snakemake.utils import validate
from torch.utils._pytree import tree_leaves, tree_map

from experiment_data import omniglot_arrays, write_inputs
from test_pipeline_config import SCHEMA, load, merged
from truncback.cli import main as cli
from truncback.data.parsers import parse_omniglot
from truncback.experiments.hypercleaning.problem import cleaning_problem, make_cleaning_data
from truncback.experiments.hypercleaning.run import HypercleaningResult
from truncback.experiments.omniglot.model import Constraints, fixed_w0, initial_hyperparameters, one_shot_problem
from truncback.experiments.omniglot.run import OmniglotResult
from truncback.experiments.omniglot.tasks import Task
from truncback.experiments.sensitivity.estimate import run_counts
from truncback.experiments.sensitivity.pools import character_pool
from truncback.experiments.sensitivity.settings import study_runs
from truncback.experiments.sensitivity.summary import fit_at, power_law_fit, t_quantile
from truncback.hypergrad import dynamics, rmd, trees
from truncback.reproduction.evidence import Evidence, load_reference
from truncback.reproduction.report import report_text
from truncback.runtime.files import read_json, read_result
from workflow_copy import REPO, SNAKEMAKE, copy_workflow, fake_data_dir, planned_jobs, snakemake

SHARED = REPO.parent / "shared" / "datasets"
REFERENCE = REPO / "config" / "paper_reference.yaml"


def config_of(scale: str, **study) -> dict:
    """The validated config of ``scale`` with its ``sensitivity`` section overlaid by ``study``."""
    config = merged(load("config.yaml"), {"scale": scale, **load(f"{scale}.yaml")})
    config = merged(config, {"sensitivity": study})
    validate(config, SCHEMA)
    return config


def study_json(config: dict) -> str:
    return json.dumps(
        {
            "sensitivity": config["sensitivity"],
            "hypercleaning": {"settings": config["hypercleaning"]["settings"]},
            "omniglot": {"settings": config["omniglot"]["settings"]},
        }
    )


def f1(hparams: np.ndarray, corrupted: np.ndarray, threshold: float) -> float:
    """F1 of flagging lam_i < threshold as corrupted: 2 TP / (2 TP + FP + FN)."""
    flagged = hparams < threshold
    true = np.sum(flagged & corrupted)
    return 0.0 if true == 0 else 2 * true / (2 * true + np.sum(flagged & ~corrupted) + np.sum(~flagged & corrupted))


def test_variants_through_the_command_line_give_one_row_each_with_the_numbers_of_their_runs(tmp_path):
    inputs = write_inputs(tmp_path / "inputs")
    w0_fixed = next(v for v in config_of("smoke")["sensitivity"]["omniglot"]["variants"] if v["name"] == "w0_fixed")
    config = config_of(
        "smoke",
        omniglot={"variants": [w0_fixed]},
        data_scaling={
            "runs": [{"method": {"name": "krmd", "K": 1}, "iterations": 4, "milestones": [4]}],
            "pools": [5, 10, 15],
        },
    )
    runs = study_runs(config)
    root = tmp_path / "results"
    scaling = config["sensitivity"]["data_scaling"]
    data = {"background": str(inputs["background"]), "evaluation": str(inputs["evaluation"])}
    held_out = root / "data_scaling" / "held_out.npz"
    pool_command = ["sensitivity-pool", "--background", data["background"], "--evaluation", data["evaluation"]]
    assert cli([*pool_command, "--alphabets", *scaling["held_out"], "--output", str(held_out)]) == 0
    for size in scaling["pools"]:
        assert (
            cli(
                [
                    *pool_command,
                    "--alphabets",
                    *scaling["pool_alphabets"],
                    "--characters",
                    str(size),
                    "--exclude",
                    *scaling["held_out"],
                    "--output",
                    str(root / "data_scaling" / f"pool{size}.npz"),
                ]
            )
            == 0
        )
    for run in runs:
        output = root / f"{run.job}.json"
        common = ["--settings", json.dumps(run.settings), "--seed", str(run.seed), "--device", "cpu"]
        common += ["--output", str(output), "--hparams", str(output.with_suffix(".npz"))]
        if run.part == "hypercleaning":
            command = ["hypercleaning", "--data", str(inputs["mnist"]), "--method", json.dumps(run.method)]
        else:
            files = (
                [data["background"], data["evaluation"]]
                if run.pool is None
                else [str(root / "data_scaling" / f"pool{run.pool}.npz"), str(held_out)]
            )
            command = ["omniglot", "--background", files[0], "--evaluation", files[1]]
            command += [str(argument) for argument in run.run.arguments()]
        assert cli([*command, *common]) == 0, run.job
    summary_path, tables, figures = tmp_path / "summary.json", tmp_path / "tables", tmp_path / "figures"
    summary_command = ["sensitivity-summary", "--study", study_json(config), "--results-dir", str(root)]
    assert cli([*summary_command, "--reference", str(REFERENCE), "--output", str(summary_path)]) == 0
    assert (
        cli(
            [
                "figure-sensitivity",
                "--summary",
                str(summary_path),
                "--choices",
                str(figures / "choices"),
                "--data-scaling",
                str(figures / "scaling"),
            ]
        )
        == 0
    )
    assert (
        cli(
            [
                "table-sensitivity",
                "--summary",
                str(summary_path),
                "--output",
                str(tables / "sensitivity"),
                "--data-scaling-output",
                str(tables / "scaling"),
            ]
        )
        == 0
    )
    assert all((figures / f"{name}.png").is_file() for name in ("choices", "scaling"))

    table = pd.read_csv(tables / "sensitivity.csv", dtype=str, keep_default_na=False)
    variants = table[table["Choice"] != "F1 threshold"]
    assert list(zip(variants["Table"], variants["Default"])) == [("2", "yes"), ("2", ""), ("4", "yes"), ("4", "")]
    assert list(variants["Choice"]) == ["(all)", "inner loss", "(all)", "w_0"]
    for (_, row), (part, variant) in zip(
        variants.iterrows(),
        [
            ("hypercleaning", "default"),
            ("hypercleaning", "paper_sum"),
            ("omniglot", "default"),
            ("omniglot", "w0_fixed"),
        ],
    ):
        folder = root / part / variant
        if part == "hypercleaning":
            small, full = (read_result(folder / f"{m}_seed0.json", HypercleaningResult) for m in ("krmd-K1", "rmd"))
            small_acc, full_acc = small.final["test_acc"], full.final["test_acc"]
            assert row["1-RMD F1"] == f"{small.final['f1']:.3f}" and row["Full RMD F1"] == f"{full.final['f1']:.3f}"
        else:
            small, full = (read_result(folder / f"{m}_seed0.json", OmniglotResult) for m in ("krmd-K1", "rmd"))
            small_acc, full_acc = small.milestones[-1]["accuracy"], full.milestones[-1]["accuracy"]
        assert row["1-RMD acc."] == f"{small_acc:.2f}" and row["Full RMD acc."] == f"{full_acc:.2f}"
        assert row["C4"].startswith(f"{small_acc - full_acc:+.2f} ± ")
    assert "inner_loss=sum" in variants["Settings"].iloc[1] and "inner_loss=mean" in variants["Settings"].iloc[0]
    assert variants["Settings"].iloc[2] == "w0=c" and variants["Settings"].iloc[3] == "w0=fixed"
    assert read_result(root / "omniglot" / "w0_fixed" / "rmd_seed0.json", OmniglotResult).settings["w0"] == "fixed"

    thresholds = table[table["Choice"] == "F1 threshold"]
    assert [float(s.split("=")[1]) for s in thresholds["Settings"]] == config["sensitivity"]["hypercleaning"][
        "thresholds"
    ]
    for _, row in thresholds.iterrows():
        threshold = float(row["Settings"].split("=")[1])
        for method, column in (("krmd-K1", "1-RMD F1"), ("rmd", "Full RMD F1")):
            with np.load(root / "hypercleaning" / "default" / f"{method}_seed0.npz") as arrays:
                assert row[column] == f"{f1(arrays['hparams'], arrays['corrupted'], threshold):.3f}"

    scaled = pd.read_csv(tables / "scaling.csv", dtype=str, keep_default_na=False)
    assert list(scaled["Meta-training"][:3]) == ["pool5", "pool10", "pool15"]
    assert list(scaled["Characters"][:3]) == ["5", "10", "15"]
    for _, row in scaled[:3].iterrows():
        result = read_result(root / "data_scaling" / row["Meta-training"] / "krmd-K1_seed0.json", OmniglotResult)
        assert result.meta_train_classes == int(row["Characters"]) and result.meta_test_classes == 10
        assert row["1-RMD acc."] == f"{result.milestones[-1]['accuracy']:.2f}"
    assert list(scaled["Meta-training"][3:]) == ["trend (95% interval)", "the paper"]
    assert scaled["1-RMD acc."].iloc[-1] == "-"  # the paper has no row after 4 hyper-iterations

    summary = read_json(summary_path)
    text = report_text(load_reference(REFERENCE), Evidence("offline"), study=summary)
    choices = text.split("## How much the open choices move the numbers")[1].split("## ")[0]
    assert "NOT RUN" not in choices and "Table 2 after 30 hyper-iterations: the default gives 1-RMD" in choices
    assert "**small_k_matches_full: NOT RUN.**" in text and "Measured (sensitivity study): Table 2's difference" in text
    data_section = text.split("## Table 4 and the meta-training data")[1].split("## ")[0]
    assert "1-RMD reaches" in data_section and "at 1,200" in data_section and "against the paper" not in data_section
    assert "- Table 4: by design, meta-trained on" in text
    assert "measured (sensitivity study, meta-tested on the 10 characters of evaluation/Fixture_Alphabet_01" in text


def test_a_fixed_w0_is_where_every_inner_loop_starts_so_without_the_regulariser_c_gets_no_gradient():
    generator = torch.Generator().manual_seed(0)
    bounds = Constraints(gamma_max=0.5, rho_min=0.01)
    lam = initial_hyperparameters(4, 3, True, 0.5, 0.1, bounds, seed=0, dtype=torch.float64)
    w0 = fixed_w0(lam, "fixed")
    moved = {**lam, "c": tree_map(lambda c: c + 0.1, lam["c"])}
    task = Task(
        torch.rand(3, 1, 28, 28, generator=generator, dtype=torch.float64),
        torch.arange(3),
        torch.rand(6, 1, 28, 28, generator=generator, dtype=torch.float64),
        torch.arange(3).repeat_interleave(2),
    )
    problem = one_shot_problem(task, 4, True, bounds, rho_zero=True, w0=w0)
    assert all(torch.equal(a, b) for a, b in zip(tree_leaves(problem.init(moved)), tree_leaves(lam["c"])))
    assert fixed_w0(lam, "c") is None
    # c enters g_S only through the regulariser and w_0: with neither, d f / d c is exactly 0
    assert trees.norm(rmd(problem, moved)["c"]) == 0
    assert trees.norm(rmd(one_shot_problem(task, 4, True, bounds, rho_zero=True), moved)["c"]) > 0
    assert trees.norm(rmd(one_shot_problem(task, 4, True, bounds, w0=w0), moved)["c"]) > 0


def test_without_the_study_the_report_says_not_run_and_how_to_run_it():
    text = report_text(load_reference(REFERENCE), Evidence("offline"))
    for section in ("How much the open choices move the numbers", "Table 4 and the meta-training data"):
        assert f"## {section}\n\nNOT RUN: the sensitivity study has not run at this scale." in text
    assert "snakemake --cores all sensitivity --config scale=offline" in text
    assert "whether the data explain the gap is NOT RUN here" in text
    assert "Measured (sensitivity study)" not in text


def test_the_papers_sum_at_gamma_over_n_is_the_mean_with_weight_decay_over_n():
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (90, 28, 28), dtype=np.uint8), rng.integers(0, 10, 90)
    data = make_cleaning_data(images, labels, 50, 20, 20, 0.5, seed=1, dtype=torch.float64)
    lam = torch.from_numpy(rng.normal(size=50))
    n, gamma, decay = 50, 0.3, 0.01

    def final_w(problem):
        return dynamics.run(problem, lam, dynamics.initial_state(problem, lam), 0, problem.T)

    paper = final_w(cleaning_problem(data, 10, gamma / n, decay, inner_loss="sum"))
    ours = final_w(cleaning_problem(data, 10, gamma, decay / n, inner_loss="mean"))
    assert torch.allclose(paper, ours, rtol=1e-12, atol=1e-14)
    assert not torch.allclose(ours, final_w(cleaning_problem(data, 10, gamma, decay, inner_loss="mean")))


def test_t_quantiles_are_the_tabulated_ones():
    for dof, tabulated in ((1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (30, 2.042)):
        assert t_quantile(0.975, dof) == pytest.approx(tabulated, abs=1e-3)


def test_the_trend_recovers_an_exact_power_law_and_widens_away_from_its_points():
    characters = [35, 35, 70, 70, 140, 140]
    exact = [100 - 40 * n**-0.5 for n in characters]
    fit = power_law_fit(characters, exact, 1200)
    assert fit["slope"] == pytest.approx(-0.5) and fit["accuracy"] == pytest.approx(100 - 40 * 1200**-0.5)
    assert fit["interval"][1] - fit["interval"][0] == pytest.approx(0, abs=1e-9)
    noisy = [value + shift for value, shift in zip(exact, [0.5, -0.5, -0.4, 0.4, 0.3, -0.3])]
    fit = power_law_fit(characters, noisy, 1200)
    low, high = fit["interval"]
    assert low < fit["accuracy"] < high and fit["slope_interval"][0] < fit["slope"] < fit["slope_interval"][1]
    inside = fit_at(fit, 70)[1]
    assert inside[1] - inside[0] < high - low  # the band is narrowest among the points
    assert (
        power_law_fit([70, 70], [80.0, 81.0], 1200) is None and power_law_fit([70, 70, 70], [80, 81, 82], 1200) is None
    )
    assert power_law_fit([35, 70, 140], [80.0, 90.0, 100.0], 1200) is None  # no error left to take the log of


def fixture_files(tmp_path: Path) -> dict:
    background, evaluation = omniglot_arrays(tmp_path)
    return {"background": background, "evaluation": evaluation}


def test_a_pool_takes_the_first_characters_in_order_and_refuses_drawings_of_the_held_out_alphabets(tmp_path):
    files = fixture_files(tmp_path)
    pool = character_pool(files, ["background/Fixture_Alphabet_02", "evaluation/Fixture_Alphabet_01"], 7)
    assert list(pool["alphabet_names"]) == ["background/Fixture_Alphabet_02", "evaluation/Fixture_Alphabet_01"]
    assert sorted(set(pool["labels"])) == list(range(7)) and len(pool["images"]) == 7 * 20
    first = files["background"]["alphabet"] == list(files["background"]["alphabet_names"]).index("Fixture_Alphabet_02")
    assert np.array_equal(pool["images"][: 5 * 20], files["background"]["images"][first])
    assert list(pool["alphabet"][::20]) == [0] * 5 + [1] * 2 and list(pool["character"][::20]) == [0, 1, 2, 3, 4, 0, 1]
    every = character_pool(files, ["background/*", "evaluation/Fixture_Alphabet_04"])
    assert list(every["alphabet_names"]) == [f"background/Fixture_Alphabet_0{a}" for a in range(1, 5)] + [
        "evaluation/Fixture_Alphabet_04"
    ]
    assert len(set(every["labels"])) == 5 * 5
    copied = {"background": files["background"], "evaluation": copy.deepcopy(files["background"])}
    with pytest.raises(ValueError, match="^100 drawing"):  # 5 characters x 20 drawings
        character_pool(copied, ["background/Fixture_Alphabet_01"], exclude=["evaluation/Fixture_Alphabet_01"])
    with pytest.raises(ValueError, match="has no alphabet 'Latin'"):
        character_pool(files, ["background/Latin"])
    with pytest.raises(ValueError, match="hold 5 characters"):
        character_pool(files, ["background/Fixture_Alphabet_01"], 6)


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is absent (only on the project machine)")
def test_the_offline_files_share_greek_and_latin_so_a_pool_must_not_take_them_from_the_other_file():
    files = {
        "background": parse_omniglot(SHARED / "omniglot" / "images_background_small1.zip"),
        "evaluation": parse_omniglot(SHARED / "omniglot" / "images_background_small2.zip"),
    }
    with pytest.raises(ValueError, match="480 drawing"):
        character_pool(files, ["background/Greek"], exclude=["evaluation/Greek"])
    offline = config_of("offline")["sensitivity"]["data_scaling"]
    held_out = character_pool(files, offline["held_out"])
    assert len(set(held_out["labels"])) == 47 + 17  # Japanese (katakana) and Tagalog
    largest = character_pool(files, offline["pool_alphabets"], max(offline["pools"]), offline["held_out"])
    assert len(set(largest["labels"])) == max(offline["pools"]) == 136 + 42  # small1 and Sanskrit


def test_a_bad_variant_is_named_before_any_run():
    bad = {"name": "typo", "choice": "x", "reading": "x", "settings": {"hyper_lrr": 1.0}}
    with pytest.raises(ValueError, match=r"sensitivity.hypercleaning \(typo\): unknown hypercleaning setting"):
        study_runs(config_of("smoke", hypercleaning={"variants": [bad]}))
    named_default = {**bad, "name": "default", "settings": {}}
    with pytest.raises(ValueError, match="repeated or reserved for the default"):
        study_runs(config_of("smoke", omniglot={"variants": [named_default]}))
    shared = {"held_out": ["evaluation/A"], "pool_alphabets": ["evaluation/A"], "pools": [4]}
    with pytest.raises(ValueError, match="both held out and in the pools"):
        study_runs(config_of("smoke", data_scaling=shared))


def test_a_runs_counts_for_its_time_estimate():
    config = config_of("offline")
    run = next(r for r in study_runs(config) if r.part == "omniglot" and r.label == "krmd-K1")
    # evaluations at 0 and 500 (120 curve + 120 validation tasks) and at the milestone 1000 (120 test +
    # 120 validation); exact comparisons at 0, 50, ..., 950 and at the last hyper-iteration, 999
    assert run_counts(run) == {"iterations": 1000, "exact": 21, "tasks": 720}
    run = next(r for r in study_runs(config) if r.part == "hypercleaning" and r.label == "rmd")
    assert run_counts(run) == {"iterations": 1000, "exact": 101, "tasks": 0}


@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
def test_the_offline_target_plans_only_the_studys_runs_and_their_data(tmp_path):
    workflow = copy_workflow(tmp_path)
    data_dir = fake_data_dir(tmp_path / "datasets", "offline")
    target = "paper_tables/offline/sensitivity.md"
    result = snakemake(workflow, "--cores", "2", "-n", target, "--config", "scale=offline", f"data_dir={data_dir}")
    planned = planned_jobs(result)
    runs = study_runs(config_of("offline"))
    assert {name for name in planned if not name.startswith("data_")} == {
        "sensitivity_hypercleaning",
        "sensitivity_omniglot",
        "sensitivity_held_out",
        "sensitivity_pool",
        "sensitivity_data_scaling",
        "sensitivity_summary",
        "sensitivity_table",
    }
    for rule, part in (
        ("sensitivity_hypercleaning", "hypercleaning"),
        ("sensitivity_omniglot", "omniglot"),
        ("sensitivity_data_scaling", "data_scaling"),
    ):
        assert planned.count(rule) == sum(run.part == part for run in runs)
    assert planned.count("sensitivity_pool") == len(config_of("offline")["sensitivity"]["data_scaling"]["pools"])
    assert "reproduction_report" not in planned and "data_fixtures" not in planned
    everything = snakemake(workflow, "-n", "sensitivity", "--config", "scale=offline", f"data_dir={data_dir}")
    assert {"sensitivity_table", "sensitivity_figure", "sensitivity"} <= set(planned_jobs(everything))


@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
def test_the_study_announces_the_rehearsals_estimate_before_its_first_job_and_what_is_left(tmp_path):
    workflow = copy_workflow(tmp_path)
    data_dir = fake_data_dir(tmp_path / "datasets", "offline")
    runs = study_runs(config_of("offline"))
    estimates = workflow / "paper_tables" / "rehearsal" / "full_run_estimates_jobs.csv"
    estimates.parent.mkdir(parents=True)
    rows = ["hypercleaning,krmd-K1_seed0", "hypercleaning,rmd_seed0", "omniglot,krmd-K1", "omniglot,rmd"]
    columns = "experiment,job,benchmark,estimate s,overhead s,s/iteration,s/exact,s/task\n"
    # 360 s a run, whatever its counts (the whole scale's announcement reads the benchmark and estimate columns)
    estimates.write_text(columns + "".join(f"{row},{row.replace(',', '/')}.tsv,1,360,0,0,0\n" for row in rows))
    # onstart (not in a dry run) announces it; --touch runs no job
    command = ("--cores", "2", "--touch", f"results/offline/sensitivity/{runs[0].job}.json")
    command += ("--config", "scale=offline", f"data_dir={data_dir}")
    hours = len(runs) * 360 / 3600
    line = f"The sensitivity study: {len(runs)} run(s), {hours:.1f} job-hours, at least {hours / 2:.1f} h on 2 core(s)"
    assert line in snakemake(workflow, *command).stderr
    for run in runs[:2]:
        done = workflow / "benchmarks" / "offline" / "sensitivity" / f"{run.benchmark}.tsv"
        done.parent.mkdir(parents=True, exist_ok=True)
        done.write_text("s\n360\n")
    left = (len(runs) - 2) * 360 / 3600
    assert (
        f"not yet run: {len(runs) - 2} run(s), {left:.1f} job-hours, at least {left / 2:.1f} h"
        in snakemake(workflow, *command).stderr
    )
