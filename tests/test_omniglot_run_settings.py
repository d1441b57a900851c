"""A Table 4 run may carry settings of its own over the section's (the short horizon's bound of gamma,
docs/assumptions.md): the run's command meta-trains with them, every other run with the section's, and a
bad key or value is refused naming the run."""

import json
import re

import pytest

from truncback.experiments.omniglot.settings import (
    GAMMA_MAX,
    GAMMA_MAX_SHORT_HORIZON,
    OmniglotRun,
    OmniglotSection,
    OmniglotSettings,
)
from workflow_copy import SNAKEMAKE, copy_workflow, snakemake

SHORT = {"method": {"name": "rmd"}, "T": 1, "iterations": 4, "milestones": [4]}


def test_run_settings_go_over_the_sections():
    section = OmniglotSettings.from_dict({"filters": 8})
    _, applied = OmniglotRun.from_dict({**SHORT, "settings": {"gamma_max": 0.02, "init_gamma": 0.01}}).prepared(section)
    assert (applied.gamma_max, applied.init_gamma, applied.filters) == (0.02, 0.01, 8)
    _, plain = OmniglotRun.from_dict({**SHORT, "T": None}).prepared(section)
    assert plain == section


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"gama_max": 0.02}, r"unknown omniglot setting\(s\) \['gama_max'\]"),
        ({"T": 3}, r"settings may not set T"),
        ({"gamma_max": 0.002}, r"init_gamma=0.003 must lie strictly between 0 and gamma_max=0.002"),
    ],
)
def test_bad_run_settings_are_refused_naming_the_run(settings, message):
    with pytest.raises(ValueError, match=message) as error:
        OmniglotRun.from_dict({**SHORT, "settings": settings}).checked(OmniglotSettings())
    assert "rmd" in str(error.value)


def test_the_short_horizon_has_its_own_bound_and_the_others_the_sections():
    defaults = OmniglotSection.defaults()["runs"]
    for entry in defaults:
        run, applied = OmniglotRun.from_dict(entry).prepared(OmniglotSettings())
        expected = GAMMA_MAX_SHORT_HORIZON if run.horizon(OmniglotSettings()) == 1 else GAMMA_MAX
        assert applied.gamma_max == expected
        assert applied.init_gamma == expected / 2


@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
def test_the_pipeline_passes_each_run_its_own_settings(tmp_path):
    """The smoke DAG's short-horizon command gets gamma_max = 0.011 as its own --run-settings, every run
    the section's --settings alike (so Table 4's runs share them)."""
    workdir = copy_workflow(tmp_path)
    target = "paper_tables/smoke/table4_omniglot.md"
    planned = snakemake(workdir, "--cores", "1", "--config", "scale=smoke", "-n", "-p", target).stdout
    commands = [line for line in planned.splitlines() if "python -m truncback omniglot " in line]
    assert commands, planned[-2000:]
    shared, own = [], {}
    for command in commands:
        name = re.search(r"--output \S*/omniglot/([^/ ]+)\.json", command).group(1)
        shared.append(re.search(r"--settings '(\{.*?\})'", command).group(1))
        found = re.search(r"--run-settings '(\{.*?\})'", command)
        own[name] = json.loads(found.group(1)) if found else {}
    assert len(set(shared)) == 1
    assert {name: values for name, values in own.items() if values} == {
        "rmd-T1": {"gamma_max": 0.011, "init_gamma": 0.0055}
    }
