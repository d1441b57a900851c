"""``snakemake --lint``, with the warnings this workflow keeps on purpose listed here, each with its
reason; any other warning fails (exit status 1), printed as Snakemake wrote it.

``python -m truncback lint-workflow`` (``make lint``, beside ``snakefmt --check``)
"""

import argparse
import re
import subprocess
import sys

from truncback.pipeline.scratch import repository_root, snakemake_command

KEPT = {
    "Specify a conda environment or container for each rule.": "the software environment is the pinned virtual environment (`make`, requirements.lock) or the Nix flake; a "
    "conda file or container that nothing runs or tests would document software the artifact does not use",
    "Shell command directly uses variable FETCH_OPTIONS from outside of the rule": "the archive rules take where an archive comes from (download or data_dir) and the scale (named in error "
    "messages) from FETCH_OPTIONS on purpose: neither is part of what the archive is (its checksum, a param, is), "
    "and as params they would rerun the archive, and everything downstream, when data_dir is spelled otherwise "
    "or the scale changes",
}
LINT = re.compile(r"^Lints for (?P<where>.+):\n(?P<body>(?:    .*\n?|\s*\n)+)", re.MULTILINE)
TITLE = re.compile(r"^    \* (.+?):?$", re.MULTILINE)


def warnings(output: str) -> list[tuple[str, str]]:
    """(where, title) of every lint in ``snakemake --lint``'s text."""
    return [
        (match.group("where"), title) for match in LINT.finditer(output) for title in TITLE.findall(match.group("body"))
    ]


def main(args) -> int:
    result = subprocess.run(
        snakemake_command("--lint"),
        cwd=repository_root(),
        capture_output=True,
        text=True,
    )
    output = result.stdout + result.stderr
    found = warnings(output)
    if result.returncode and not found:  # Snakemake itself failed (a syntax error, a bad config)
        print(output, file=sys.stderr)
        return 1
    unexpected = [(where, title) for where, title in found if title.rstrip(":") not in KEPT]
    kept = sorted({title.rstrip(":") for _, title in found} & set(KEPT))
    for title in kept:
        count = sum(t.rstrip(":") == title for _, t in found)
        print(f"kept ({count}x): {title} Reason: {KEPT[title]}")
    for where, title in unexpected:
        print(f"lint: {where}: {title}", file=sys.stderr)
    if unexpected:
        print("(`snakemake --lint` explains each)", file=sys.stderr)
        return 1
    print("snakemake --lint: no other warning")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "lint-workflow",
        help="snakemake --lint, failing on any warning not kept on purpose",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=main)
