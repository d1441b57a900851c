"""What every experiment run shares: the device, reading prepared arrays, progress lines to the
terminal and a log file, and writing results atomically."""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

DEVICES = ("auto", "cpu", "cuda")


def select_device(name: str) -> torch.device:
    """``--device``: "auto" is CUDA where torch sees a GPU and the CPU otherwise."""
    if name not in DEVICES:
        raise ValueError(f"--device {name!r} is unknown; choose one of {list(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device (torch "
                         f"{torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); use --device cpu or auto")
    return torch.device(name)


def add_compute_arguments(parser) -> None:
    """--threads and --device, which every experiment command takes."""
    parser.add_argument("--threads", type=int, default=1, help="torch threads (results depend on it)")
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="where tensors live (auto: CUDA if available, else CPU; results differ between them)")


def load_arrays(path, keys) -> dict:
    """The named arrays of a prepared .npz file, with an error naming the file and missing keys."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prepared data file {path} does not exist")
    with np.load(path) as archive:
        missing = [key for key in keys if key not in archive.files]
        if missing:
            raise ValueError(f"{path} lacks array(s) {missing}; it has {archive.files}")
        return {key: archive[key] for key in keys}


def write_json(path, value) -> None:
    """Writes ``value`` as JSON to a temporary name, then renames it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n")
    temporary.replace(path)


class ProgressLog:
    """A callable that prints a progress line to stderr (with the elapsed time) and appends it to a
    log file, if one is given."""

    def __init__(self, path=None):
        self.path = Path(path) if path else None
        self.handle = None
        self.start = time.perf_counter()

    def __enter__(self):
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = self.path.open("w")
        return self

    def __exit__(self, *exc):
        if self.handle:
            self.handle.close()

    def __call__(self, message: str) -> None:
        line = f"[{time.perf_counter() - self.start:8.1f}s] {message}"
        print(line, file=sys.stderr, flush=True)
        if self.handle:
            print(line, file=self.handle, flush=True)
