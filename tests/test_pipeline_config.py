"""The pipeline's configuration: config/schema.yaml is generated from the settings dataclasses (each
default lives in one place), every overlay validates, and a bad key, value or method spec stops
Snakemake before any job runs, naming what is wrong."""

import copy

import pytest
import yaml
from snakemake.utils import validate

from dataclasses import asdict

from truncback.tools.config_schema import check_config, schema_text
from truncback.data.sources import archives_of
from truncback.experiments.hypercleaning.settings import HypercleaningSettings
from truncback.experiments.omniglot.settings import OmniglotSettings
from truncback.experiments.task_interaction.settings import TaskInteractionSettings
from truncback.experiments.toy.settings import ToySettings
from truncback.hypergrad import methods
from workflow_copy import REPO, SNAKEMAKE, copy_workflow, fake_data_dir, planned_jobs, snakemake

SCHEMA = str(REPO / "config" / "schema.yaml")


def load(name):
    return yaml.safe_load((REPO / "config" / name).read_text())


def merged(base, overlay):
    result = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def test_the_committed_schema_is_the_one_generated_from_the_settings_dataclasses():
    assert (
        (REPO / "config" / "schema.yaml").read_text() == schema_text()
    ), "config/schema.yaml is stale: run `python -m truncback config-schema --output config/schema.yaml`"


def test_schema_defaults_are_the_dataclass_defaults_and_config_yaml_departs_from_none():
    defaults = {}
    validate(defaults, SCHEMA)
    for section, settings in (
        ("hypercleaning", HypercleaningSettings),
        ("task_interaction", TaskInteractionSettings),
        ("omniglot", OmniglotSettings),
    ):
        built = settings.from_dict(defaults[section]["settings"])
        assert asdict(built) == asdict(settings()), section
    assert ToySettings.from_dict(defaults["toy"]) == ToySettings()
    assert defaults["omniglot"]["settings"]["eval_every"] == OmniglotSettings().eval_every
    assert merged(defaults, load("config.yaml")) == defaults
    check_config(defaults)


def test_the_method_schema_is_made_from_METHODS():
    assert yaml.safe_load((REPO / "config" / "schema.yaml").read_text())["$defs"]["method"] == methods.json_schema()


@pytest.mark.parametrize("scale", ["quick", "smoke"])
def test_each_reduced_scale_overlay_validates_and_reduces_the_toy(scale):
    config = merged(load("config.yaml"), {"scale": scale, **load(f"{scale}.yaml")})
    validate(config, SCHEMA)
    check_config(config)
    assert config["toy"]["hyper_iterations"] < ToySettings().hyper_iterations


def leaves(config: dict, prefix: str = "") -> dict:
    """Every setting of a nested config as {"section.key": value}."""
    found = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            found.update(leaves(value, f"{prefix}{key}."))
        else:
            found[f"{prefix}{key}"] = value
    return found


def test_the_offline_scale_keeps_every_paper_setting_but_its_data():
    paper = {}
    validate(paper, SCHEMA)
    offline = merged(paper, {"scale": "offline", **load("offline.yaml")})
    validate(offline, SCHEMA)
    check_config(offline)
    changed = {key for key, value in leaves(offline).items() if leaves(paper).get(key) != value}
    assert changed == {
        "scale",
        "hypercleaning.dataset",
        "hypercleaning.settings.n_val",
        "hypercleaning.settings.n_test",
        "omniglot.settings.split",
        "task_interaction.datasets",
        # the sensitivity study's data scaling: the offline files' alphabets, and how many characters
        "sensitivity.data_scaling.held_out",
        "sensitivity.data_scaling.pool_alphabets",
        "sensitivity.data_scaling.pools",
    }
    hypercleaning = offline["hypercleaning"]["settings"]
    assert (
        hypercleaning["n_train"] == 5000
        and sum(hypercleaning[f"n_{part}"] for part in ("train", "val", "test")) == 10_000
    )  # the paper's training set size; the MNIST test set, whole
    assert offline["task_interaction"]["datasets"] == []


@pytest.mark.parametrize(
    "change, named",
    [
        (
            {"hypercleaning": {"methods": [{"name": "krmd", "K": 500}]}},
            "config hypercleaning.methods[0] = {'name': 'krmd', 'K': 500}: method 'krmd': option K=500 is larger than "
            "the number of lower-level steps T=100",
        ),
        (
            {"task_interaction": {"methods": [{"name": "rmd"}, {"name": "rmd"}]}},
            "config task_interaction.methods: method label(s) ['rmd'] appear more than once",
        ),
        ({"omniglot": {"depth_from": "krmd-K3"}}, "config omniglot.depth_from='krmd-K3' is not the label of a run"),
        (
            {"complexity": {"T_values": [10, 100]}},
            "config complexity.methods[5] = {'name': 'krmd', 'K': 25}: method 'krmd': option K=25 is larger than the number "
            "of lower-level steps T=10 (the smallest of T_values)",
        ),
    ],
)
def test_check_config_names_the_key_at_fault(change, named):
    config = merged({}, change)
    validate(config, SCHEMA)
    with pytest.raises(ValueError) as error:
        check_config(config)
    assert named in str(error.value)


@pytest.fixture(scope="module")
def workflow_dir(tmp_path_factory):
    if SNAKEMAKE is None:
        pytest.skip("snakemake is not installed")
    return copy_workflow(tmp_path_factory.mktemp("workflow"))


@pytest.mark.parametrize(
    "setting, named",
    [
        ("bogus_key=1", "'bogus_key' was unexpected"),
        ("scale=nonsense", "'nonsense' is not one of ['full', 'offline', 'quick', 'smoke', 'rehearsal']"),
        ("scale=dryrun", "scale=dryrun is called scale=rehearsal"),
        ("threads=0", "0 is less than the minimum of 1"),
        ("device=tpu", "'tpu' is not one of ['auto', 'cpu', 'cuda']"),
    ],
)
def test_a_bad_setting_fails_before_any_job_naming_it(workflow_dir, setting, named):
    result = snakemake(workflow_dir, "--cores", "1", "-n", "--config", setting, expect_success=False)
    assert named in result.stderr + result.stdout
    assert not (workflow_dir / "results").exists()


def test_the_offline_scale_plans_hypercleaning_and_omniglot_on_the_offline_archives_and_no_task_interaction(
    workflow_dir, tmp_path
):
    data_dir = fake_data_dir(tmp_path / "datasets", "offline")
    result = snakemake(workflow_dir, "--cores", "1", "-n", "--config", "scale=offline", f"data_dir={data_dir}")
    output, planned = result.stdout, planned_jobs(result)
    assert planned.count("hypercleaning_run") == 5 and planned.count("omniglot_run") == 7
    assert not [name for name in planned if name.startswith("task_interaction") or "fixture" in name]
    assert "paper_tables/offline/reproduction_report.md" in output
    assert {item.key for item in archives_of("offline", "real")} == {
        "mnist_test_images",
        "mnist_test_labels",
        "omniglot_background_small1",
        "omniglot_background_small2",
    }


def test_the_offline_scale_announces_the_rehearsals_estimate_and_what_a_resumed_run_has_left(workflow_dir, tmp_path):
    data_dir = fake_data_dir(tmp_path / "datasets", "offline")
    estimates = workflow_dir / "paper_tables" / "rehearsal" / "full_run_estimates_jobs.csv"
    estimates.parent.mkdir(parents=True)
    estimates.write_text(
        "experiment,job,benchmark,estimate s\n"
        "hypercleaning,krmd-K1_seed0,hypercleaning/krmd-K1_seed0.tsv,3600\n"
        "omniglot,rmd,omniglot/rmd.tsv,7200\n"
        "task_interaction,cifar10/trial0_rmd,task_interaction/cifar10_trial0_rmd.tsv,99999\n"  # not at offline
    )
    # onstart (not in a dry run) announces it; --touch runs no job
    archive = "data/raw/mnist/t10k-labels-idx1-ubyte.gz"
    command = ("--cores", "2", archive, "--touch", "--config", "scale=offline", f"data_dir={data_dir}")
    whole = (
        "The whole offline scale: Expected run time of 2 job(s) of hypercleaning, omniglot, as the rehearsal "
        "estimated them on its machine (paper_tables/rehearsal/full_run_estimates_jobs.csv): 3.0 job-hours, "
        "at least 2.0 h on 2 core(s) at one thread per job"
    )
    assert f"{whole}\n" in snakemake(workflow_dir, *command).stderr
    done = workflow_dir / "benchmarks" / "offline" / "omniglot" / "rmd.tsv"
    done.parent.mkdir(parents=True)
    done.write_text("s\n7000\n")
    resumed = snakemake(workflow_dir, *command).stderr
    assert (
        f"{whole}; not yet run (no benchmark file in benchmarks/offline): 1 job(s), 1.0 job-hours, at least 1.0 h"
        in resumed
    )


@pytest.mark.parametrize("scale, figures", [("full", "figures"), ("smoke", "figures/smoke")])
def test_rule_all_asks_for_every_toy_figure_under_the_scale_folder(workflow_dir, scale, figures):
    output = snakemake(workflow_dir, "--cores", "1", "-n", "--config", f"scale={scale}").stdout
    for name in ("fig1_toy_bound", "fig2_toy_descent_ratio", "fig3_toy_biased_convergence", "fig4_toy_convergence"):
        for suffix in ("pdf", "png"):
            assert f"{figures}/{name}.{suffix}" in output


@pytest.mark.parametrize(
    "methods, named",
    [
        (
            "[{name: krmd, K: 500}]",
            "config hypercleaning.methods[0] = {'name': 'krmd', 'K': 500}: method 'krmd': option "
            "K=500 is larger than the number of lower-level steps T=100",
        ),
        (
            "[{name: nope}]",
            "'nope' is not one of ['aid_cg', 'aid_fp', 'checkpointed', 'fmd', 'fom', 'krmd', 'rmd', "
            "'ufom', 'unrolled']",
        ),
        ("[{name: krmd}]", "'K' is a required property"),
        ("[{name: rmd, K: 5}]", "Additional properties are not allowed ('K' was unexpected)"),
        ("[{name: ufom, q: 1.5}]", "1.5 is greater than the maximum of 1.0"),
    ],
)
def test_a_bad_method_spec_fails_before_any_job_naming_it(workflow_dir, tmp_path, methods, named):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text(f"hypercleaning:\n  methods: {methods}\n")
    result = snakemake(workflow_dir, "--cores", "1", "-n", "--configfile", str(overlay), expect_success=False)
    assert named in result.stderr + result.stdout
    assert not (workflow_dir / "results").exists()


@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
def test_one_paper_scale_figure_is_a_target_of_its_own_without_an_activated_environment(tmp_path):
    workdir = copy_workflow(tmp_path)
    snakemake(workdir, "--cores", "2", "figures/fig1_toy_bound.pdf", activated=False)
    made = sorted(str(path.relative_to(workdir)) for path in (workdir / "figures").rglob("*") if path.is_file())
    assert made == ["figures/fig1_toy_bound.pdf", "figures/fig1_toy_bound.png"]
    raw = sorted(path.name for path in (workdir / "results" / "full" / "toy").iterdir())
    assert raw == ["bound.json", "landscape.npz", "optimum.json"]


@pytest.mark.parametrize("batched, jobs", [(False, 2 * 2 * 3), (True, 2 * 3)])
def test_task_interaction_runs_one_job_per_trial_or_batches_a_method_s_trials(workflow_dir, tmp_path, batched, jobs):
    """smoke: 2 datasets, 2 trials, 3 methods; batch_trials: one job per (dataset, method) instead."""
    overlay = tmp_path / "batch.yaml"
    overlay.write_text(f"task_interaction:\n  batch_trials: {str(batched).lower()}\n")
    command = ("--cores", "1", "-n", "-p", "--configfile", str(overlay), "--config", "scale=smoke")
    table = snakemake(workflow_dir, "paper_tables/smoke/table3_task_interaction.md", *command)
    assert planned_jobs(table).count("task_interaction_run") == jobs
    # both run the batched command (one trial each: a batch of one)
    printed = table.stdout + table.stderr
    assert "python -m truncback task-interaction-trials" in printed
    assert ("--trials 0 1 " in printed) == batched
