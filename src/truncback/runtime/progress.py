"""Progress lines of long runs: to the terminal (stderr) and, if given, a log file."""

import sys
import time
from pathlib import Path


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
            self.handle = self.path.open("a")
        return self

    def __exit__(self, *exc):
        if self.handle:
            self.handle.close()

    def __call__(self, message: str) -> None:
        line = f"[{time.perf_counter() - self.start:8.1f}s] {message}"
        print(line, file=sys.stderr, flush=True)
        if self.handle:
            print(line, file=self.handle, flush=True)
