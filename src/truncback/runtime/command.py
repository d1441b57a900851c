"""What every hyper-optimisation command does around its run: the common arguments (method, device,
threads, output, log, --stop-after), torch's set-up, progress logging, resumption from the
checkpoint beside the output, and writing the result and its timing file atomically."""

import argparse
import contextlib
import sys
import warnings

import torch

from truncback.hypergrad.methods import parse_spec
from truncback.runtime.checkpoint import checkpoint_path, inputs_read
from truncback.runtime.determinism import configure_torch
from truncback.runtime.device import add_compute_arguments, select_device
from truncback.runtime.files import timing_path, write_json, write_result
from truncback.runtime.harness import RunInterrupted
from truncback.runtime.progress import ProgressLog

INTERRUPTED = 3
"""Exit status of a run stopped by --stop-after (its checkpoint is kept for the rerun)."""


def method_argument(text: str) -> dict:
    try:
        return parse_spec(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_run_arguments(parser, several: bool = False) -> None:
    """The arguments every hyper-optimisation command takes; with ``several``, ``--output`` takes one
    result file per run (a command running several, ``run_batch_command``)."""
    parser.add_argument(
        "--method",
        required=True,
        type=method_argument,
        help='hypergradient method: JSON spec (\'{"name": "aid_cg", "K": 10}\') or label (krmd-K5)',
    )
    add_compute_arguments(parser)
    parser.add_argument(
        "--output",
        required=True,
        nargs="+" if several else None,
        help=f"result JSON{', one per run' if several else ''} (its timing goes to <stem>.timing.json)",
    )
    parser.add_argument("--log", help="also write the progress lines to this file")
    parser.add_argument(
        "--stop-after",
        type=int,
        default=None,
        help="stop after this many hyper-iterations, writing nothing more (tests resumption)",
    )


def fast_path_counts() -> dict:
    """The fast path's counts so far in this process (``hypergrad.fast_path.record``), {} where it was
    never imported."""
    fast_path = sys.modules.get("truncback.hypergrad.fast_path")
    return fast_path.record() if fast_path else {}


def what_ran(device, before: dict, warned: tuple = ()) -> dict:
    """The torch, the device and, where the run called compiled steps, what the fast path did over the
    run (its counts minus ``before``, taken at its start, and the warnings it gave, ``warned``);
    ``fast_path`` is None for an eager run."""
    after = fast_path_counts()
    done = {key: value - before.get(key, 0) for key, value in after.items()}
    fast = None
    if done.get("compiled_calls"):
        from truncback.hypergrad import onednn

        fast = {**done, "onednn_operator": onednn.AVAILABLE, "warnings": list(warned)}
    return {"torch": torch.__version__, "device": str(device), "fast_path": fast}


@contextlib.contextmanager
def fast_path_warnings_logged(log):
    """Within: each warning the fast path gives (``FastPathWarning``) is also written to the run's log
    and kept in the list yielded, for its timing file."""
    warned: list[str] = []
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, *args, **kwargs):
            if category.__name__ == "FastPathWarning":
                warned.append(str(message))
                log(f"warning: {message}")
            shown(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield warned


def run_command(args, run, inputs=()) -> int:
    """``run(device, log, checkpoint)`` returns (result dataclass, timing, extra files to write: a
    function of nothing or None); the result and timing are written, then the checkpoint removed.
    ``inputs``: the data files the run reads, whose identity its checkpoint records (a checkpoint of
    other data is not resumed)."""

    def one(device, log, checkpoint):
        result, timing, write_extra = run(device, log, checkpoint)
        if write_extra:
            write_extra()
        return [(result, timing)]

    return _run(args, [args.output], one, inputs)


def run_batch_command(args, run, inputs=()) -> int:
    """As ``run_command`` for a command of several runs (``add_run_arguments(parser, several=True)``):
    ``run(device, log, checkpoint)`` returns one (result, timing) per ``--output`` path, in order; one
    checkpoint, beside the first, holds them all."""
    return _run(args, args.output, run, inputs)


def _run(args, outputs: list, run, inputs) -> int:
    """Sets torch up, calls ``run`` with the log and the checkpoint beside the first of ``outputs`` (one
    of the data files ``inputs``: ``checkpoint.inputs_read``) and writes each (result, timing) it
    returns to its output and timing file, then removes the checkpoint."""
    configure_torch(args.threads)
    device = select_device(args.device)
    checkpoint = checkpoint_path(outputs[0])
    before = fast_path_counts()
    with ProgressLog(args.log) as log, fast_path_warnings_logged(log) as warned, inputs_read(inputs):
        try:
            runs = run(device, log, checkpoint)
        except RunInterrupted as stop:
            log(f"{stop}; rerun the same command to resume from {checkpoint}")
            return INTERRUPTED
    compute = what_ran(device, before, warned)
    for output, (result, timing) in zip(outputs, runs, strict=True):
        write_json(timing_path(output), {**timing.per_iteration(), "compute": compute})
        write_result(output, result)
    checkpoint.unlink(missing_ok=True)
    return 0
