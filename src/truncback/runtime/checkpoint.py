"""Checkpoints of a long run: everything it needs to go on (hyperparameters, optimiser state, the
hyper-iterations done, what it recorded, random-generator states), written atomically so that a
rerun after an interruption, even SIGKILL, resumes where the last checkpoint left off.

A checkpoint carries a fingerprint of the run (settings, method, seed, data); one made by a run with
another fingerprint is set aside (renamed ``.stale``), never resumed from.

For tests of resuming, ``TRUNCBACK_STOP_AFTER_CHECKPOINT=N`` (or ``N:SIGINT``) makes a run send itself
SIGKILL (or SIGINT, a Ctrl-C) right after writing the checkpoint of hyper-iteration N: a kill at a
known point, not a race against the clock.
"""

import os
import signal
from pathlib import Path

import torch

from truncback.io.atomic import atomic_path


def checkpoint_path(output) -> Path:
    """Where the run writing ``output`` keeps its checkpoint: ``<output>.ckpt``."""
    output = Path(output)
    return output.with_name(output.name + ".ckpt")


STOP_AFTER = "TRUNCBACK_STOP_AFTER_CHECKPOINT"


def save_checkpoint(path, fingerprint: dict, state: dict) -> None:
    """Writes ``state`` (tensors, numbers, strings, lists and dicts of them, with its hyper-iterations
    ``done``) with ``fingerprint``; then stops here where STOP_AFTER names that hyper-iteration."""
    with atomic_path(path) as temporary:
        torch.save({"fingerprint": fingerprint, "state": state}, temporary)
    done, _, name = os.environ.get(STOP_AFTER, "").partition(":")
    if done == str(state.get("done")):
        os.kill(os.getpid(), getattr(signal, name or "SIGKILL"))


def load_checkpoint(path, fingerprint: dict, log) -> dict | None:
    """The state saved at ``path`` if there is a checkpoint made with ``fingerprint``; None otherwise
    (a checkpoint with another fingerprint is renamed to ``<path>.stale`` and reported to ``log``)."""
    path = Path(path)
    if not path.is_file():
        return None
    saved = torch.load(path, weights_only=True, map_location="cpu")
    if saved.get("fingerprint") != fingerprint:
        old = saved.get("fingerprint", {})
        differing = sorted(key for key in set(fingerprint) | set(old) if fingerprint.get(key) != old.get(key))
        stale = path.with_name(path.name + ".stale")
        path.replace(stale)
        log(
            f"checkpoint {path} was made with other settings ({', '.join(differing)} differ); "
            f"moved to {stale}, starting from the beginning"
        )
        return None
    return saved["state"]
