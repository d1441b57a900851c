"""Does a rerun give the committed numbers? The scale runs (or, when nothing changed since, is reused)
in ``.check/<scale>/``, a scratch copy of the workflow, never over the committed files; then every
number of every committed table and every claim of the committed reproduction report is compared with
the fresh one, one line each:

- SAME: every number (and word) as committed;
- WITHIN SPREAD: numbers moved, none by more than the measured cross-machine spread of its table's
  column (of its claim, relative), config/cross_machine_spread.yaml; the largest move is shown;
- DIFFERENT: a number moved by more (both numbers shown), a row or word differs, or a claim's verdict
  changed (PASS <-> FAIL named).

Wall-clock cells (Sec/iter, Time columns, the report's lines marked "(wall clock)") are reported, never
judged. The exit status is 1 when any line is DIFFERENT. Before the rerun it says whether the committed
outputs are of the current code (their provenance's code versions; expected-outputs records them).

Snakemake's output of the rerun goes to ``.check/<scale>/snakemake.log`` (stderr shows one line per
finished job), so the verdicts are the last lines printed; a failed rerun names that log.

``python -m truncback check-results --scale quick --config data_dir=../shared/datasets`` (``make check-results``)
"""

import argparse
import sys
from pathlib import Path

import yaml

from truncback.data.sources import RECIPES
from truncback.pipeline.expected import currency, provenance_path
from truncback.pipeline.scratch import absolute_config, copy_workflow, repository_root, run_scale
from truncback.reproduction.compare import (
    CLAIM,
    REPORT,
    compare_folders,
    is_claim,
    moved_numbers,
    relative,
    report_claims,
)

SPREAD_FILE = Path("config/cross_machine_spread.yaml")
SHOWN = 3  # differing cells listed per table
SNAKEMAKE_LOG = "snakemake.log"  # in .check/<scale>/: Snakemake's output of the rerun


def _cell(move) -> str:
    row, column, one, two, _ = move
    return moved_numbers(move) if column == "evidence" else f"{row} / {column}: {one.text} -> {two.text}"


def judge(comparison, spread: dict) -> tuple[str, str]:
    """(SAME | WITHIN SPREAD | DIFFERENT, the line's details) for one table or the claims."""
    is_claims = is_claim(comparison.name)
    allowed = spread.get("claims", {}) if is_claims else spread.get("columns", {}).get(comparison.name, {})

    def move_of(move):
        return relative(move) if is_claims else move[4]

    def limit(move):
        return allowed.get(move[0] if is_claims else move[1], 0.0)

    judged = [move for move in comparison.moves if not move[2].wall_clock]
    moved = [move for move in judged if move_of(move) > 0]
    beyond = [move for move in moved if move_of(move) > limit(move)]
    clock = sum(move[4] > 0 for move in comparison.moves if move[2].wall_clock)
    notes = [f"{clock} wall-clock number(s) moved (not judged)"] if clock else []
    notes += [
        f"verdict of {claim} changed {first} -> {second}"
        + (" (decided by wall-clock time: not judged)" if wall_clock else "")
        for claim, first, second, wall_clock in comparison.verdicts
    ]
    verdict_changed = any(not wall_clock for *_, wall_clock in comparison.verdicts)
    if comparison.form or beyond or verdict_changed:
        details = (
            [f"layout: {comparison.layout}"]
            if comparison.layout
            else [f"{row} / {column}: committed {one!r} vs fresh {two!r}" for row, column, one, two in comparison.form]
        )
        details += [
            f"{_cell(move)} (moved {move_of(move):.3g}{' relative' if is_claims else ''}, measured spread "
            f"{limit(move):.3g})"
            for move in sorted(beyond, key=move_of, reverse=True)
        ]
        shown = details[:SHOWN] + ([f"... {len(details) - SHOWN} more"] if len(details) > SHOWN else [])
        return "DIFFERENT", "; ".join(notes + shown)
    if moved:
        largest = max(moved, key=move_of)
        return "WITHIN SPREAD", "; ".join(
            [
                f"{len(moved)} number(s) moved, the largest {_cell(largest)} "
                f"(moved {move_of(largest):.3g}, measured spread {limit(largest):.3g})"
            ]
            + notes
        )
    return "SAME", "; ".join(notes)


def check(expected: Path, fresh: Path, spread: dict) -> list[tuple[str, str, str]]:
    """(name, verdict, details) for every committed table and the report's claims."""
    committed = {path.stem for path in expected.glob("*.csv")}
    if (expected / REPORT).is_file():
        committed |= {f"{CLAIM}{claim}" for claim in report_claims(expected / REPORT)}
    comparisons = compare_folders(expected, fresh)
    return [(name, *judge(comparisons[name], spread)) for name in sorted(committed)]


def has_outputs(root: Path, scale: str) -> bool:
    """Whether the checkout holds the expected outputs of ``scale``: its tables (*.csv) and its report."""
    folder = root / "paper_tables" / scale
    return folder.is_dir() and any(folder.glob("*.csv")) and (folder / REPORT).is_file()


def committed_scales(root: Path) -> list[str]:
    """The scales whose expected outputs the checkout holds."""
    return [scale for scale in RECIPES if has_outputs(root, scale)]


def missing_outputs(root: Path, scale: str) -> str:
    """What a check of ``scale`` lacks in the checkout, in one line with the command that makes it; "" if nothing."""
    folder = root / "paper_tables" / scale
    if not has_outputs(root, scale):
        return (
            f"no committed outputs of scale {scale!r} in {folder} (tables *.csv and {REPORT}); they are made by "
            f"`make expected-outputs SCALE={scale}`; committed for: {', '.join(committed_scales(root)) or 'none'}"
        )
    if not (root / SPREAD_FILE).is_file():
        return f"{SPREAD_FILE} is missing: `python -m truncback compare-runs ... --spread-file {SPREAD_FILE}` writes it"
    return ""


def main(args) -> int:
    root = repository_root()
    problem = missing_outputs(root, args.scale)
    if problem:
        print(f"check-results: {problem}", file=sys.stderr)
        return 2
    provenance = root / provenance_path(args.scale)
    made = yaml.safe_load(provenance.read_text()) if provenance.is_file() else {}
    print(
        f"check-results: the committed outputs of scale {args.scale}: "
        + (currency(made) if made else f"what made them is not recorded ({provenance} is missing)"),
        file=sys.stderr,
    )
    if args.fresh:
        fresh = Path(args.fresh)
        if not fresh.is_dir():
            print(
                f"check-results: --fresh {fresh} is not a folder (a paper_tables/<scale> of another run)",
                file=sys.stderr,
            )
            return 2
    else:
        scratch = copy_workflow(root, root / ".check" / args.scale)
        try:
            config = absolute_config(args.config, Path.cwd())
            targets = made.get("targets", [])  # those that made the committed outputs (default: all)
            run_scale(scratch, args.scale, config, args.cores, log=scratch / SNAKEMAKE_LOG, targets=targets)
        except RuntimeError as error:
            print(f"check-results: {error}", file=sys.stderr)
            return 2
        fresh = scratch / "paper_tables" / args.scale
    spread = yaml.safe_load((root / SPREAD_FILE).read_text())
    print(
        f"Committed outputs of scale {args.scale} (commit {str(made.get('commit', '?'))[:12]}, "
        f"{made.get('machine', 'machine not recorded')}) against {fresh}; spread measured between a run "
        f"{spread.get('first_run', '')} and a run {spread.get('second_run', '')}:"
    )
    results = check(root / "paper_tables" / args.scale, fresh, spread)
    width = max(len(name) for name, _, _ in results)
    for name, verdict, details in results:
        print(f"{name:<{width}}  {verdict}{f'  ({details})' if details else ''}")
    different = [name for name, verdict, _ in results if verdict == "DIFFERENT"]
    print(
        f"{len(results) - len(different)} of {len(results)} SAME or WITHIN SPREAD"
        + (f"; DIFFERENT: {', '.join(different)}" if different else "")
    )
    return 1 if different else 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "check-results",
        help="rerun a scale in a scratch folder and compare every number with the committed outputs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scale",
        default="quick",
        choices=list(RECIPES),
        help="the scale whose committed outputs to check (default quick)",
    )
    parser.add_argument("--config", nargs="*", default=[], help="more KEY=VALUE config pairs (e.g. data_dir=DIR)")
    parser.add_argument("--cores", default="all", help="Snakemake's --cores (default all)")
    parser.add_argument("--fresh", help="compare with this paper_tables/<scale> folder instead of running the scale")
    parser.set_defaults(run=main)
