"""Every hyper-optimisation experiment through its command line, as the pipeline runs it: any method
of METHODS is accepted as a spec (krmd, aid_cg, fom and ufom here) and a run killed with SIGKILL after
a checkpoint resumes and ends with the same bytes as an uninterrupted run; Ctrl-C and a bad method end a
run with one line."""

import dataclasses
import json
import signal

import pytest
import torch

from experiment_data import kill_after_first_checkpoint, write_inputs
from truncback.cli import main as cli
from truncback.experiments.hypercleaning.run import HypercleaningResult
from truncback.experiments.omniglot.run import OmniglotResult
from truncback.experiments.omniglot.settings import GAMMA_MAX
from truncback.experiments.task_interaction.run import TaskInteractionResult
from truncback.hypergrad import label, parse_spec
from truncback.runtime.checkpoint import checkpoint_path
from truncback.runtime.files import read_json, read_result, timing_path
from truncback.hypergrad import onednn
from truncback.runtime.harness import remaining

HYPERCLEANING = {
    "compile": False,
    "n_train": 200,
    "n_val": 100,
    "n_test": 200,
    "T": 20,
    "lr": 0.015,
    "hyper_lr": 0.3,
    "hyper_iterations": 40,
    "exact_every": 10,
    "checkpoint_every": 5,
}
TASK_INTERACTION = {
    "compile": False,
    "train_per_class": 3,
    "val_per_class": 6,
    "T": 12,
    "hyper_lr": 0.02,
    "max_hyper_iterations": 40,
    "patience": 100,
    "exact_every": 10,
    "checkpoint_every": 5,
    "log_every": 100,
}
# init_rho = 10: the regulariser makes g_S strongly convex at every w_T here, as conjugate gradient needs
# (with rho = 1 CG meets negative curvature after T = 3 steps and stops with an error naming it).
OMNIGLOT = {
    "compile": False,
    "init_rho": 10.0,
    "ways": 3,
    "query_per_class": 2,
    "meta_train_classes": 24,
    "filters": 4,
    "T": 3,
    "hyper_lr": 0.01,
    "eval_every": 4,
    "curve_tasks": 2,
    "validation_tasks": 2,
    "test_tasks": 3,
    "exact_every": 3,
    "checkpoint_every": 2,
    "depth_tasks": 1,
    "log_every": 100,
}
RESULT_TYPES = {
    "hypercleaning": HypercleaningResult,
    "task-interaction": TaskInteractionResult,
    "omniglot": OmniglotResult,
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return write_inputs(tmp_path_factory.mktemp("inputs"))


@pytest.fixture(autouse=True)
def keep_torch_settings():
    """The commands switch on deterministic algorithms and set the thread count; restore both."""
    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    yield
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)


def arguments(experiment: str, inputs: dict, method: str, output, iterations: int = 12) -> list:
    """The command line of one run of ``experiment`` with ``method`` writing ``output``."""
    common = ["--method", method, "--threads", "1", "--device", "cpu", "--output", str(output)]
    if experiment == "hypercleaning":
        return ["hypercleaning", "--data", str(inputs["mnist"]), "--settings", json.dumps(HYPERCLEANING), *common]
    if experiment == "task-interaction":
        return [
            "task-interaction",
            "--train",
            str(inputs["ti_train"]),
            "--test",
            str(inputs["ti_test"]),
            "--dataset",
            "synthetic",
            "--settings",
            json.dumps(TASK_INTERACTION),
            *common,
        ]
    return [
        "omniglot",
        "--background",
        str(inputs["background"]),
        "--evaluation",
        str(inputs["evaluation"]),
        "--settings",
        json.dumps(OMNIGLOT),
        "--iterations",
        str(iterations),
        "--milestones",
        str(iterations),
        "--hparams",
        str(output.with_suffix(".npz")),
        *common,
    ]


@pytest.mark.parametrize("experiment", sorted(RESULT_TYPES))
@pytest.mark.parametrize("method", ['{"name": "krmd", "K": 2}', '{"name": "aid_cg", "K": 10}', "fom"])
def test_each_experiment_runs_any_method_spec(experiment, method, inputs, tmp_path):
    output = tmp_path / "run.json"
    assert cli(arguments(experiment, inputs, method, output, iterations=4)) == 0
    result = read_result(output, RESULT_TYPES[experiment])
    assert result.method == parse_spec(method) and result.label == label(parse_spec(method))
    record = result.run
    assert record.iterations_run == len(record.train["outer_loss"]) >= 4
    assert all(value == value for value in record.train["hypergradient_norm"])  # finite, recorded each iteration
    assert record.exact["iteration"][0] == 0 and 0 < record.exact["relative_error"][0]
    assert record.states_held == {"krmd": 3, "aid_cg": 1, "fom": 2}[result.method["name"]]
    timing = read_json(timing_path(output))
    # the timing accounts for the work done: every hyper-iteration but the profiled first one timed, each
    # exact comparison counted, the hypergradients' seconds a part of their iterations' (nested timers)
    assert timing["timed_iterations"] == record.iterations_run - 1
    assert timing["exact_comparisons"] == len(record.exact["iteration"])
    assert timing["seconds_per_iteration"] * timing["timed_iterations"] <= timing["iteration_seconds"]
    assert timing["compute"] == {"torch": torch.__version__, "device": "cpu", "fast_path": None}  # eager
    assert not checkpoint_path(output).exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "experiment, method", [("hypercleaning", "ufom-q0.5"), ("task-interaction", "krmd-K3"), ("omniglot", "krmd-K1")]
)
def test_a_run_killed_after_a_checkpoint_resumes_to_the_same_bytes(experiment, method, inputs, tmp_path):
    """UFOM's random draws come from a generator whose state the checkpoint keeps."""
    killed, whole = tmp_path / "killed" / "run.json", tmp_path / "whole" / "run.json"
    killed.parent.mkdir()
    whole.parent.mkdir()
    every = {"hypercleaning": HYPERCLEANING, "task-interaction": TASK_INTERACTION, "omniglot": OMNIGLOT}[experiment]
    stopped = kill_after_first_checkpoint(
        arguments(experiment, inputs, method, killed, iterations=16),
        checkpoint_path(killed),
        every=every["checkpoint_every"],
    )
    assert stopped.returncode == -signal.SIGKILL and not killed.exists()
    log = tmp_path / "resumed.log"
    assert cli([*arguments(experiment, inputs, method, killed, iterations=16), "--log", str(log)]) == 0
    assert f"resuming after {every['checkpoint_every']}" in log.read_text()
    assert cli(arguments(experiment, inputs, method, whole, iterations=16)) == 0
    assert killed.read_bytes() == whole.read_bytes()
    if experiment == "omniglot":
        assert killed.with_suffix(".npz").read_bytes() == whole.with_suffix(".npz").read_bytes()
        assert "iter     16/16  f " in log.read_text()  # progress: hyper-iterations done of all
    result = read_result(whole, RESULT_TYPES[experiment])
    assert result.run.iterations_run > 5  # the kill came after a checkpoint, before the end


def test_ctrl_c_ends_a_run_with_one_line_and_its_checkpoint_kept(inputs, tmp_path):
    output = tmp_path / "run.json"
    stopped = kill_after_first_checkpoint(
        arguments("hypercleaning", inputs, "krmd-K1", output),
        checkpoint_path(output),
        every=HYPERCLEANING["checkpoint_every"],
        signal_name="SIGINT",
    )
    assert stopped.returncode == 130
    assert "Traceback" not in stopped.stderr and "KeyboardInterrupt" not in stopped.stderr
    assert stopped.stderr.splitlines()[-1] == (
        "python -m truncback hypercleaning: interrupted (a hyper-optimisation "
        "resumes from its checkpoint when rerun)"
    )
    assert not output.exists()


def test_a_bad_method_is_named_on_the_command_line(inputs, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli(arguments("hypercleaning", inputs, '{"name": "krmd"}', tmp_path / "run.json"))
    assert "method 'krmd' needs option(s) ['K']" in capsys.readouterr().err
    assert cli(arguments("hypercleaning", inputs, "krmd-K21", tmp_path / "run.json")) == 1
    err = capsys.readouterr().err  # one line, no traceback
    assert err.count("\n") == 1 and "Traceback" not in err
    assert (
        "python -m truncback hypercleaning: error: method 'krmd': option K=21 is larger than the number of "
        "lower-level steps T=20"
    ) in err
    assert not (tmp_path / "run.json").exists()


def test_a_result_file_of_another_layout_or_with_a_renamed_key_is_named(inputs, tmp_path):
    output = tmp_path / "run.json"
    assert cli(arguments("hypercleaning", inputs, "krmd-K1", output, iterations=2)) == 0
    data = read_json(output)
    data["run"]["outer_losses"] = data["run"].pop("train")
    (tmp_path / "renamed.json").write_text(json.dumps(data))
    with pytest.raises(
        ValueError, match=r"renamed.json.run: RunRecord has no key\(s\) \['outer_losses'\] and lacks \['train'\]"
    ):
        read_result(tmp_path / "renamed.json", HypercleaningResult)
    with pytest.raises(ValueError, match="has layout 'truncback.hypercleaning/3', expected 'truncback.omniglot/4'"):
        read_result(output, OmniglotResult)
    with pytest.raises(TypeError, match="a result must be a dataclass with a LAYOUT"):
        from truncback.runtime.files import write_result

        write_result(tmp_path / "x.json", dataclasses.make_dataclass("Bare", ["a"])(1))


def test_progress_gives_the_time_left_at_the_pace_so_far():
    assert remaining(elapsed=90.0, done=30, left=1200) == "  ETA 1h00m"  # 3 s per hyper-iteration
    assert remaining(elapsed=1.0, done=4, left=2) == "  ETA 0h00m"
    assert remaining(elapsed=5.0, done=10, left=0) == "" and remaining(elapsed=0.0, done=0, left=10) == ""


def compiled_hypercleaning(inputs, output, iterations: int, compile=True, status: int = 0, log=None) -> dict:
    """A small hypercleaning run on the fast path: its timing file's record of what computed."""
    args = arguments("hypercleaning", inputs, "krmd-K1", output) + (["--log", str(log)] if log else [])
    settings = {**HYPERCLEANING, "compile": compile, "hyper_iterations": iterations}
    args[args.index("--settings") + 1] = json.dumps(settings)
    assert cli(args) == status
    return read_json(timing_path(output))["compute"] if status == 0 else {}


def test_a_fast_path_shortfall_is_in_the_log_and_the_timing_file_or_stops_a_strict_run(
    inputs, tmp_path, monkeypatch, capsys, fresh_fast_path
):
    """Forced: this torch made to lack the oneDNN operator. compile: true goes on, saying so in the
    run's log and its timing file; compile: strict stops with one line naming it."""
    fast_path = fresh_fast_path
    monkeypatch.setattr(onednn, "AVAILABLE", False)
    log = tmp_path / "run.log"
    with pytest.warns(fast_path.FastPathWarning):
        fast = compiled_hypercleaning(inputs, tmp_path / "run.json", iterations=2, log=log)["fast_path"]
    assert len(fast["warnings"]) == 1 and "lacks oneDNN's linear operator" in fast["warnings"][0]
    assert f"warning: {fast['warnings'][0]}" in log.read_text()
    capsys.readouterr()
    compiled_hypercleaning(inputs, tmp_path / "strict.json", iterations=2, compile="strict", status=1)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lacks oneDNN's linear operator" in err and "compile='strict'" in err
    assert not (tmp_path / "strict.json").exists()


def test_a_compile_setting_outside_its_choices_is_one_line(inputs, tmp_path, capsys):
    compiled_hypercleaning(inputs, tmp_path / "run.json", iterations=2, compile="fast", status=1)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "compile='fast': expected one of False, True, 'strict'" in err


def test_a_compiled_run_records_what_its_fast_path_did(inputs, tmp_path):
    fast = compiled_hypercleaning(inputs, tmp_path / "run.json", iterations=3)["fast_path"]
    assert fast["compiled_calls"] > 0  # its steps went through the compiled functions
    assert fast["onednn_operator"] is onednn.AVAILABLE
    assert fast["onednn_product_calls"] == 0  # 200 x 785 x 10 products: below the threshold, torch's kernel


def test_a_run_records_only_its_own_fast_path_work(inputs, tmp_path):
    """oneDNN products computed before, outside any compiled step, are not the run's."""
    onednn.onednn_mm(torch.ones(4, 3), torch.ones(3, 2))
    assert compiled_hypercleaning(inputs, tmp_path / "run.json", iterations=2)["fast_path"]["onednn_product_calls"] == 0


def test_a_run_records_its_own_settings_apart_and_meta_trains_with_them(tmp_path, inputs):
    """Through the real command: a run's --run-settings (the short horizon's bound of gamma) go over
    --settings for its meta-training, and its result keeps the shared settings and its own apart, so the
    runs of Table 4 still share their settings."""
    output = tmp_path / "rmd-T1.json"
    own = {"gamma_max": 0.04, "init_gamma": 0.03}
    command = arguments("omniglot", inputs, "rmd", output, iterations=2) + [
        "--T",
        "1",
        "--run-settings",
        json.dumps(own),
    ]
    assert cli(command) == 0
    result = json.loads(output.read_text())
    assert result["run_settings"] == own
    assert (result["settings"]["gamma_max"], result["settings"]["init_gamma"]) == (GAMMA_MAX, GAMMA_MAX / 2)
    assert GAMMA_MAX < result["final_hyperparameters"]["gamma"] < 0.04
