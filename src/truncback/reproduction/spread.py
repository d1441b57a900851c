"""How far our numbers move between two runs of one scale on different floating-point kernels: every
number of Tables 2-4 (as the reproduction report computes it) from two result folders, side by side,
with the difference, and the largest difference per table against the report's tolerance.

Two machines give two runs; without a second machine, a run with the CPU kernels of an older
processor emulates one (``ATEN_CPU_CAPABILITY=default`` makes torch use its non-vectorised kernels,
``MKL_ENABLE_INSTRUCTIONS=SSE4_2`` makes MKL's matrix products take their SSE4.2 path): the same
kind of last-digit differences, which training then amplifies.

``python -m truncback compare-runs --scale quick --first results/quick --second /elsewhere/results/quick --reference config/paper_reference.yaml --output spread.md``
"""

import argparse
from pathlib import Path

import pandas as pd

from truncback.data.atomic import atomic_path
from truncback.reproduction.evidence import load_evidence, load_reference
from truncback.reproduction.numbers import table_rows

RESULT_FILES = {"hypercleaning": "hypercleaning/*_seed*.json", "task_interaction": "task_interaction/*/trial*.json",
                "omniglot": "omniglot/*.json"}


def numbers(reference, scale: str, results: Path) -> pd.DataFrame:
    """Tables 2-4's numbers from the raw results under ``results`` (results/<scale>)."""
    found = {name: sorted(path for path in results.glob(pattern)
                          if not path.name.endswith(".timing.json") and path.name != "depth.json")
             for name, pattern in RESULT_FILES.items()}
    if not any(found.values()):
        raise FileNotFoundError(f"no hypercleaning, task-interaction or Omniglot result under {results}")
    evidence = load_evidence(scale, hypercleaning=found["hypercleaning"], task_interaction=found["task_interaction"],
                             omniglot=found["omniglot"])
    return pd.DataFrame(table_rows(reference, evidence))


def compare(reference, scale: str, first: Path, second: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every number of both runs with the difference, the largest difference per table)."""
    one, two = numbers(reference, scale, first), numbers(reference, scale, second)
    merged = one[["table", "what", "ours", "tolerance"]].merge(two[["table", "what", "ours"]], on=["table", "what"],
                                                               suffixes=(" first", " second"))
    if len(merged) != len(one) or len(merged) != len(two):
        raise ValueError(f"the runs under {first} and {second} do not give the same numbers (different methods or "
                         "settings); compare two runs of one configuration")
    merged["difference"] = merged["ours second"] - merged["ours first"]
    merged["|difference| / tolerance"] = merged["difference"].abs() / merged["tolerance"]
    largest = merged.assign(size=merged["difference"].abs()).sort_values("size").groupby("table").tail(1)
    largest = largest.drop(columns="size").sort_values("table")
    return merged, largest


def main(args) -> int:
    reference = load_reference(args.reference)
    merged, largest = compare(reference, args.scale, Path(args.first), Path(args.second))
    text = (f"# Spread between two runs of scale `{args.scale}`\n\nfirst: `{args.first}`; second: `{args.second}`\n\n"
            f"## Largest difference per table\n\n{largest.to_markdown(index=False)}\n\n"
            f"## Every number\n\n{merged.to_markdown(index=False)}\n")
    print(text)
    if args.output:
        with atomic_path(Path(args.output)) as temporary:
            temporary.write_text(text)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("compare-runs", help="Tables 2-4's numbers of two runs of one scale, side by side",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", required=True, help="the scale both runs are of")
    parser.add_argument("--first", required=True, help="results/<scale> of the first run")
    parser.add_argument("--second", required=True, help="results/<scale> of the second run")
    parser.add_argument("--reference", default="config/paper_reference.yaml", help="the paper's numbers")
    parser.add_argument("--output", help="also write the comparison (Markdown) here")
    parser.set_defaults(run=main)
