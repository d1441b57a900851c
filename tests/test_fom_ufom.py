"""The FOM vs UFOM experiment (Likhosherstov et al. 2021): the closed forms agree with the engine, FOM's
SGD stalls at its floor while UFOM's goes below it, UFOM is unbiased with the variance and step count
the theory gives, its memory does not grow with T, and the commands write the same bytes twice."""

import argparse
import json

import numpy as np
import pytest
import torch

from truncback.experiments.fom_ufom import figure, run, table
from truncback.experiments.fom_ufom.problem import TaskFamily, bilevel_problem
from truncback.experiments.fom_ufom.settings import FomUfomSettings
from truncback.hypergrad import fom, rmd, ufom

SMOKE = {
    "d": 2,
    "tasks_per_type": 2,
    "T": 10,
    "seeds": 1,
    "iterations": 150,
    "draws": 60,
    "estimator_q": [0.2, 1.0],
    "memory_T": [5, 10],
}
"""The smoke scale recommended for the config (a few seconds per command)."""


def quiet(message: str) -> None:
    """A progress log that drops its lines."""


@pytest.fixture(scope="module")
def family():
    return run.task_family(FomUfomSettings())


def random_lam(rng, d):
    return 2 * torch.rand(d, generator=rng, dtype=torch.float64) - 1


@pytest.mark.parametrize("task", [0, 5])
def test_exact_closed_form_equals_the_engines_rmd(rng, family, task):
    lam = random_lam(rng, family.curvature.shape[1])
    h, info = rmd(bilevel_problem(family, task), lam, return_info=True)
    np.testing.assert_allclose(h.numpy(), family.task_gradients(lam.numpy())[task], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(info.final_state.numpy(), family.final_state(lam.numpy())[task], rtol=1e-12)
    assert info.outer_loss == pytest.approx(0.5 * np.sum(family.fom_estimates(lam.numpy())[task] ** 2), rel=1e-12)


@pytest.mark.parametrize("task", [0, 5])
def test_fom_closed_form_equals_the_engines_fom_and_ufom_at_q1_is_exact(rng, family, task):
    lam = random_lam(rng, family.curvature.shape[1])
    problem = bilevel_problem(family, task)
    np.testing.assert_allclose(
        fom(problem, lam).numpy(), family.fom_estimates(lam.numpy())[task], rtol=1e-10, atol=1e-14
    )
    np.testing.assert_allclose(
        ufom(problem, lam, 1.0).numpy(), family.task_gradients(lam.numpy())[task], rtol=1e-10, atol=1e-14
    )


def test_stationary_and_fom_fixed_points_solve_their_equations_and_the_floor_is_large(family):
    assert np.linalg.norm(family.gradient(family.stationary_point())) < 1e-12
    assert np.linalg.norm(family.fom_estimates(family.fom_fixed_point()).mean(axis=0)) < 1e-12
    floor = family.fom_floor()
    assert floor > 0.1 * np.max(family.gradient_norm(np.eye(family.curvature.shape[1])))
    assert family.value(family.stationary_point()) < family.value(family.fom_fixed_point())


def test_a_single_curvature_makes_fom_unbiased_up_to_a_scale():
    uniform = TaskFamily.draw(3, (0.5, 0.5), (0.0, 1.0), 3, 0.2, 0.1, 10, 0)
    assert uniform.fom_floor() < 1e-12


def test_fom_stalls_at_its_floor_and_ufom_goes_below_it():
    settings = FomUfomSettings.from_dict(SMOKE)
    result, timing = run.paths(settings, quiet)
    floor = result["family"]["fom_floor"]
    final = {r["label"]: r["exact_norm"][-1] for r in result["runs"]}
    assert final["fom"] > 0.5 * floor
    assert final["ufom-q0.2"] < 0.3 * floor
    assert sorted(timing["seconds_per_iteration"]) == ["fom", "ufom-q0.2"]


def test_ufom_is_unbiased_with_the_theoretical_variance_and_step_count():
    settings = FomUfomSettings.from_dict({**SMOKE, "T": 5})
    family, task, q, draws = run.task_family(settings), run.estimator_task(settings), 0.3, 400
    lam = run.seeded_lam(settings, "fom_ufom/estimator_lam", 0)
    estimates, steps, _ = run.ufom_draws(bilevel_problem(family, task), lam, q, draws)
    exact, first_order = family.task_gradients(lam.numpy())[task], family.fom_estimates(lam.numpy())[task]
    study = run.estimator_statistics(estimates, steps, exact, first_order, settings.T, q)
    assert study["max_standardised_bias"] < 4
    assert study["variance"] == pytest.approx(study["variance_theory"], rel=0.2)
    correction = run.expected_step_evaluations(5, 1.0) - run.expected_step_evaluations(5, 0.0)
    assert set(steps.tolist()) <= {10, 10 + correction}
    binomial_se = correction * np.sqrt(q * (1 - q) / draws)
    assert abs(study["steps_mean"] - study["steps_expected"]) < 4 * binomial_se


def test_states_held_are_constant_in_T_for_fom_and_ufom_and_grow_for_rmd():
    settings = FomUfomSettings.from_dict({**SMOKE, "memory_T": [3, 6, 12]})
    memory = run.memory(settings, quiet)
    assert memory["states_held"] == {"fom": [2, 2, 2], "ufom_exact_branch": [3, 3, 3], "rmd": [4, 7, 13]}
    assert memory["step_evaluations"]["fom"] == [6, 12, 24]
    assert memory["step_evaluations"]["ufom_exact_branch"] == [
        run.expected_step_evaluations(T, 1.0) for T in (3, 6, 12)
    ]


def test_settings_reject_mismatched_offsets_and_unknown_keys():
    with pytest.raises(ValueError, match="validation_offsets"):
        FomUfomSettings.from_dict({"validation_offsets": [0.0, 1.0, 2.0]})
    with pytest.raises(ValueError, match="alpha"):
        FomUfomSettings.from_dict({"alpha": 2.5})
    with pytest.raises(ValueError, match="unknown"):
        FomUfomSettings.from_dict({"tasks": 3})


def command(*argv):
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in (run, figure, table):
        module.register(subparsers)
    args = parser.parse_args([str(arg) for arg in argv])
    assert args.run(args) == 0


def run_all(directory, settings: str) -> None:
    """Both parts, the figure and the three tables, into ``directory``."""
    for part in ("paths", "estimator"):
        command("fom-ufom", part, "--settings", settings, "--output", directory / f"{part}.json")
    command(
        "figure-fom-ufom",
        "--paths",
        directory / "paths.json",
        "--estimator",
        directory / "estimator.json",
        "--output",
        directory / "figure",
    )
    for part, results in (("paths", "paths"), ("estimator", "estimator"), ("memory", "estimator")):
        command("table-fom-ufom", part, "--results", directory / f"{results}.json", "--output", directory / part)


def test_commands_write_the_same_results_and_figure_twice_and_no_seconds_in_results(tmp_path, torch_state_restored):
    tiny = json.dumps({**SMOKE, "iterations": 20, "draws": 10, "memory_T": [4]})
    first, second = tmp_path / "first", tmp_path / "second"
    for directory in (first, second):
        directory.mkdir()
        run_all(directory, tiny)
    for name in ("paths.json", "estimator.json", "figure.pdf", "figure.png", "memory.csv"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    for name in ("paths", "estimator"):  # the times live in the timing file, none in the results
        results = json.loads((first / f"{name}.json").read_text())
        timing = json.loads((first / f"{name}.timing.json").read_text())
        measured = set(timing) - {"code_version"}
        assert measured and measured.isdisjoint(keys_of(results)), (name, measured)
    for part in ("paths", "estimator", "memory"):
        assert all((first / f"{part}{suffix}").is_file() for suffix in (".csv", ".md", ".tex", ".html"))


def keys_of(value) -> set[str]:
    """Every key of a JSON value, at any depth."""
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in keys_of(item)}
    if isinstance(value, list):
        return {key for item in value for key in keys_of(item)}
    return set()


def fake_paths(fom_tail: float, ufom_tail: float, floor: float = 0.6) -> dict:
    return {
        "family": {"fom_floor": floor},
        "settings": {"tail_fraction": 0.5},
        "runs": [
            {"spec": {"name": "fom"}, "exact_norm": [2.0, 1.0, fom_tail, fom_tail]},
            {"spec": {"name": "ufom", "q": 0.2}, "exact_norm": [2.0, 1.0, ufom_tail, ufom_tail]},
        ],
    }


def fake_estimator(z: float, exact_branch_steps) -> dict:
    T = [10, 20, 40, 80]
    row = {
        "q": 0.2,
        "max_standardised_bias": z,
        "steps_mean": 86.0 + z * 6.0,
        "steps_expected": 86.0,
        "steps_standard_error": 6.0,
    }
    return {
        "settings": {"draws": 200},
        "unbiasedness": {"by_q": [row], "fom": [1.0, 0.0], "exact": [0.5, 0.0]},
        "memory": {
            "T": T,
            "states_held": {"fom": [2] * 4, "ufom_exact_branch": [3] * 4, "rmd": [t + 1 for t in T]},
            "step_evaluations": {"fom": [2 * t for t in T], "ufom_exact_branch": exact_branch_steps},
        },
    }


def test_the_fom_ufom_claims_pass_and_fail_on_the_numbers_they_name():
    from truncback.reproduction.claims import (
        FAIL,
        NOT_RUN,
        PASS,
        fom_does_not_converge,
        ufom_constant_memory_and_time,
        ufom_unbiased,
    )
    from truncback.reproduction.evidence import Evidence

    def judged(claim, **results):
        return claim(Evidence("quick", fom_ufom=results)).verdict

    assert judged(fom_does_not_converge, paths=fake_paths(0.55, 0.1)) == PASS
    assert judged(fom_does_not_converge, paths=fake_paths(0.2, 0.1)) == FAIL  # FOM got below half its floor
    assert judged(fom_does_not_converge, paths=fake_paths(0.55, 0.4)) == FAIL  # UFOM did not get away from it
    quadratic = [3 * t + t * (t + 1) // 2 for t in (10, 20, 40, 80)]
    assert judged(ufom_unbiased, estimator=fake_estimator(1.2, quadratic)) == PASS
    assert judged(ufom_unbiased, estimator=fake_estimator(5.0, quadratic)) == FAIL
    assert judged(ufom_constant_memory_and_time, estimator=fake_estimator(1.2, quadratic)) == PASS
    assert judged(ufom_constant_memory_and_time, estimator=fake_estimator(5.0, quadratic)) == FAIL
    assert judged(ufom_constant_memory_and_time, estimator=fake_estimator(1.2, [40, 80, 160, 320])) == FAIL
    assert judged(ufom_unbiased) == NOT_RUN
