"""How far our numbers move between two runs of one scale on different floating-point kernels: every
number of every table and every claim of the report (all but the wall-clock cells) from two
``paper_tables/<scale>`` folders, side by side, and the largest move per table, per column and per
claim, which ``check-results`` judges a rerun against.

Two machines give two runs; without a second machine, a run with the CPU kernels of an older
processor emulates one (``ATEN_CPU_CAPABILITY=default`` makes torch use its non-vectorised kernels,
``MKL_ENABLE_INSTRUCTIONS=SSE4_2`` makes MKL's matrix products take their SSE4.2 path): the same
kind of last-digit differences, which training then amplifies.

The spread file names the two runs by the words given with ``--first-run`` and ``--second-run`` (each
run's commit and settings) beside the scale and the machine, never by their folders, which are paths of
the machine that compared them.

``python -m truncback compare-runs --scale quick --first A/paper_tables/quick --second B/paper_tables/quick --first-run "at commit 59fb25c1 with torch's default CPU kernels" --second-run "at commit 59fb25c1 with ATEN_CPU_CAPABILITY=default" --spread-file config/cross_machine_spread.yaml``
"""

import argparse
from pathlib import Path

import pandas as pd
import yaml

from truncback.runtime.atomic import atomic_path
from truncback.reproduction.compare import compare_folders, is_claim, relative
from truncback.runtime.measure import hardware

SPREAD_HEADER = (
    "# WRITTEN by `python -m truncback compare-runs ... --spread-file` (see measured_with): how far the\n"
    "# numbers of every table and claim moved between two runs; the reproduction report quotes it and\n"
    "# `check-results` judges a rerun against it.\n"
)


def moves_frame(comparisons: dict) -> pd.DataFrame:
    """Every number found in both runs (wall clock left out) with its move; a claim's move is relative."""
    rows = []
    for name, comparison in comparisons.items():
        for move in comparison.moves:
            row, column, one, two, difference = move
            if one.wall_clock:
                continue
            rows.append(
                {
                    "table": name,
                    "row": row,
                    "column": column,
                    "first": one.text,
                    "second": two.text,
                    "move": relative(move) if is_claim(name) else difference,
                }
            )
    return pd.DataFrame(rows, columns=["table", "row", "column", "first", "second", "move"])


def spread_of(comparisons: dict) -> dict:
    """The largest move per table and column (absolute) and per claim (relative), and per table the one
    move the report quotes; a table whose rows or words differ between the runs is refused."""
    unlike = {name: comparison.form for name, comparison in comparisons.items() if comparison.form}
    if unlike:
        name, cells = next(iter(unlike.items()))
        raise ValueError(
            f"{name} differs in form between the two runs (e.g. {cells[0]}): compare two runs of one configuration"
        )
    frame = moves_frame(comparisons)
    claimed = frame["table"].map(is_claim)
    tables = frame[~claimed]
    columns = {
        table: {column: float(group["move"].max()) for column, group in rows.groupby("column")}
        for table, rows in tables.groupby("table")
    }
    claims = {claim: float(group["move"].max()) for claim, group in frame[claimed].groupby("row")}
    largest = []
    for table, rows in tables.groupby("table"):
        row = rows.loc[rows["move"].idxmax()]
        largest.append(
            {
                "table": table,
                "what": f"{row['row']}, {row['column']}",
                "first": row["first"],
                "second": row["second"],
                "move": round(float(row["move"]), 6),
            }
        )
    return {"largest": largest, "columns": columns, "claims": claims}


def spread_text(record: dict) -> str:
    """The spread file's text: its header, then ``record`` as YAML."""
    return SPREAD_HEADER + yaml.safe_dump(record, sort_keys=True, allow_unicode=True)


def main(args) -> int:
    if args.spread_file and not (args.first_run and args.second_run):
        raise ValueError("--spread-file needs --first-run and --second-run: each run's commit and settings, in words")
    comparisons = compare_folders(Path(args.first), Path(args.second))
    frame = moves_frame(comparisons)
    spread = spread_of(comparisons)
    text = (
        f"# Spread between two runs of scale `{args.scale}`\n\nfirst: `{args.first}`; second: `{args.second}`\n\n"
        f"## Largest move per table\n\n{pd.DataFrame(spread['largest']).to_markdown(index=False)}\n\n"
        f"## Every number (claims: relative move)\n\n{frame.to_markdown(index=False)}\n"
    )
    print(text)
    if args.output:
        with atomic_path(Path(args.output)) as temporary:
            temporary.write_text(text)
    if args.spread_file:
        record = {
            "measured_with": f"python -m truncback compare-runs --scale {args.scale}",
            "machine": hardware(),
            "scale": args.scale,
            "first_run": args.first_run,
            "second_run": args.second_run,
            **spread,
        }
        with atomic_path(Path(args.spread_file)) as temporary:
            temporary.write_text(spread_text(record))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare-runs",
        help="every number of two runs of one scale, side by side",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scale", required=True, help="the scale both runs are of")
    parser.add_argument("--first", required=True, help="paper_tables/<scale> of the first run")
    parser.add_argument("--second", required=True, help="paper_tables/<scale> of the second run")
    parser.add_argument("--output", help="also write the comparison (Markdown) here")
    parser.add_argument(
        "--spread-file",
        help="write the largest moves to this YAML file, which the reproduction "
        "report and check-results read (config/cross_machine_spread.yaml)",
    )
    parser.add_argument(
        "--first-run",
        help="with --spread-file: the first run's commit and settings, in words, for the spread file and the report "
        '(e.g. "at commit 59fb25c1 with torch\'s default CPU kernels"); its folder, a path of this machine, is not '
        "recorded",
    )
    parser.add_argument("--second-run", help="with --spread-file: the second run's commit and settings, as --first-run")
    parser.set_defaults(run=main)
