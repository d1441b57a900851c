"""Writing a results table as CSV, Markdown and LaTeX, byte for byte the same for the same data."""

from pathlib import Path

import pandas as pd

FLOAT_FORMAT = "{:.4g}"
WALL_CLOCK_COLUMNS = ("Sec/iter", "CPU s/iter")
"""Columns holding wall-clock measurements: the only bytes of a table that differ between two runs."""


def _formatted(frame: pd.DataFrame) -> pd.DataFrame:
    """Floats as fixed-precision strings, so every format shows the same digits."""
    return frame.apply(lambda column: column.map(FLOAT_FORMAT.format)
                       if pd.api.types.is_float_dtype(column) else column)


def write_table(frame: pd.DataFrame, stem, caption: str) -> list[Path]:
    """Writes ``stem``.csv, .md and .tex (each to a temporary name, then renamed); returns the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    text = _formatted(frame)
    contents = {
        ".csv": text.to_csv(index=False, lineterminator="\n"),
        ".md": f"{caption}\n\n{text.to_markdown(index=False, disable_numparse=True)}\n",
        ".tex": text.to_latex(index=False, caption=caption, escape=True),
    }
    paths = []
    for suffix, content in contents.items():
        path = stem.with_suffix(suffix)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(content)
        temporary.replace(path)
        paths.append(path)
    return paths


def mean_std(values, digits: int) -> str:
    """'m' for one value, 'm ± s' (sample standard deviation) for several."""
    series = pd.Series(values, dtype=float)
    if len(series) == 1:
        return f"{series.iloc[0]:.{digits}f}"
    return f"{series.mean():.{digits}f} ± {series.std():.{digits}f}"


def grouped_by_label(results, timings=None) -> list[list]:
    """Results (paired with their timings, when given) grouped by method label, in the order each
    label first appears (the config's order of methods)."""
    groups = {}
    for index, result in enumerate(results):
        groups.setdefault(result.label, []).append((result, timings[index]) if timings is not None else result)
    return list(groups.values())
