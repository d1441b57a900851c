"""The reproduction report judges, and can fail: each claim's verdict on raw results made to agree with
the paper and on the same results doctored to contradict it; missing results are NOT RUN with the
command that makes them; a reference with an unknown claim or a result of another scale is named;
Table 1's growth exponents are those of the measured memory."""

import copy
import math
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from truncback.experiments.complexity.benchmark import Case, run_case
from truncback.experiments.complexity.table import complexity_table, exponent
from truncback.hypergrad import methods
from truncback.reproduction import claims
from truncback.reproduction.evidence import Evidence, load_evidence, load_reference
from truncback.reproduction.grader import COMMIT_VARIABLE
from truncback.reproduction.report import compute_lines, load_spread, report_text
from truncback.reproduction.numbers import NOT_COMPARABLE, paper_method, table_rows
from truncback.cli import main as check_main
from truncback.pipeline.check import check
from truncback.reproduction.compare import compare_folders
from truncback.reproduction.spread import spread_of
from truncback.io.tables import write_table
from truncback.runtime.code_version import code_version
from truncback.runtime.harness import RunRecord
from workflow_copy import REPO

REFERENCE = REPO / "config" / "paper_reference.yaml"


def toy_evidence() -> Evidence:
    """Toy results shaped as the toy command writes them, with the paper's behaviour: errors 0.9^K under
    a bound 2 * 0.95^K, 1-RMD ratios about 0.06, final norms on f~ falling with K."""
    K = list(range(11))
    evidence = Evidence("full")
    evidence.toy["bound"] = {"K": K, "error": [0.9**k for k in K[:-1]] + [0.0], "bound": [2 * 0.95**k for k in K]}
    evidence.toy["trajectories_f"] = {
        "descent_ratio": [{"K": 1, "ratio": [0.05, 0.06, 0.08]}, {"K": 2, "ratio": [0.1, 0.1, 0.1]}]
    }
    evidence.toy["trajectories_f_tilde"] = {
        "runs": [{"K": K, "exact_norm": [30.0, final]} for K, final in ((1, 9.0), (5, 5.0), (25, 0.5), (100, 0.01))]
    }
    return evidence


def depth(rate_positive, rate_zero, T=20, learned_rho=1.0, initial=(0.8, 0.99), r2=1.0) -> dict:
    """A depth study whose errors decay at the given rates, at a learnt lambda (gamma 0.1, smallest rho
    ``learned_rho``: with 1, the regulariser alone contracts by 0.8^20) and at the initial one (rho 1, its
    rates ``initial``)."""

    def study(rate):
        mean = [0.8 * rate**k for k in range(T)] + [0.0]
        return {
            "mean": mean,
            "mean_without_c": mean,
            "fit": {"rate": rate, "r2": r2},
            "fit_without_c": {"rate": rate, "r2": r2},
        }

    def point(rates, rho):
        return {"rho_positive": study(rates[0]), "rho_zero": study(rates[1]), "gamma": 0.1, "rho": [rho, 2.0]}

    return {
        "learned": point((rate_positive, rate_zero), learned_rho),
        "initial": point(initial, 1.0),
        "tasks": 1,
        "T": T,
    }


def test_the_decay_with_depth_is_judged_where_the_regulariser_acts_and_needs_a_geometric_fit():
    evidence = toy_evidence()
    # learnt rho gamma = 0.001: the regulariser alone contracts by 0.998^20 = 0.96, in effect none
    evidence.depth = depth(0.99, 0.99, learned_rho=0.01, initial=(0.8, 0.99))
    verdict = claims.no_decay_without_regularization(evidence)
    assert verdict.verdict == claims.PASS and verdict.evidence.startswith("judged at the initial lambda (gamma 0.1")
    assert "at the learnt lambda (gamma 0.1, smallest rho 0.01: the regulariser alone contracts by 0.96" in (
        verdict.evidence
    )
    assert claims.bias_decays_exponentially(evidence).verdict == claims.PASS  # the initial lambda's rate 0.8
    evidence.depth = depth(0.99, 0.99, learned_rho=0.01, initial=(0.8, 0.7))  # there rho = 0 decays faster
    assert claims.no_decay_without_regularization(evidence).verdict == claims.FAIL
    weak = depth(0.99, 0.99, learned_rho=0.01, initial=(0.8, 0.99))
    weak["initial"]["gamma"] = 0.003  # rho gamma = 0.003 at the initial lambda too: 0.994^20 = 0.89
    verdict = claims.no_decay_without_regularization(evidence.__class__("full", depth=weak))
    assert (
        "at neither lambda is the regulariser in effect" in verdict.evidence and claims.SAYS_LITTLE in verdict.evidence
    )
    evidence.depth = depth(0.9929, 0.999, r2=0.215)  # a rate below 1 from a poor fit is no geometric decay
    verdict = claims.bias_decays_exponentially(evidence)
    assert verdict.verdict == claims.FAIL and "rate 0.9929 (r2 0.215), not a geometric decay" in verdict.evidence


def test_where_neither_lambda_s_regulariser_acts_the_learnt_one_with_rho_raised_judges():
    """With the regulariser in effect neither at the learnt lambda (0.998^20 = 0.96) nor at the initial
    one (0.994^20 = 0.89), C1 and C6 are judged at the learnt lambda with every rho raised until the
    regulariser alone contracts by 0.1 over T, and say so with that rho; the learnt lambda is shown beside."""
    evidence = toy_evidence()
    evidence.depth = depth(0.99, 0.99, learned_rho=0.01, initial=(0.99, 0.99))
    evidence.depth["initial"]["gamma"] = 0.003
    raised = (1 - 0.1 ** (1 / 20)) / (2 * 0.1)  # 0.5443: (1 - 2 * 0.1 * rho)^20 = 0.1
    evidence.depth["rho_in_effect"] = raised
    evidence.depth["regularised"] = depth(0.8, 0.99)["learned"] | {"rho": [raised, 2.0]}
    c6 = claims.no_decay_without_regularization(evidence)
    assert c6.verdict == claims.PASS and c6.evidence.startswith(
        "judged at the learnt lambda with every rho raised to at least 0.544 to put the regulariser in effect "
        "(gamma 0.1, smallest rho 0.544: the regulariser alone contracts by 0.1 over T = 20)"
    )
    assert "at the learned lambda: rho = 0 rate 0.9900" in c6.evidence and claims.SAYS_LITTLE not in c6.evidence
    c1 = claims.bias_decays_exponentially(evidence)
    assert c1.verdict == claims.PASS and "rate 0.8000 (r2 1.000)" in c1.evidence  # the raised lambda's
    evidence.depth["regularised"]["rho"] = [raised * 0.9, 2.0]  # not in effect after all: the caveat
    assert claims.SAYS_LITTLE in claims.no_decay_without_regularization(evidence).evidence


def test_a_straight_fall_to_one_over_t_is_no_exponential_decay():
    """Where the hypergradient's terms do not shrink along the inner loop (rho = 0), truncating K of T
    leaves (T - K)/T of it: the error falls to 1/T at K = T - 1, more than a decade, yet not
    geometrically. C6 counts that as no decay; a geometric fall of the same span it does not."""
    from truncback.experiments.omniglot.depth import geometric_fit

    T = 50
    evidence = toy_evidence()
    evidence.depth = depth(0.9, 0.99, T=T, learned_rho=2.0)  # the learnt lambda's regulariser is in effect
    straight = [0.8 * (T - K) / T for K in range(T)] + [0.0]
    fit = geometric_fit(straight)
    assert fit["r2"] < 0.9  # what the least-squares fit makes of it (0.8 at T = 50)
    evidence.depth["learned"]["rho_zero"] |= {"mean_without_c": straight, "fit_without_c": fit}
    verdict = claims.no_decay_without_regularization(evidence)
    assert verdict.verdict == claims.PASS
    assert "to 0.4 at K = 25 (ratio 0.5; terms that do not shrink give 0.5)" in verdict.evidence
    assert "(ratio 0.02), fitted rate" in verdict.evidence and "not a geometric decay" in verdict.evidence
    geometric = [0.8 * 0.92**K for K in range(T)] + [0.0]  # the same span, geometric, still slower than 0.9
    evidence.depth["learned"]["rho_zero"] |= {"mean_without_c": geometric, "fit_without_c": geometric_fit(geometric)}
    assert claims.no_decay_without_regularization(evidence).verdict == claims.FAIL


def test_the_learnt_lambda_of_an_unstable_run_judges_no_claim():
    """The depth study names the run its learnt lambda came from; where that run is UNSTABLE, C1 and C6
    are judged at the initial lambda even where the learnt one's regulariser is in effect, and say why."""
    evidence = toy_evidence()
    evidence.depth = depth(0.8, 0.99, learned_rho=2.0, initial=(1.02, 1.02))  # judged at the learnt lambda
    evidence.depth["learned_from"] = "rmd"
    assert claims.bias_decays_exponentially(evidence).verdict == claims.PASS  # the learnt lambda's rate 0.8
    record = RunRecord()
    record.health = {"verdict": "UNSTABLE"}
    evidence.omniglot.append(SimpleNamespace(label="rmd", display="Full RMD", run=record))
    for verdict in (claims.bias_decays_exponentially(evidence), claims.no_decay_without_regularization(evidence)):
        assert "the learnt lambda is the Full RMD run's, which is UNSTABLE" in verdict.evidence
        assert verdict.verdict == claims.FAIL  # at the initial lambda the errors grow (rate 1.02)
    assert claims.SAYS_LITTLE not in verdict.evidence  # the initial lambda's regulariser is in effect (0.8^20)
    evidence.depth["initial"]["gamma"] = 0.003  # and here it is not (0.994^20 = 0.89): the caveat is given
    assert claims.SAYS_LITTLE in claims.no_decay_without_regularization(evidence).evidence
    evidence.depth["initial"]["gamma"] = 0.1
    record.health = {"verdict": "STABLE"}
    assert claims.bias_decays_exponentially(evidence).verdict == claims.PASS
    evidence.depth["learned_from"] = "fom"  # a companion run's lambda (the config may name any run)
    companion = RunRecord()
    companion.health = {"verdict": "UNSTABLE"}
    evidence.omniglot_companion.append(SimpleNamespace(label="fom", display="FOM", run=companion))
    assert (
        "the learnt lambda is the FOM run's, which is UNSTABLE" in claims.bias_decays_exponentially(evidence).evidence
    )


def measurements(krmd_seconds=0.1, krmd_memory=1.0) -> pd.DataFrame:
    rows = []
    for T in (50, 100, 200):
        rows.append(
            {
                "problem": "hypercleaning",
                "method": "rmd",
                "T": T,
                "K": None,
                "seconds": 0.01 * T,
                "peak_mib": 0.5 + 0.03 * T,
                "states_held": T + 1,
                "label": "rmd",
            }
        )
        rows.append(
            {
                "problem": "hypercleaning",
                "method": "krmd",
                "T": T,
                "K": 1,
                "seconds": krmd_seconds * T / 50,
                "peak_mib": krmd_memory,
                "states_held": 2,
                "label": "krmd-K1",
            }
        )
    return pd.DataFrame(rows)


def test_claims_pass_on_results_that_agree_with_the_paper():
    evidence = toy_evidence()
    evidence.depth, evidence.complexity = depth(0.8, 0.99), measurements()
    for name in (
        "bias_decays_exponentially",
        "one_rmd_descent_direction",
        "biased_convergence_with_direct_term",
        "krmd_faster_and_leaner",
        "no_decay_without_regularization",
    ):
        assert claims.EVALUATORS[name](evidence).verdict == claims.PASS, name


def test_on_synthetic_data_the_omniglot_claims_are_not_comparable_and_the_toy_claims_still_judged():
    evidence = toy_evidence()
    evidence.depth, evidence.complexity = depth(1.02, 1.05), measurements()  # an Omniglot error that grows with K
    smoke = copy.deepcopy(evidence)
    smoke.scale = "smoke"  # every dataset synthetic
    assert claims.bias_decays_exponentially(evidence).verdict == claims.FAIL  # judged on real Omniglot
    verdict = claims.bias_decays_exponentially(smoke)  # judged on the toy alone
    assert verdict.verdict == claims.PASS and "depth study not judged" in verdict.evidence
    without_depth = copy.deepcopy(evidence)
    without_depth.depth = None  # real Omniglot data, but its depth study not run: the verdict says so
    verdict = claims.bias_decays_exponentially(without_depth)
    assert verdict.verdict == claims.PASS and "depth study not run" in verdict.evidence
    assert "judged on the toy alone" in verdict.evidence
    assert claims.no_decay_without_regularization(smoke).verdict == NOT_COMPARABLE
    assert claims.krmd_faster_and_leaner(smoke).verdict == claims.PASS
    assert Evidence("quick").comparable("2") and not Evidence("quick").comparable("3")  # CIFAR: stand-ins at quick
    assert not any(Evidence("smoke").comparable(table) for table in ("2", "3", "4"))


@pytest.mark.parametrize(
    "doctor, claim",
    [
        (
            lambda e: e.toy["bound"]["error"].__setitem__(3, 5.0),
            "bias_decays_exponentially",
        ),  # an error above the bound
        (lambda e: setattr(e, "depth", depth(1.02, 1.05)), "bias_decays_exponentially"),  # Omniglot error grows with K
        (lambda e: e.toy["trajectories_f"]["descent_ratio"][0]["ratio"].append(-0.01), "one_rmd_descent_direction"),
        (
            lambda e: e.toy["trajectories_f_tilde"]["runs"][0]["exact_norm"].__setitem__(-1, 0.05),
            "biased_convergence_with_direct_term",
        ),  # 1-RMD reaches the optimum
        (
            lambda e: e.toy["trajectories_f_tilde"]["runs"][2]["exact_norm"].__setitem__(-1, 20.0),
            "biased_convergence_with_direct_term",
        ),  # the residual grows with K
        (lambda e: setattr(e, "complexity", measurements(krmd_seconds=2.0)), "krmd_faster_and_leaner"),  # slower
        (lambda e: setattr(e, "complexity", measurements(krmd_memory=50.0)), "krmd_faster_and_leaner"),  # not leaner
        (lambda e: setattr(e, "depth", depth(0.8, 0.7)), "no_decay_without_regularization"),  # rho = 0 decays faster
    ],
)
def test_doctored_results_turn_the_claim_to_fail(doctor, claim):
    evidence = toy_evidence()
    evidence.depth, evidence.complexity = depth(0.8, 0.99), measurements()
    doctored = copy.deepcopy(evidence)
    doctor(doctored)
    assert claims.EVALUATORS[claim](evidence).verdict == claims.PASS
    assert claims.EVALUATORS[claim](doctored).verdict == claims.FAIL


def test_missing_results_are_not_run_with_the_command_that_makes_them():
    verdicts = [evaluate(Evidence("quick")) for evaluate in claims.EVALUATORS.values()]
    assert {v.verdict for v in verdicts} == {claims.NOT_RUN}
    bound = claims.bias_decays_exponentially(Evidence("quick"))
    assert "snakemake --cores all results/quick/toy/bound.json --config scale=<scale>" in bound.evidence
    text = report_text(load_reference(REFERENCE), Evidence("quick"))
    assert "0 PASS, 0 FAIL, 6 NOT RUN" in text and "Reduced scale (quick)" in text
    companion = [evaluate(Evidence("quick")) for evaluate in claims.COMPANION_EVALUATORS.values()]
    assert {v.verdict for v in companion} == {claims.NOT_RUN}
    assert "## Companion papers' claims" in text and re.search(r"\| aid_cg_fewest_iterations +\| NOT RUN +\|", text)


def hypercleaning_run(method: dict, test_acc: float) -> SimpleNamespace:
    """The fields of a hypercleaning result that Tables 2's gap reads."""
    return SimpleNamespace(
        method=method,
        display=method["name"],
        final={"test_acc": test_acc},
        settings={"n_test": 1000, "T": 100},
        run=RunRecord(),
    )


def test_the_offline_scale_judges_every_real_table_and_says_where_it_departs_from_the_paper():
    offline = Evidence("offline")
    assert all(offline.comparable(table) for table in ("2", "3", "4"))
    offline.hypercleaning = [
        hypercleaning_run({"name": "krmd", "K": 1}, 89.0),
        hypercleaning_run({"name": "rmd"}, 90.5),
    ]
    verdict = claims.small_k_matches_full(offline)
    assert verdict.verdict == claims.PASS and "by design, the MNIST test set alone is split" in verdict.evidence
    offline.hypercleaning[0] = hypercleaning_run({"name": "krmd", "K": 1}, 85.0)  # 5.5 points: outside ±2.7
    assert claims.small_k_matches_full(offline).verdict == claims.FAIL
    quick = copy.deepcopy(offline)
    quick.scale = "quick"
    assert "by design" not in claims.small_k_matches_full(quick).evidence
    text = report_text(load_reference(REFERENCE), Evidence("offline"))
    assert "The paper's settings on offline data" in text and "Reduced scale" not in text
    assert "- Table 3: by design, not run" in text and "- Table 4: by design, meta-trained on Omniglot's small1" in text


PAPER_SPECS = {
    "1-RMD": {"name": "krmd", "K": 1},
    "5-RMD": {"name": "krmd", "K": 5},
    "10-RMD": {"name": "krmd", "K": 10},
}
PAPER_SPECS |= {"25-RMD": {"name": "krmd", "K": 25}, "Full RMD": {"name": "rmd"}, "Short horizon": {"name": "rmd"}}


def paper_scoring_runs(reference) -> Evidence:
    """A run of every method of the paper's Tables 2-4 (T = 100, 100 and 50 as in the paper), each scoring its
    row's numbers + 0.1, named by whatever ``methods.display_name`` is at the call; and a FOM run scoring 0."""
    evidence = Evidence("full")
    for K, *numbers in reference["table2_hypercleaning"]["rows"]:
        spec = {"name": "krmd", "K": K}  # K = 100 = T: full RMD
        final = dict(zip(("test_acc", "val_acc", "val_loss", "f1"), (n + 0.1 for n in numbers)))
        settings = {"T": 100, "n_test": 10000, "n_val": 5000}
        evidence.hypercleaning.append(
            SimpleNamespace(
                method=spec, display=methods.display_name(spec, 100), final=final, settings=settings, run=RunRecord()
            )
        )
    datasets = {"CIFAR-10": "cifar10", "CIFAR-100": "cifar100"}
    for dataset, name, accuracy, *_ in reference["table3_task_interaction"]["rows"]:
        spec = PAPER_SPECS[name]
        evidence.task_interaction += [
            SimpleNamespace(
                method=spec,
                display=methods.display_name(spec, 100),
                dataset=datasets[dataset],
                final={"test_acc": accuracy + 0.1 + offset},
                settings={"T": 100},
                run=RunRecord(),
            )
            for offset in (-0.05, 0.05)
        ]
    for name, accuracy, iterations, _ in reference["table4_omniglot"]["rows"]:
        spec, T = PAPER_SPECS[name], 1 if name == "Short horizon" else 50
        milestones = [{"iteration": iterations, "accuracy": accuracy + 0.1, "ci95": 1.0}]
        evidence.omniglot.append(
            SimpleNamespace(
                method=spec,
                T=T,
                display=methods.display_name(spec, T),
                settings={"T": 50},
                milestones=milestones,
                run=RunRecord(),
            )
        )
    evidence.omniglot.append(
        SimpleNamespace(
            method={"name": "fom"},
            T=50,
            display=methods.display_name({"name": "fom"}, 50),
            settings={"T": 50},
            milestones=[{"iteration": 5000, "accuracy": 0.0, "ci95": 1.0}],
            run=RunRecord(),
        )
    )
    return evidence


@pytest.mark.parametrize(
    "shown",
    [
        None,  # display_name as it is
        lambda spec, T=None: f"renamed {methods.label(spec)}",
        lambda spec, T=None: "1-RMD",  # every run shown as one of the paper's names
    ],
)
def test_the_paper_s_rows_are_matched_by_method_spec_not_by_the_name_shown(monkeypatch, shown):
    reference = load_reference(REFERENCE)
    if shown is not None:
        monkeypatch.setattr(methods, "display_name", shown)
    rows = table_rows(reference, paper_scoring_runs(reference))
    paper_rows = {
        table: len(reference[name]["rows"])
        for table, name in (("2", "table2_hypercleaning"), ("3", "table3_task_interaction"), ("4", "table4_omniglot"))
    }
    assert [r["table"] for r in rows] == ["2"] * 4 * paper_rows["2"] + ["3"] * paper_rows["3"] + ["4"] * paper_rows["4"]
    assert [r["difference"] for r in rows] == pytest.approx([0.1] * len(rows))  # each row against its own run
    assert "Short horizon @ 15000" in [r["what"] for r in rows]
    with pytest.raises(ValueError, match="the paper's method 'Truncated RMD' is none of"):
        paper_method("Truncated RMD", 50)


def test_a_reference_with_an_unknown_claim_is_named(tmp_path):
    reference = yaml.safe_load(REFERENCE.read_text())
    reference["claims"].append({"id": "k_rmd_cures_everything", "text": "?"})
    path = tmp_path / "reference.yaml"
    path.write_text(yaml.safe_dump(reference))
    with pytest.raises(ValueError, match=r"reference.yaml: claims: unknown claim id\(s\) \['k_rmd_cures_everything'\]"):
        load_reference(path)


def test_a_result_of_another_scale_is_refused(tmp_path):
    path = tmp_path / "results" / "full" / "hypercleaning" / "rmd_seed0.json"
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    with pytest.raises(ValueError, match="is not a result of scale 'quick'"):
        load_evidence("quick", hypercleaning=[path])


def test_exponents_are_the_slopes_in_log_log():
    T = [50, 100, 200, 400]
    assert exponent(T, [3 * t**0.5 for t in T]) == pytest.approx(0.5)
    assert exponent(T, [2.0] * 4) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(exponent(T, [1.0, math.nan, math.nan, math.nan]))


def test_table_1_exponents_from_real_measurements_separate_the_methods():
    """Measured (allocator events) on a hypercleaning-sized problem with 50 hyperparameters: K-RMD's
    memory is flat in T, full RMD's grows about linearly, checkpointing's about as sqrt T."""
    rows = []
    for method, K in (("rmd", None), ("krmd", 1), ("checkpointed", None)):
        for T in (25, 50, 100, 200):
            case = run_case(Case("hypercleaning", method, T, K, n_train=50))
            rows.append(
                {
                    "problem": "hypercleaning",
                    "method": method,
                    "T": T,
                    "K": K,
                    "seconds": case.seconds,
                    "peak_mib": case.peak_mib,
                    "states_held": case.states_held,
                    "label": case.label,
                    "n_train": 50,
                }
            )
    frame, caption = complexity_table(pd.DataFrame(rows))
    exponents = dict(zip(frame["Method"], frame["Memory exponent"].astype(float)))
    assert abs(exponents["1-RMD"]) < 0.1
    assert abs(exponents["Full RMD"] - 1) < 0.15
    assert abs(exponents["Checkpointed RMD"] - 0.5) < 0.2
    assert list(frame["Paper memory"]) == ["O(MT)", "O(MK)", "O(M sqrt T)"]
    assert "N = 50 hyperparameters" in caption and not np.any(frame["Expected memory exponent"] == "-")


def two_runs(tmp_path, accuracy="75.10 ± 1.80", seconds="0.9", claim_min="0.0503", verdict="PASS"):
    """Two paper_tables/<scale> folders: Table 4 (one accuracy and the wall-clock column may differ) and a
    report with one claim (its number and verdict may differ)."""
    table = pd.DataFrame(
        {
            "Method": ["1-RMD", "Full RMD"],
            "Accuracy": ["74.60 ± 1.88", "78.01 ± 1.86"],
            "Iter.": ["300", "300"],
            "Sec/iter": ["0.150", "0.567"],
            "States held": ["2", "51"],
        }
    )
    claim = "- **one_rmd_descent_direction: {verdict}.** 1-RMD ratio over 20 points: min {low}, max 0.0818\n"
    for name, frame, low, said in (
        ("first", table, "0.0503", "PASS"),
        (
            "second",
            table.assign(Accuracy=[accuracy, "78.01 ± 1.86"], **{"Sec/iter": [seconds, "0.2"]}),
            claim_min,
            verdict,
        ),
    ):
        write_table(frame, tmp_path / name / "table4_omniglot", f"{name} run")
        (tmp_path / name / "reproduction_report.md").write_text("# Report\n\n" + claim.format(verdict=said, low=low))
    return tmp_path / "first", tmp_path / "second"


def test_compare_runs_measures_how_far_each_number_moved_and_leaves_wall_clock_out(tmp_path):
    spread = spread_of(compare_folders(*two_runs(tmp_path, claim_min="0.0513")))
    assert spread["columns"]["table4_omniglot"] == {
        "Method": 0.0,
        "Accuracy": pytest.approx(0.5),
        "Iter.": 0.0,
        "States held": 0.0,
    }
    assert spread["claims"] == {"one_rmd_descent_direction": pytest.approx(0.001 / 0.0513)}  # relative
    assert [(e["table"], e["what"], e["move"]) for e in spread["largest"]] == [
        ("table4_omniglot", "1-RMD, Accuracy", pytest.approx(0.5))
    ]


def test_the_report_states_the_measured_spread_and_a_malformed_spread_file_is_named(tmp_path):
    measured = spread_of(compare_folders(*two_runs(tmp_path)))
    spread = {
        "measured_with": "compare-runs",
        "machine": "here",
        "scale": "quick",
        "first_run": "at commit abc with new kernels",
        "second_run": "at commit abc with old kernels",
        **measured,
    }
    text = report_text(load_reference(REFERENCE), Evidence("quick"), spread=spread)
    assert "table4_omniglot: 1-RMD, Accuracy moved by 0.5 (74.60 ± 1.88 -> 75.10 ± 1.80)" in text
    assert "a run at commit abc with new kernels against a second run at commit abc with old kernels" in text
    assert "has not been measured" in report_text(load_reference(REFERENCE), Evidence("quick"))
    broken = tmp_path / "spread.yaml"
    broken.write_text(yaml.safe_dump({k: v for k, v in spread.items() if k != "columns"}))
    with pytest.raises(ValueError, match=r"spread.yaml: expected the keys .*'columns'"):
        load_spread(broken)


def test_the_spread_file_names_the_runs_by_commit_and_settings_not_by_their_folders(tmp_path):
    first, second = two_runs(tmp_path)
    spread_file = tmp_path / "spread.yaml"
    command = ["compare-runs", "--scale", "quick", "--first", str(first), "--second", str(second)]
    named = ["--first-run", "at commit abc", "--second-run", "at commit abc with old kernels"]
    assert check_main([*command, "--spread-file", str(spread_file)]) == 1  # which runs they are must be said
    assert check_main([*command, *named, "--spread-file", str(spread_file)]) == 0
    text = spread_file.read_text()
    assert str(tmp_path) not in text
    spread = load_spread(spread_file)
    assert (spread["measured_with"], spread["first_run"], spread["second_run"]) == (
        "python -m truncback compare-runs --scale quick",
        "at commit abc",
        "at commit abc with old kernels",
    )


def lines(results) -> dict:
    return {name: (verdict, details) for name, verdict, details in results}


def test_check_results_says_same_within_spread_or_different_per_table_and_claim(tmp_path):
    first, second = two_runs(tmp_path)
    spread = spread_of(compare_folders(first, second))  # measured on these two runs: 0.5 on the accuracy
    assert lines(check(first, first, spread)) == {
        "table4_omniglot": ("SAME", ""),
        "claim one_rmd_descent_direction": ("SAME", ""),
    }
    within = lines(check(first, second, spread))["table4_omniglot"]
    assert within[0] == "WITHIN SPREAD" and "74.60 ± 1.88 -> 75.10 ± 1.80" in within[1]
    assert "2 wall-clock number(s) moved (not judged)" in within[1]
    doctored = lines(check(first, two_runs(tmp_path / "doctored", accuracy="76.60 ± 1.80")[1], spread))
    assert doctored["table4_omniglot"][0] == "DIFFERENT"
    assert (
        "1-RMD / Accuracy: 74.60 ± 1.88 -> 76.60 ± 1.80 (moved 2, measured spread 0.5)"
        in doctored["table4_omniglot"][1]
    )
    flipped = lines(check(first, two_runs(tmp_path / "flipped", claim_min="-0.01", verdict="FAIL")[1], spread))
    verdict, details = flipped["claim one_rmd_descent_direction"]
    assert verdict == "DIFFERENT" and "verdict of one_rmd_descent_direction changed PASS -> FAIL" in details
    reshaped = two_runs(tmp_path / "reshaped")[1]
    (reshaped / "table4_omniglot.csv").write_text("Method,Accuracy\n1-RMD,74.60 ± 1.88\n")
    verdict, details = lines(check(first, reshaped, spread))["table4_omniglot"]
    assert verdict == "DIFFERENT" and details.startswith(
        "layout: columns only committed: Iter., Sec/iter, States held; rows only committed: Full RMD"
    )


def test_check_results_without_committed_outputs_names_them_and_the_command(tmp_path, monkeypatch, capsys):
    (tmp_path / "Snakefile").touch()
    (tmp_path / "rules").mkdir()
    (tmp_path / "paper_tables" / "quick").mkdir(parents=True)
    (tmp_path / "paper_tables" / "quick" / "reproduction_report.md").write_text("# report\n")
    (tmp_path / "paper_tables" / "quick" / "table4_omniglot.csv").write_text("Method,Accuracy\n")
    (tmp_path / "paper_tables" / "rehearsal").mkdir()  # estimates only, no report: not a checkable scale
    (tmp_path / "paper_tables" / "rehearsal" / "full_run_estimates.csv").write_text("Experiment\n")
    monkeypatch.chdir(tmp_path)
    assert check_main(["check-results", "--scale", "smoke"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no committed outputs of scale 'smoke'" in err
    assert "make expected-outputs SCALE=smoke" in err and err.rstrip().endswith("committed for: quick")
    with pytest.raises(SystemExit):
        check_main(["check-results", "--scale", "nonsense"])
    assert "invalid choice: 'nonsense'" in capsys.readouterr().err


def test_the_report_says_what_computed_each_experiment():
    eager = {"torch": "2.13.0+cpu", "device": "cpu", "fast_path": None}
    fast = {
        "compiled_calls": 40,
        "compiled_functions": 2,
        "graphs_compiled": 3,
        "graphs_from_cache": 1,
        "onednn_graphs_passed": 3,
        "onednn_products_replaced": 4,
        "onednn_product_calls": 60,
        "onednn_operator": True,
    }
    compiled = {**eager, "fast_path": fast}
    lines = compute_lines(
        {"hypercleaning": [{"compute": compiled}] * 2, "omniglot": [{"compute": eager}], "task_interaction": [{}]}
    )  # a timing file from before the record: left out
    assert lines == [
        "hypercleaning: 2 run(s), torch 2.13.0+cpu on cpu; 2 compiled, 8 compiled graph(s) in all, 120 matrix "
        "products by oneDNN",
        "omniglot: 1 run(s), torch 2.13.0+cpu on cpu; eager (nothing compiled)",
    ]
    absent = {**eager, "fast_path": {**fast, "onednn_operator": False, "onednn_product_calls": 0}}
    assert "lacks oneDNN's linear operator" in compute_lines({"omniglot": [{"compute": absent}]})[0]
    fell_back = {**eager, "fast_path": {**fast, "frames_run_eagerly": 1, "graph_breaks": 0, "onednn_products_kept": 2}}
    assert compute_lines({"omniglot": [{"compute": fell_back}] * 2})[0].endswith(
        "; less than asked: 2 compiled call(s) run eagerly by dynamo, 4 large product(s) the oneDNN pass left to "
        "torch (the runs' logs have the warnings)"
    )


def test_the_report_names_the_code_that_graded_it_and_a_commit_only_for_a_clean_export(monkeypatch):
    version = code_version("truncback.reproduction.report")
    monkeypatch.delenv(COMMIT_VARIABLE, raising=False)  # a run in a working tree
    header = report_text(load_reference(REFERENCE), Evidence("quick")).splitlines()[2]
    assert f"`python -m truncback reproduction-report`, code version `{version}`" in header
    assert "no commit is named" in header and "commit `" not in header
    monkeypatch.setenv(COMMIT_VARIABLE, "0123456789abcdef0123456789abcdef01234567")  # as expected-outputs sets it
    header = report_text(load_reference(REFERENCE), Evidence("quick")).splitlines()[2]
    assert header.startswith("Graded by the code of commit `0123456789ab` (") and f"`{version}`" in header
