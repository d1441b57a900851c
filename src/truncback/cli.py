"""Command line: ``python -m truncback <command> ...``; every Snakemake rule calls one of these.

Each module in ``COMMAND_MODULES`` exposes ``register(subparsers)``, which adds its sub-command and
sets ``run=<function(args) -> int | None>`` as the parser default.
"""

import argparse
import importlib

COMMAND_MODULES = (
    "truncback.benchmark",
    "truncback.data.cli",
    "truncback.experiments.hypercleaning",
    "truncback.reports.hypercleaning_table",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m truncback", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="command")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args) or 0
