"""Checkpoints of a meta-training run: the hyperparameters, the hyper-optimiser's state, the number
of hyper-iterations done and everything recorded so far, written atomically every N hyper-iterations
so that a rerun after an interruption resumes where the last checkpoint left off.

No random-generator state is stored: tasks are drawn from generators seeded by (seed, stream, task
index) (see ``omniglot_tasks``), so the iteration count is all a resumed run needs to draw the same
tasks. The checkpoint carries a fingerprint of the run's settings; one made by a run with other
settings is set aside, never resumed from.
"""

from pathlib import Path

import torch


def save_checkpoint(path, fingerprint: dict, iteration: int, hparams, optimizer, record: dict) -> None:
    """Writes the checkpoint to a temporary name, then renames it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    torch.save({"fingerprint": fingerprint, "iteration": iteration, "hparams": hparams,
                "optimizer": optimizer.state_dict(), "record": record}, temporary)
    temporary.replace(path)


def load_checkpoint(path, fingerprint: dict, log) -> dict | None:
    """The checkpoint at ``path`` if there is one made with ``fingerprint``; None otherwise (a
    checkpoint with another fingerprint is renamed to ``<path>.stale`` and reported to ``log``)."""
    path = Path(path)
    if not path.is_file():
        return None
    state = torch.load(path, weights_only=True, map_location="cpu")
    if state.get("fingerprint") != fingerprint:
        differing = sorted(key for key in set(fingerprint) | set(state.get("fingerprint", {}))
                           if fingerprint.get(key) != state.get("fingerprint", {}).get(key))
        stale = path.with_name(path.name + ".stale")
        path.replace(stale)
        log(f"checkpoint {path} was made with other settings ({', '.join(differing)} differ); "
            f"moved to {stale}, starting from the beginning")
        return None
    return state
