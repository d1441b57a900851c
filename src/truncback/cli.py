"""Command line: ``python -m truncback <command> ...``; every Snakemake rule calls one of these.

``COMMANDS`` maps each command to the module that implements it; only that module is imported (so a
data step does not pay for importing torch). The module's ``register(subparsers)`` adds the
sub-command and sets ``run=<function(args) -> int | None>`` as its parser default.

Bad input (a file, value or option; the message names it) ends a command with one line and exit status
1, without a traceback unless ``TRUNCBACK_TRACEBACK=1``; Ctrl-C ends it with one line and status 130,
also while it is still importing its modules (:mod:`truncback.__main__` handles that part).
"""

import argparse
import importlib
import os
import signal
import sys

from truncback.data.errors import DataError
from truncback.experiments.registry import commands as experiment_commands
from truncback.runtime.code_version import running_module

TRACEBACK_VARIABLE = "TRUNCBACK_TRACEBACK"

COMMANDS = {  # the experiments' commands come from their descriptors (truncback.experiments.registry)
    "reproduction-report": "truncback.reproduction.report",
    "compare-runs": "truncback.reproduction.spread",
    "check-results": "truncback.pipeline.check",
    "lint-workflow": "truncback.pipeline.lint",
    "docs": "truncback.tools.docs",
    "expected-outputs": "truncback.pipeline.expected",
    "expected-carry": "truncback.pipeline.carry",
    "config-schema": "truncback.tools.config_schema",
    "gpu-check": "truncback.tools.gpu_check",
    "rehearsal-estimates": "truncback.rehearsal.estimates",
    "data-fetch": "truncback.data.cli.fetch",
    "data-fixtures": "truncback.data.cli.fixtures",
    "data-prepare": "truncback.data.cli.prepare",
    **experiment_commands(),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``command`` alone, or of every command when it is not a known one."""
    parser = argparse.ArgumentParser(prog="python -m truncback", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="command")
    modules = [COMMANDS[command]] if command in COMMANDS else sorted(set(COMMANDS.values()))
    for module_name in modules:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser(argv[0] if argv else None)
    except ModuleNotFoundError as error:  # e.g. `make gpu-check` with a Python that lacks torch
        print(
            f"python -m truncback: this Python ({sys.executable}) lacks the module {error.name!r}; install the "
            "requirements (requirements.txt) or use the project's .venv",
            file=sys.stderr,
        )
        return 2
    args = parser.parse_args(argv)
    # started: from here Ctrl-C raises KeyboardInterrupt, handled below once the files being written are closed
    signal.signal(signal.SIGINT, signal.default_int_handler)
    name = f"python -m truncback {args.command}"
    try:
        with running_module(COMMANDS[args.command]):
            return args.run(args) or 0
    except KeyboardInterrupt:
        print(f"{name}: interrupted (a hyper-optimisation resumes from its checkpoint when rerun)", file=sys.stderr)
        return 130
    except (ValueError, OSError, DataError) as error:  # bad input: a file, value or option, named in the message
        if os.environ.get(TRACEBACK_VARIABLE):
            raise
        print(f"{name}: error: {error or type(error).__name__} ({TRACEBACK_VARIABLE}=1 shows where)", file=sys.stderr)
        return 1
