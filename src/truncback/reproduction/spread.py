"""How far our numbers move between two runs of one scale on different floating-point kernels: every
number of every table and every claim of the report (all but the wall-clock cells) from two
``paper_tables/<scale>`` folders, side by side, and the largest move per table, per column and per
claim, which ``check-results`` judges a rerun against.

Two machines give two runs; without a second machine, a run with the CPU kernels of an older
processor emulates one (``ATEN_CPU_CAPABILITY=default`` makes torch use its non-vectorised kernels,
``MKL_ENABLE_INSTRUCTIONS=SSE4_2`` makes MKL's matrix products take their SSE4.2 path): the same
kind of last-digit differences, which training then amplifies.

``python -m truncback compare-runs --scale quick --first paper_tables/quick --second /elsewhere/paper_tables/quick --spread-file config/cross_machine_spread.yaml``
"""

import argparse
from pathlib import Path

import pandas as pd
import yaml

from truncback.io.atomic import atomic_path
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


def main(args) -> int:
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
        command = f"python -m truncback compare-runs --scale {args.scale} --first {args.first} --second {args.second}"
        record = {
            "measured_with": command,
            "machine": hardware(),
            "scale": args.scale,
            "second_run": args.second_run,
            **spread,
        }
        with atomic_path(Path(args.spread_file)) as temporary:
            temporary.write_text(SPREAD_HEADER + yaml.safe_dump(record, sort_keys=True, allow_unicode=True))
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
        "--second-run", default="on another machine", help="how the second run differs, in words (for the report)"
    )
    parser.set_defaults(run=main)
