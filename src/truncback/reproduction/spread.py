"""How far our numbers move between two runs of one scale on different floating-point kernels: every
number of Tables 2-4 (all but the wall-clock columns) from two table folders, side by side, with the
difference, and the largest move per table.

Two machines give two runs; without a second machine, a run with the CPU kernels of an older
processor emulates one (``ATEN_CPU_CAPABILITY=default`` makes torch use its non-vectorised kernels,
``MKL_ENABLE_INSTRUCTIONS=SSE4_2`` makes MKL's matrix products take their SSE4.2 path): the same
kind of last-digit differences, which training then amplifies.

``python -m truncback compare-runs --scale quick --first paper_tables/quick --second /elsewhere/paper_tables/quick --output spread.md``
"""

import argparse
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import yaml

from truncback.data.atomic import atomic_path
from truncback.runtime.measure import hardware
from truncback.tables import is_wall_clock

SPREAD_HEADER = ("# WRITTEN by `python -m truncback compare-runs ... --spread-file` (see measured_with): how far the\n"
                 "# numbers of Tables 2-4 moved between two runs; the reproduction report quotes it.\n")

TABLES = {"2": "table2_hypercleaning.csv", "3": "table3_task_interaction.csv", "4": "table4_omniglot.csv"}
LEADING_NUMBER = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")


def cells(path: Path) -> dict:
    """{(row label, column): number} of a table's CSV: each cell's leading number ("74.60 ± 1.88" ->
    74.6), without the wall-clock columns and the cells that hold none."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    labels = [" / ".join(values) for values in frame[[c for c in frame.columns[:2] if c in ("Dataset", "Method")]]
              .itertuples(index=False)]
    counts, seen = Counter(labels), Counter()
    for index, label in enumerate(labels):  # a method listed twice (two milestones) gets its occurrence
        seen[label] += 1
        labels[index] = label if counts[label] == 1 else f"{label} [{seen[label]}]"
    found = {}
    for label, (_, row) in zip(labels, frame.iterrows()):
        for column, text in row.items():
            match = LEADING_NUMBER.match(text)
            if match and column not in ("Dataset", "Method") and not is_wall_clock(column):
                found[(label, column)] = float(match.group(1))
    return found


def compare(first: Path, second: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every number of Tables 2-4 found in both paper_tables/<scale> folders, with the difference;
    the largest move per table). A table missing from either folder is left out."""
    rows = []
    for table, name in TABLES.items():
        if not (first / name).is_file() or not (second / name).is_file():
            continue
        one, two = cells(first / name), cells(second / name)
        if set(one) != set(two):
            raise ValueError(f"{first / name} and {second / name} have different rows or columns: compare two runs "
                             "of one configuration")
        rows += [{"table": table, "row": label, "column": column, "first": one[(label, column)],
                  "second": two[(label, column)], "difference": two[(label, column)] - one[(label, column)]}
                 for label, column in one]
    if not rows:
        raise FileNotFoundError(f"no table of {sorted(TABLES.values())} in both {first} and {second}")
    merged = pd.DataFrame(rows)
    largest = merged.loc[merged["difference"].abs().groupby(merged["table"]).idxmax()].sort_values("table")
    return merged, largest


def main(args) -> int:
    merged, largest = compare(Path(args.first), Path(args.second))
    text = (f"# Spread between two runs of scale `{args.scale}`\n\nfirst: `{args.first}`; second: `{args.second}`\n\n"
            f"## Largest difference per table\n\n{largest.to_markdown(index=False)}\n\n"
            f"## Every number\n\n{merged.to_markdown(index=False)}\n")
    print(text)
    if args.output:
        with atomic_path(Path(args.output)) as temporary:
            temporary.write_text(text)
    if args.spread_file:
        command = f"python -m truncback compare-runs --scale {args.scale} --first {args.first} --second {args.second}"
        spread = {"measured_with": command, "machine": hardware(),
                  "scale": args.scale, "second_run": args.second_run,
                  "largest": [{"table": str(row["table"]), "what": f"{row['row']}, {row['column']}",
                               "first": float(row["first"]), "second": float(row["second"]),
                               "difference": round(float(row["difference"]), 6)} for _, row in largest.iterrows()]}
        with atomic_path(Path(args.spread_file)) as temporary:
            temporary.write_text(SPREAD_HEADER + yaml.safe_dump(spread, sort_keys=True, allow_unicode=True))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("compare-runs", help="Tables 2-4's numbers of two runs of one scale, side by side",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", required=True, help="the scale both runs are of")
    parser.add_argument("--first", required=True, help="paper_tables/<scale> of the first run")
    parser.add_argument("--second", required=True, help="paper_tables/<scale> of the second run")
    parser.add_argument("--output", help="also write the comparison (Markdown) here")
    parser.add_argument("--spread-file", help="write the largest moves per table to this YAML file, which the "
                        "reproduction report reads (config/cross_machine_spread.yaml)")
    parser.add_argument("--second-run", default="on another machine", help="how the second run differs, in words "
                        "(for the report)")
    parser.set_defaults(run=main)
