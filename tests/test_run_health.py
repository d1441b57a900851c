"""Every run records how healthy its lower level was, and the report says so: a run whose inner loop
diverges (a step size too long for the curvature) is UNSTABLE in its record and in the report's "Run
health" section, a run at a step size that suits the curvature is STABLE; the criteria in isolation."""

import json
import math

import pytest
import torch

from experiment_data import write_inputs
from truncback.cli import main as cli
from truncback.experiments.hypercleaning.run import HypercleaningResult
from truncback.hypergrad import BilevelProblem, gradient_descent, heavy_ball
from truncback.runtime.files import read_result
from truncback.runtime.harness import LoopSettings, Objective, hyper_optimise
from truncback.runtime.health import GROWTH_LIMIT, STABLE, UNSTABLE, lower_objectives, run_health

SETTINGS = {
    "compile": False,
    "n_train": 200,
    "n_val": 100,
    "n_test": 200,
    "T": 20,
    "hyper_lr": 0.3,
    "hyper_iterations": 4,
    "exact_every": 2,
}


@pytest.fixture(autouse=True)
def keep_torch_settings():
    """The commands switch on deterministic algorithms and set the thread count; restore both."""
    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    yield
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)


def run_hypercleaning(data, method: str, lr: float, output) -> HypercleaningResult:
    settings = json.dumps({**SETTINGS, "lr": lr})
    command = ["hypercleaning", "--data", str(data), "--settings", settings, "--method", method, "--threads", "1"]
    assert cli([*command, "--device", "cpu", "--output", str(output)]) == 0
    return read_result(output, HypercleaningResult)


def test_a_diverging_lower_level_is_unstable_in_the_record_and_the_report_and_not_judged(tmp_path):
    inputs = write_inputs(tmp_path / "inputs")
    runs = tmp_path / "results" / "quick" / "hypercleaning"  # the quick scale: Table 2's data are real
    # gradient descent on the mean cross-entropy of these 785 features: gamma = 0.015 descends,
    # gamma = 0.5 is past 2 / curvature and makes g grow along the inner loop
    stable = run_hypercleaning(inputs["mnist"], "rmd", 0.015, runs / "stable.json")
    unstable = run_hypercleaning(inputs["mnist"], "krmd-K1", 0.5, runs / "unstable.json")

    assert stable.run.health["verdict"] == STABLE and stable.run.lower_divergences == 0
    assert all(end < start for start, end in zip(stable.run.train["lower_start"], stable.run.train["lower_end"]))
    assert unstable.run.health["verdict"] == UNSTABLE
    assert unstable.run.lower_divergences == 4  # one problem a hyper-iteration, each ending above its start
    assert unstable.run.health["reasons"] == ["lower level diverged in 4 problem(s)"]
    for record in (stable.run, unstable.run):
        assert len(record.train["clip_scale"]) == len(record.train["lower_end"]) == record.iterations_run == 4
        assert record.train["clip_scale"] == [1.0] * 4  # hypercleaning does not clip
        assert record.exact["estimate_norm"] == [
            record.train["hypergradient_norm"][i] for i in record.exact["iteration"]
        ]

    report = tmp_path / "report.md"
    command = ["reproduction-report", "--scale", "quick", "--reference", "config/paper_reference.yaml"]
    hypercleaning = ["--hypercleaning", str(runs / "stable.json"), str(runs / "unstable.json")]
    assert cli([*command, *hypercleaning, "--output", str(report)]) == 0
    text = report.read_text()
    section = text[text.index("## Run health") :]
    section = section[: section.index("\n## ", 1)]
    assert "**Hypercleaning (Table 2)**: 1 of 2 run(s) stable; UNSTABLE: 1-RMD seed 0." in section
    rows = {
        line.split("|")[1].strip(): line.split("|")[2].strip() for line in section.splitlines() if line.startswith("| ")
    }
    assert {"Full RMD seed 0": STABLE, "1-RMD seed 0": UNSTABLE}.items() <= rows.items()
    # the unstable run's numbers are shown, not judged, and so is the claim drawn from it
    table_rows = [line for line in text.splitlines() if line.startswith("| 2 ") and "1-RMD" in line]
    assert len(table_rows) == 4 and all(line.rstrip(" |").endswith(UNSTABLE) for line in table_rows)
    assert "Table numbers: 0 of 0 compared within tolerance, 4 from UNSTABLE runs not judged." in text
    assert "- **small_k_matches_full: UNSTABLE.** Table 2: 1-RMD" in text
    assert "not judged: UNSTABLE run(s) 1-RMD seed 0" in text


def test_the_exact_hypergradient_growing_past_the_limit_is_unstable():
    calm = {"start": [2.0, 2.0], "end": [1.0, 1.5], "divergences": 0}
    assert run_health([1.0, 0.5 * GROWTH_LIMIT, 2.0], [1.0, 1.0, 1.0], 0, 3, calm)["verdict"] == STABLE
    health = run_health([2.0, 3.0, 2.0 * GROWTH_LIMIT * 1.5], [1.0, 0.5, 0.25], 2, 3, calm)
    assert health["verdict"] == UNSTABLE and health["exact_growth"] == pytest.approx(1.5 * GROWTH_LIMIT)
    assert health["clipped_fraction"] == pytest.approx(2 / 3) and health["largest_clip_factor"] == 4.0
    assert health["lower_loss_ratio_largest"] == 0.75
    assert run_health([1.0, math.inf], [1.0], 0, 1, calm)["verdict"] == UNSTABLE


def test_an_exact_hypergradient_that_is_not_finite_anywhere_is_unstable():
    """max() skips a NaN that is not first, and a NaN first norm leaves no growth to compare: neither may
    pass as STABLE (a K-RMD run checks only its own h for finiteness, not the exact comparison's)."""
    calm = {"start": [2.0, 2.0, 2.0], "end": [1.0, 1.0, 1.0], "divergences": 0}
    for norms in ([1.0, math.nan, 2.0], [math.nan, 5.0, 4.0], [1.0, 2.0, -math.inf]):
        health = run_health(norms, [1.0, 1.0, 1.0], 0, 3, calm)
        assert health["verdict"] == UNSTABLE, norms
        assert health["exact_norms_not_finite"] == 1
        assert any("not finite at 1 of 3" in reason for reason in health["reasons"])
    health = run_health([1.0, math.nan, 2.0], [1.0, 1.0, 1.0], 0, 3, calm)
    assert health["exact_norm_largest"] == 2.0 and health["exact_growth"] == 2.0


def test_the_lower_objective_is_g_at_the_start_and_the_end_of_the_inner_loop():
    A = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64)

    def g(w, lam):
        return 0.5 * w @ A @ w - lam @ w

    lam = torch.tensor([1.0, -1.0], dtype=torch.float64)
    w0 = torch.tensor([0.5, 0.5], dtype=torch.float64)
    wT = torch.tensor([0.1, -0.3], dtype=torch.float64)
    problem = BilevelProblem(lambda lam: w0, gradient_descent(g, 0.1), lambda w, lam: w.sum(), 3)
    assert lower_objectives(problem, lam, wT) == (pytest.approx(float(g(w0, lam))), pytest.approx(float(g(wT, lam))))
    momentum = BilevelProblem(
        lambda lam: (w0, torch.zeros(2, dtype=torch.float64)), heavy_ball(g, 0.1, 0.9), lambda s, lam: s[0].sum(), 3
    )
    assert lower_objectives(momentum, lam, (wT, w0))[1] == pytest.approx(float(g(wT, lam)))
    opaque = BilevelProblem(lambda lam: w0, lambda w, lam, t: 0.5 * w, lambda w, lam: w.sum(), 3)
    assert lower_objectives(opaque, lam, wT) is None


class Quadratic(Objective):
    """g(w, lam) = ||w - lam||^2 / 2 from w_0 = 0, f(w) = ||w - 3||^2 / 2; tracks lam's first entry."""

    def problems(self, iteration):
        return [
            BilevelProblem(
                lambda lam: torch.zeros(2, dtype=torch.float64),
                gradient_descent(lambda w, lam: 0.5 * torch.sum((w - lam) ** 2), 0.5),
                lambda w, lam: 0.5 * torch.sum((w - 3.0) ** 2),
                4,
            )
        ]

    def tracked(self, hparams):
        return {"first": float(hparams[0])}


def test_the_harness_records_the_clip_factor_the_lower_objective_and_the_tracked_values():
    lam = torch.tensor([0.0, 1.0], dtype=torch.float64)
    loop = LoopSettings(iterations=3, hyper_lr=0.1, hyper_optimizer="sgd", clip_norm=0.5, exact_every=1, log_every=2)
    record = hyper_optimise(Quadratic(), lam, {"name": "rmd"}, loop, log=lambda line: None).record
    # w_T = (1 - 0.5^4) lam, so d f / d lam = (1 - 0.5^4)^2 lam - 3 (1 - 0.5^4), longer than 0.5 here
    shrink = 1 - 0.5**4
    for norm, scale in zip(record.train["hypergradient_norm"], record.train["clip_scale"]):
        assert scale == pytest.approx(0.5 / norm)
    first = torch.linalg.vector_norm(shrink**2 * lam - 3 * shrink).item()
    assert record.train["hypergradient_norm"][0] == pytest.approx(first)
    assert record.clipped_steps == 3 and record.health["clipped_fraction"] == 1.0
    # g(w_0) = ||lam||^2 / 2 = 0.5 at the start, g(w_T) = (0.5^4)^2 ||lam||^2 / 2
    assert record.train["lower_start"][0] == pytest.approx(0.5)
    assert record.train["lower_end"][0] == pytest.approx(0.5**8 * 0.5)
    assert record.tracked["iteration"] == [0, 2] and record.tracked["first"][0] == 0.0
    assert record.tracked["first"][1] > 0  # lam moved towards 3 / shrink
    assert record.health["verdict"] == STABLE
