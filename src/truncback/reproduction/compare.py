"""Two runs of one scale, number by number: every table (CSV) of ``paper_tables/<scale>`` and every
claim of the reproduction report. A cell is its text with the numbers taken out (its skeleton: "74.60
± 1.88" -> "# ± #") and the numbers; two cells agree in form when their skeletons are equal, and then
move by the largest difference of their numbers. Wall-clock columns (and the report's lines marked
"(wall clock)") are kept apart: they are reported, never judged.

This is what ``compare-runs`` measures the cross-machine spread with, and what ``check-results`` judges
a rerun against the committed outputs with.
"""

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from truncback.io.tables import is_wall_clock

NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
REPORT = "reproduction_report.md"
WALL_CLOCK = "(wall clock)"
CLAIM_LINE = re.compile(r"^- \*\*(\w+): ([A-Z ]+)\.\*\* (.*)$")


@dataclass(frozen=True)
class Cell:
    """One cell of a table (or one claim of the report): its text, skeleton and numbers."""

    text: str
    wall_clock: bool = False
    verdict: str | None = None  # a claim's verdict

    @property
    def skeleton(self) -> str:
        return NUMBER.sub("#", self.text)

    @property
    def numbers(self) -> tuple[float, ...]:
        return tuple(float(number) for number in NUMBER.findall(self.text))


MEASURED = re.compile(r"^\s*(?:[<>]\s*)?[-+]?\d[\d.eE+-]*(?:\s*±\s*[\d.eE+-]+)?\s*$|^\s*-?\s*$")


def _row_labels(frame: pd.DataFrame) -> list[str]:
    """A label per row from its leading columns of names (those of which no cell is a measured number,
    "74.60 ± 1.88", "> 40" or "-"), so two runs label their rows alike, or else from its first cell (a
    setting such as q or T); a label still repeated gets its occurrence ("[2]")."""
    names: list[str] = []
    for column in frame.columns:
        if len(names) == 3 or any(MEASURED.match(text) for text in frame[column].astype(str)):
            break
        names.append(column)
    labels = (
        [" / ".join(row) for row in frame[names].astype(str).values.tolist()]
        if names
        else [f"{frame.columns[0]}={value}" for value in frame.iloc[:, 0].astype(str)]
    )  # a setting: q, T
    counts = {label: labels.count(label) for label in labels}
    seen: dict[str, int] = {}
    for index, label in enumerate(labels):
        if counts[label] > 1:
            seen[label] = seen.get(label, 0) + 1
            labels[index] = f"{label} [{seen[label]}]"
    return labels


def table_cells(path: Path) -> dict[tuple[str, str], Cell]:
    """{(row label, column): cell} of a table's CSV."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return {
        (label, column): Cell(text, wall_clock=is_wall_clock(column))
        for label, (_, row) in zip(_row_labels(frame), frame.iterrows())
        for column, text in row.items()
    }


def report_claims(path: Path) -> dict[str, Cell]:
    """{claim id: its verdict and evidence} of a reproduction report (Markdown)."""
    claims = {}
    for line in Path(path).read_text().splitlines():
        match = CLAIM_LINE.match(line)
        if match:
            claims[match.group(1)] = Cell(match.group(3), wall_clock=WALL_CLOCK in line, verdict=match.group(2))
    return claims


CLAIM = "claim "


def is_claim(name: str) -> bool:
    return name.startswith(CLAIM)


def outputs(folder: Path) -> dict[str, dict]:
    """Every table (by file stem) and every claim of the report ("claim <id>") of a paper_tables/<scale>
    folder, each as {(row, column): cell}."""
    found = {path.stem: table_cells(path) for path in sorted(Path(folder).glob("*.csv"))}
    if (Path(folder) / REPORT).is_file():
        found |= {
            f"{CLAIM}{claim}": {(claim, "evidence"): cell}
            for claim, cell in report_claims(Path(folder) / REPORT).items()
        }
    return found


@dataclass
class Comparison:
    """One table (or the claims) of two runs: the move of every number, and what differs in form."""

    name: str
    layout: str  # how the rows and columns differ between the runs ("" where they do not)
    moves: list  # (row, column, first cell, second cell, largest absolute difference)
    form: list  # (row, column, first text or None, second text or None): present in one only, or other words
    verdicts: list  # (claim, first verdict, second verdict, decided by wall-clock time) where they differ


def _layout(first: dict, second: dict) -> str:
    differences = []
    for what, index in (("columns", 1), ("rows", 0)):
        one, two = ({key[index] for key in cells} for cells in (first, second))
        for side, only in (("committed", one - two), ("fresh", two - one)):
            if only:
                differences.append(f"{what} only {side}: {', '.join(sorted(only))}")
    return "; ".join(differences)


def compare_cells(name: str, first: dict, second: dict) -> Comparison:
    """Cell by cell; the first run is called "committed", the second "fresh"."""
    moves, form, verdicts = [], [], []
    for key in sorted(set(first) | set(second), key=str):
        one, two = first.get(key), second.get(key)
        row, column = key
        if one is not None and two is not None and one.verdict != two.verdict:
            verdicts.append((row, one.verdict, two.verdict, one.wall_clock))
        if one is not None and two is not None and one.wall_clock and one.skeleton != two.skeleton:
            moves.append((row, column, one, two, math.inf))  # a measured time written otherwise: not judged
            continue
        if one is None or two is None or one.skeleton != two.skeleton or len(one.numbers) != len(two.numbers):
            form.append((row, column, one.text if one else None, two.text if two else None))
            continue
        if one.numbers:
            moves.append((row, column, one, two, max(abs(b - a) for a, b in zip(one.numbers, two.numbers))))
    return Comparison(name, _layout(first, second), moves, form, verdicts)


def compare_folders(first: Path, second: Path) -> dict[str, Comparison]:
    """Every table and the claims found in either paper_tables/<scale> folder, compared."""
    one, two = outputs(first), outputs(second)
    if not one and not two:
        raise FileNotFoundError(f"no table (*.csv) or {REPORT} in {first} nor in {second}")
    return {name: compare_cells(name, one.get(name, {}), two.get(name, {})) for name in sorted(set(one) | set(two))}


def moved_numbers(move) -> str:
    """The numbers of a move that differ, "a -> b" each."""
    _, _, one, two, _ = move
    return ", ".join(f"{a:g} -> {b:g}" for a, b in zip(one.numbers, two.numbers) if a != b)


def relative(move) -> float:
    """A claim's move relative to the size of its number (the claims' numbers span many scales)."""
    row, column, one, two, _ = move
    return max(
        (abs(b - a) / max(abs(a), abs(b)) if max(abs(a), abs(b)) else 0.0) for a, b in zip(one.numbers, two.numbers)
    )
