"""The pipeline's configuration: schema defaults are the paper scale, every overlay validates, and a
bad key or value stops Snakemake before any job runs, naming what is wrong."""

import copy

import pytest
import yaml
from snakemake.utils import validate

from workflow_copy import REPO, SNAKEMAKE, copy_workflow, snakemake

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


def test_schema_defaults_are_the_paper_scale_config():
    defaults = {}
    validate(defaults, SCHEMA)
    assert defaults == load("config.yaml")


@pytest.mark.parametrize("scale", ["quick", "smoke"])
def test_each_reduced_scale_overlay_validates_and_reduces_the_toy(scale):
    config = merged(load("config.yaml"), {"scale": scale, **load(f"{scale}.yaml")})
    validate(config, SCHEMA)
    assert config["toy"]["hyper_iterations"] < load("config.yaml")["toy"]["hyper_iterations"]


@pytest.fixture(scope="module")
def workflow_dir(tmp_path_factory):
    if SNAKEMAKE is None:
        pytest.skip("snakemake is not installed")
    return copy_workflow(tmp_path_factory.mktemp("workflow"))


@pytest.mark.parametrize("setting, named", [
    ("bogus_key=1", "'bogus_key' was unexpected"),
    ("scale=nonsense", "'nonsense' is not one of ['full', 'quick', 'smoke']"),
    ("threads=0", "0 is less than the minimum of 1"),
    ("device=tpu", "'tpu' is not one of ['auto', 'cpu', 'cuda']"),
])
def test_a_bad_setting_fails_before_any_job_naming_it(workflow_dir, setting, named):
    result = snakemake(workflow_dir, "--cores", "1", "-n", "--config", setting, expect_success=False)
    assert named in result.stderr + result.stdout
    assert not (workflow_dir / "results").exists()


@pytest.mark.parametrize("scale, figures", [("full", "figures"), ("smoke", "figures/smoke")])
def test_rule_all_asks_for_every_toy_figure_under_the_scale_folder(workflow_dir, scale, figures):
    output = snakemake(workflow_dir, "--cores", "1", "-n", "--config", f"scale={scale}").stdout
    for name in ("fig1_toy_bound", "fig2_toy_descent_ratio", "fig3_toy_biased_convergence", "fig4_toy_convergence"):
        for suffix in ("pdf", "png"):
            assert f"{figures}/{name}.{suffix}" in output
