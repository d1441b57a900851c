"""The benchmark measures what it says: every field is filled, and both the state accounting and the
allocator peak grow with T for full RMD but not for K-RMD."""

import csv
import itertools
import math

import pytest

from truncback.experiments.complexity import benchmark
from truncback.experiments.complexity.benchmark import Case, run_case
from truncback.hypergrad import trees
from truncback.hypergrad.synthetic import PROBLEMS


def test_benchmark_cases_report_time_memory_and_states(monkeypatch):
    """Times from a fake clock (the real call, then the next of 0.3, 0.1, 0.2 s): a case's time is the
    fastest of its repeats, FMD's scaled from the directions measured to all of them."""
    fake_seconds = itertools.cycle([0.3, 0.1, 0.2])

    def fake_timed(function, *args, **kwargs):
        return function(*args, **kwargs), next(fake_seconds)

    monkeypatch.setattr(benchmark, "timed", fake_timed)
    cases = [
        run_case(Case("hypercleaning", method, T, K))
        for method, T, K in [("rmd", 3, None), ("rmd", 6, None), ("krmd", 3, 1), ("krmd", 6, 1), ("fmd", 2, None)]
    ]
    assert benchmark.TIMING_REPEATS == 3  # one of each fake time per case
    for case in cases:
        assert not math.isnan(case.peak_mib) and case.states_held >= 1
    assert [case.seconds for case in cases[:4]] == [0.1] * 4
    _, hparams = PROBLEMS["hypercleaning"](2)
    assert cases[4].seconds == pytest.approx(0.1 * trees.numel(hparams) / benchmark.FMD_DIRECTIONS, rel=1e-12)
    rmd3, rmd6, krmd3, krmd6, fmd = cases
    assert (rmd3.states_held, rmd6.states_held) == (4, 7)
    assert krmd3.states_held == krmd6.states_held == 2
    assert rmd6.state_mib > rmd3.state_mib > krmd3.state_mib == krmd6.state_mib
    state_mib = krmd3.state_mib / 2
    assert rmd6.peak_mib - rmd3.peak_mib >= 3 * state_mib * 0.99  # three more states kept
    assert abs(krmd6.peak_mib - krmd3.peak_mib) < 0.5 * state_mib  # K-RMD's peak does not grow with T
    assert "directions measured" in fmd.note


def test_a_method_the_problem_refuses_is_recorded_unmeasured_with_the_reason():
    """AID-CG on the conv net (I - A not positive definite): the benchmark goes on, the case is NaN
    with the solver's reason in its note."""
    case = run_case(Case("convnet", "aid_cg", 3, 25))
    assert math.isnan(case.seconds) and math.isnan(case.peak_mib)
    assert case.note.startswith("refused: conjugate gradient met non-positive curvature")


def test_the_products_benchmark_shows_the_threshold_s_pick_against_the_faster_kernel(tmp_path, capsys):
    """make bench's product table: each shape's pick follows the fixed threshold (oneDNN from 2^24
    multiply-adds on, where this torch has the operator), and the summary counts the shapes where the
    pick is the faster kernel as the rows do."""
    from truncback.cli import main
    from truncback.hypergrad.onednn import AVAILABLE, MIN_MULTIPLY_ADDS

    assert main(["bench-products", "--quick", "--threads", "1", "--output", str(tmp_path / "products.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "products.csv")))
    assert [(int(row["m"]) * int(row["k"]) * int(row["n"])) for row in rows] == [25 * 392 * 5, MIN_MULTIPLY_ADDS]
    assert [row["pass_picks"] for row in rows] == ["torch", "onednn" if AVAILABLE else "torch"]
    agreeing = sum(row["pick_is_faster"] == "True" for row in rows)
    assert f"picks the faster kernel for {agreeing} of 2 shapes on this machine" in capsys.readouterr().out
