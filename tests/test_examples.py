"""The programs in examples/ run at their small size and show what they claim: the hypergradient
agrees with an exact one where the method is exact, and hyper-training moves the outer objective the
right way."""

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_weight_decay_of_an_mlp(torch_state_restored):
    result = example("weight_decay_mlp").run("small")
    assert result["krmd_K_equals_T_vs_unrolled"] < 1e-5  # K = T: exact
    assert result["last_val_loss"] < result["first_val_loss"]


def test_an_initialisation_learnt_across_tasks(torch_state_restored):
    results = example("maml_init").run("small")
    assert sorted(results) == ["fom", "krmd-K4", "ufom-q0.2"]
    assert results["krmd-K4"]["error_at_start"] < 1e-5  # K = T: the exact meta-gradient
    assert results["fom"]["error_at_start"] > 0.05  # first order: the second-order terms matter here
    for label, result in results.items():
        assert result["validation_loss_after"] < result["validation_loss_before"], label


def test_reweighting_with_aid_and_a_solver_of_ones_own(torch_state_restored):
    result = example("reweight_aid").run("small")
    assert result["aid_vs_rmd"]["richardson"] < 1e-3 and result["aid_vs_rmd"]["aid_cg"] < 1e-6
    assert result["mean_weight_flipped"] < 0.5 * result["mean_weight_clean"]
