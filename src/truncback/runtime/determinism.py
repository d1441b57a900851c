"""Same inputs, same bytes: seeds derived from what a run is, torch set up so its arithmetic does not
depend on the machine's scheduling, and raw-result files written without timestamps.

Float sums depend on how many threads share them, so the thread count comes from the config, never
from the number of cores Snakemake grants a job.
"""

import hashlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from truncback.runtime.atomic import atomic_path
from truncback.runtime.code_version import STAMP_KEY, stamp_text

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def derive_seed(experiment: str, K: int, seed_index: int) -> int:
    """A 31-bit seed from (experiment, K, seed index), the same on every machine and Python run
    (``hash()`` is salted per process, so a digest is used instead)."""
    digest = hashlib.sha256(f"{experiment}|K={K}|seed={seed_index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def configure_torch(threads: int, seed: int | None = None) -> None:
    """Deterministic algorithms, ``threads`` intra-op threads and, if given, the global seed."""
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be a positive int, got threads={threads!r}")
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if seed is not None:
        torch.manual_seed(seed)


def write_npz(path, **arrays) -> Path:
    """Like ``numpy.savez`` but byte-identical for identical arrays: members in sorted order with a
    fixed timestamp (``savez`` stamps the current time). Written to a temporary name, then renamed.
    Written by a command, it holds one more member, ``code_version``: that command's code version
    (``module@version``, an array of that one string), which ``truncback.runtime.files.load_npz`` checks."""
    path = Path(path)
    if STAMP_KEY in arrays:
        raise ValueError(f"{path}: the array name {STAMP_KEY!r} is the code version's; name the data otherwise")
    if stamp_text():
        arrays = {**arrays, STAMP_KEY: np.array([stamp_text()])}
    with atomic_path(path) as temporary, zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_ZIP_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())
    return path
