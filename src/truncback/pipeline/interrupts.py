"""Ctrl-C in the Snakemake process running this workflow, without a traceback (rules/common.smk installs
these; Snakemake prints every KeyboardInterrupt it does not expect with its frames):

- while Snakemake reads the workflow (rules/common.smk imports torch, which takes seconds), nothing has
  started: one line, exit status 130;
- once it runs the jobs, the first Ctrl-C is Snakemake's own (it terminates the jobs, each of which says
  in one line that it was interrupted, and exits); a second one while it does so (``timeout -s INT``
  signals twice, impatient hands too) would break that clean-up into tracebacks, and is ignored.

Jobs do not inherit these handlers (a handled signal is reset by exec); ``python -m truncback`` has its
own (:mod:`truncback.__main__`).
"""

import os


def while_reading(signum, frame) -> None:
    os.write(2, b"Snakemake: interrupted while reading the workflow, before any job started\n")
    os._exit(130)


def once(signum, frame) -> None:
    """Raises KeyboardInterrupt the first time only."""
    if not _interrupted:
        _interrupted.append(signum)
        raise KeyboardInterrupt


_interrupted: list[int] = []
