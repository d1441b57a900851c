"""Atomic creation of files: write under a temporary name in the target's folder, then rename."""

import contextlib
import os
import secrets
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target):
    """Yield a fresh temporary path next to ``target``; rename it onto ``target`` on success.

    The body creates the temporary file (or symlink). If the body raises, whatever it created is
    removed, so ``target`` is either absent, left as it was, or complete - never half-written.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        if os.path.lexists(temporary):
            temporary.unlink()
