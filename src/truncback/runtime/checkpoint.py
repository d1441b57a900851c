"""Checkpoints of a long run: everything it needs to go on (hyperparameters, optimiser state, the
hyper-iterations done, what it recorded, random-generator states), written atomically so that a
rerun after an interruption, even SIGKILL, resumes where the last checkpoint left off.

A checkpoint carries a fingerprint of the run (settings, method, seed) and what made it: the code
version of the command that wrote it (:func:`truncback.runtime.code_version.stamp`), torch's version,
and the SHA-256 of each data file the command read (``inputs_read``, which the command sets around
its run). One made by a run with another fingerprint, or by other code, another torch or other data,
is set aside (renamed ``.stale``, the reason logged), never resumed from: the run starts from
hyper-iteration 0, so its result is wholly the current code's and data's. (Snakemake reruns a job whose
data changed; without the data's identity, the rerun would resume the checkpoint of the old data that
a kill left beside the output.)

For tests of resuming, ``TRUNCBACK_STOP_AFTER_CHECKPOINT=N`` (or ``N:SIGINT``) makes a run send itself
SIGKILL (or SIGINT, a Ctrl-C) right after writing the checkpoint of hyper-iteration N: a kill at a
known point, not a race against the clock.
"""

import contextlib
import hashlib
import os
import signal
from pathlib import Path

import torch

from truncback.runtime.atomic import atomic_path
from truncback.runtime.code_version import stamp


def checkpoint_path(output) -> Path:
    """Where the run writing ``output`` keeps its checkpoint: ``<output>.ckpt``."""
    output = Path(output)
    return output.with_name(output.name + ".ckpt")


STOP_AFTER = "TRUNCBACK_STOP_AFTER_CHECKPOINT"


_inputs: dict = {}  # the data files of the running command and their SHA-256 (``inputs_read``)


def file_digest(path) -> str:
    """The SHA-256 of the file at ``path``, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def inputs_read(paths):
    """Within: the checkpoints written and accepted are those of a run of the data files ``paths``
    (their paths as given and SHA-256, in :func:`made_by`)."""
    global _inputs
    held = _inputs
    _inputs = {str(path): file_digest(path) for path in paths}
    try:
        yield
    finally:
        _inputs = held


def made_by() -> dict:
    """What a checkpoint written now records of what made it: {"code": the running command's module and
    code version (empty outside a command), "torch": torch's version, "inputs": {data file path: its
    SHA-256} (``inputs_read``; empty outside it)}."""
    return {"code": stamp(), "torch": str(torch.__version__), "inputs": dict(_inputs)}


def _described(maker: dict) -> str:
    """``maker`` (a :func:`made_by` record) in words: "<module> version <digest> with torch <version>"."""
    if not maker:
        return "code and torch versions not recorded"
    code = maker.get("code") or {}
    command = f"{code['module']} version {code['version']}" if code else "no command's code"
    return f"{command} with torch {maker.get('torch')}"


def save_checkpoint(path, fingerprint: dict, state: dict) -> None:
    """Writes ``state`` (tensors, numbers, strings, lists and dicts of them, with its hyper-iterations
    ``done``) with ``fingerprint`` and :func:`made_by`; then stops here where STOP_AFTER names that
    hyper-iteration."""
    with atomic_path(path) as temporary:
        torch.save({"made_by": made_by(), "fingerprint": fingerprint, "state": state}, temporary)
    done, _, name = os.environ.get(STOP_AFTER, "").partition(":")
    if done == str(state.get("done")):
        os.kill(os.getpid(), getattr(signal, name or "SIGKILL"))


def load_checkpoint(path, fingerprint: dict, log) -> dict | None:
    """The state saved at ``path`` if there is a checkpoint made by this code and torch (:func:`made_by`)
    with ``fingerprint``; None otherwise (a checkpoint made by other code or torch, or with another
    fingerprint, is renamed to ``<path>.stale`` and the reason reported to ``log``)."""
    path = Path(path)
    if not path.is_file():
        return None
    saved = torch.load(path, weights_only=True, map_location="cpu")
    now, then = made_by(), saved.get("made_by", {})
    if then.get("inputs", {}) != now["inputs"]:
        old = then.get("inputs", {})
        differing = sorted(name for name in set(old) | set(now["inputs"]) if old.get(name) != now["inputs"].get(name))
        reason = f"was made from other data ({', '.join(differing)} differ)"
    elif then != now:
        maker = "other code" if then.get("code") != now["code"] else "another torch"
        reason = f"was made by {maker} ({_described(then)}; this run is {_described(now)})"
    elif saved.get("fingerprint") != fingerprint:
        old = saved.get("fingerprint", {})
        differing = sorted(key for key in set(fingerprint) | set(old) if fingerprint.get(key) != old.get(key))
        reason = f"was made with other settings ({', '.join(differing)} differ)"
    else:
        return saved["state"]
    stale = path.with_name(path.name + ".stale")
    path.replace(stale)
    log(f"checkpoint {path} {reason}; moved to {stale}, starting from hyper-iteration 0")
    return None
