"""What a user gives Snakemake, as a reviewer would try it: every mistake stops before any job with one
line naming what is at fault and no traceback (a bad method spec in a config file, a value the schema
refuses, a data_dir that is not there, methods on the command line as labels, a target no rule makes),
and methods given on the command line as labels are planned as a config file's specs are."""

import pytest

from truncback.pipeline.config_input import ConfigError, methods_from_labels, target_hint
from workflow_copy import SNAKEMAKE, copy_workflow, error_line, snakemake

LABELS_OF = "choose one of ['aid_cg', 'aid_fp', 'checkpointed', 'fmd', 'fom', 'krmd', 'rmd', 'ufom', 'unrolled']"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    if SNAKEMAKE is None:
        pytest.skip("snakemake is not installed")
    return copy_workflow(tmp_path_factory.mktemp("workflow"))


def refused(workdir, *args) -> str:
    return error_line(snakemake(workdir, "--cores", "1", "-n", *args, expect_success=False))


def test_a_bad_method_spec_in_a_config_file_is_one_line(workdir, tmp_path):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("hypercleaning:\n  methods: [{name: krmd, K: 500}]\n")
    assert refused(workdir, "--configfile", str(overlay)) == (
        "Error: config hypercleaning.methods[0] = {'name': 'krmd', 'K': 500}: method 'krmd': option K=500 is "
        "larger than the number of lower-level steps T=100"
    )


@pytest.mark.parametrize(
    "setting, line",
    [
        (
            "scale=nonsense",
            "Error: config scale: 'nonsense' is not one of ['full', 'offline', 'quick', 'smoke', 'rehearsal']",
        ),
        ("bogus_key=1", "Error: config: Additional properties are not allowed ('bogus_key' was unexpected)"),
        (
            "hypercleaning={methods: [{name: krmd, K: 5}]}",  # Snakemake passes nested values as strings
            "Error: config hypercleaning.methods[0].K: '5' is not of type 'integer' (on the command line give "
            "methods as labels: --config hypercleaning_methods=krmd-K5,rmd)",
        ),
        (
            "hypercleaning_methods=krmd-K500,rmd",
            "Error: --config hypercleaning_methods=krmd-K500,rmd: config hypercleaning.methods[0] = {'name': 'krmd', "
            "'K': 500}: method 'krmd': option K=500 is larger than the number of lower-level steps T=100",
        ),
        (
            "hypercleaning_methods=krmd-K5,nope",
            f"Error: --config hypercleaning_methods=krmd-K5,nope: method 'nope' is unknown; {LABELS_OF}",
        ),
        (
            "task_interaction_methods=rmd,rmd",
            "Error: --config task_interaction_methods=rmd,rmd: config task_interaction.methods: method label(s) "
            "['rmd'] appear more than once (each names a result file)",
        ),
    ],
)
def test_a_bad_config_value_is_one_line_naming_it(workdir, setting, line):
    assert refused(workdir, "--config", setting) == line


def test_a_missing_data_dir_is_one_line(workdir, tmp_path):
    line = refused(workdir, "--config", "scale=quick", f"data_dir={tmp_path / 'nowhere'}")
    assert line.startswith(f"Error: data_dir {tmp_path / 'nowhere'} does not exist")


def test_methods_given_as_labels_are_the_runs_planned(workdir):
    result = snakemake(
        workdir,
        "--cores",
        "1",
        "-n",
        "--config",
        "scale=smoke",
        "hypercleaning_methods=krmd-K2,rmd",
        "task_interaction_methods=[krmd-K3, ufom-q0.5]",
    )
    output = result.stdout + result.stderr
    for run in ("hypercleaning/krmd-K2_seed0.json", "hypercleaning/rmd_seed0.json"):
        assert f"results/smoke/{run}" in output
    assert "results/smoke/hypercleaning/krmd-K1_seed0.json" not in output
    assert "results/smoke/task_interaction/cifar10/trial0_ufom-q0.5.json" in output
    assert "results/smoke/task_interaction/cifar10/trial0_krmd-K3.json" in output
    assert "trial0_rmd.json" not in output


def test_labels_become_the_specs_a_config_file_would_give():
    config = {"hypercleaning_methods": "krmd-K1,aid_cg-K10,ufom-q0.2", "complexity_methods": ["rmd"], "scale": "smoke"}
    given = methods_from_labels(config)
    assert config == {
        "scale": "smoke",
        "hypercleaning": {
            "methods": [{"name": "krmd", "K": 1}, {"name": "aid_cg", "K": 10}, {"name": "ufom", "q": 0.2}]
        },
        "complexity": {"methods": [{"name": "rmd"}]},
    }
    assert given == {
        "hypercleaning": "--config hypercleaning_methods=krmd-K1,aid_cg-K10,ufom-q0.2",
        "complexity": "--config complexity_methods=rmd",
    }
    with pytest.raises(ConfigError, match=r"^--config hypercleaning_methods=None: give one or more method labels"):
        methods_from_labels({"hypercleaning_methods": None})  # `--config hypercleaning_methods=`
    with pytest.raises(ConfigError, match=r"'-K' does not start with an option of 'krmd'"):
        methods_from_labels({"hypercleaning_methods": "krmd-K"})


@pytest.mark.parametrize(
    "target, line",
    [
        (
            "figures/quick/fig1_toy_bound.png",
            "Error: figures/quick/fig1_toy_bound.png lies in the folder of scale=quick, and this run is scale=smoke: the "
            "folder of a target must match the scale; add --config scale=quick after the targets, or ask for "
            "figures/smoke/fig1_toy_bound.png",
        ),
        (
            "paper_tables/table4_omniglot.md",
            "Error: paper_tables/table4_omniglot.md lies in the folder of scale=full, and this run is scale=smoke: the "
            "folder of a target must match the scale; add --config scale=full after the targets, or ask for "
            "paper_tables/smoke/table4_omniglot.md",
        ),
        (
            "figures/smoke/fig1_toy_bund.png",
            "Error: no rule makes figures/smoke/fig1_toy_bund.png at scale=smoke; the nearest: "
            "figures/smoke/fig1_toy_bound.png, figures/smoke/fig1_toy_bound.pdf, figures/smoke/fig4_toy_convergence.png "
            "(`snakemake --list-target-rules` lists the rules, `snakemake -n` the files of rule all)",
        ),
    ],
)
def test_a_target_no_rule_makes_gets_a_hint(workdir, target, line):
    assert refused(workdir, target, "--config", "scale=smoke") == line


def test_a_misspelt_target_in_another_scale_s_folder_is_told_both():
    known = ["figures/smoke/fig1_toy_bound.png", "figures/smoke/fig2_toy_descent_ratio.png", "toy_reference"]
    hint = target_hint("figures/quick/fig1_toy_bund.png", "smoke", ["quick", "smoke"], known.__contains__, known)
    assert hint == (
        "figures/quick/fig1_toy_bund.png lies in the folder of scale=quick, and this run is scale=smoke: the folder "
        "of a target must match the scale; add --config scale=quick after the targets (at scale=smoke, the nearest: "
        "figures/smoke/fig1_toy_bound.png, figures/smoke/fig2_toy_descent_ratio.png)"
    )
