"""Writing a results table as CSV, Markdown, LaTeX and HTML (for Snakemake's report), byte for byte
the same for the same data."""

import argparse
import html
from pathlib import Path

import pandas as pd

from truncback.runtime.atomic import atomic_path
from truncback.runtime.files import read_results, read_timings

FLOAT_FORMAT = "{:.4g}"
WALL_CLOCK_COLUMNS = ("Sec/iter", "CPU s/iter")
"""Columns holding wall-clock measurements: the only bytes of a table that differ between two runs
(with Table 1's columns whose name starts with "Time")."""


def is_wall_clock(column: str) -> bool:
    return column in WALL_CLOCK_COLUMNS or column.startswith("Time")


def _formatted(frame: pd.DataFrame) -> pd.DataFrame:
    """Floats as fixed-precision strings, so every format shows the same digits."""
    return frame.apply(
        lambda column: column.map(FLOAT_FORMAT.format) if pd.api.types.is_float_dtype(column) else column
    )


HTML_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body {{ font-family: sans-serif; font-size: 14px; margin: 1em; }}
table {{ border-collapse: collapse; }} th {{ background: #eee; }}
th, td {{ border: 1px solid #bbb; padding: 3px 6px; text-align: left; vertical-align: top; }}</style></head>
<body>
{body}
</body></html>
"""


def html_page(title: str, body: str) -> str:
    """A self-contained HTML page (what Snakemake's report shows in its viewer)."""
    return HTML_PAGE.format(title=html.escape(title), body=body)


def html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, border=0)


def write_table(frame: pd.DataFrame, stem, caption: str) -> list[Path]:
    """Writes ``stem``.csv, .md, .tex and .html (each to a temporary name, then renamed); returns the
    paths."""
    stem = Path(stem)
    text = _formatted(frame)
    contents = {
        ".csv": text.to_csv(index=False, lineterminator="\n"),
        ".md": f"{caption}\n\n{text.to_markdown(index=False, disable_numparse=True)}\n",
        ".tex": text.to_latex(index=False, caption=caption, escape=True),
        ".html": html_page(stem.name, f"<p>{html.escape(caption)}</p>\n{html_table(text)}"),
    }
    paths = []
    for suffix, content in contents.items():
        path = stem.with_suffix(suffix)
        with atomic_path(path) as temporary:
            temporary.write_text(content)
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
    groups: dict[str, list] = {}
    for index, result in enumerate(results):
        groups.setdefault(result.label, []).append((result, timings[index]) if timings is not None else result)
    return list(groups.values())


def read_run_results(paths, result_type, shared_settings: bool = True) -> list:
    """The typed result files; with ``shared_settings`` they must share their settings (one experiment
    at one scale), else each is read on its own (e.g. task interaction's datasets differ in sizes)."""
    return read_results(paths, result_type) if shared_settings else [read_results([p], result_type)[0] for p in paths]


def register_table(
    subparsers, name: str, title: str, doc: str, result_type, build, shared_settings: bool = True
) -> None:
    """A ``table-*`` command: ``build(results, timings) -> (frame, caption)`` from the result files
    given with --results (each with its timing file beside it), written as CSV, Markdown, LaTeX and HTML."""

    def main(args) -> int:
        results = read_run_results(args.results, result_type, shared_settings)
        frame, caption = build(results, read_timings(args.results))
        write_table(frame, args.output, caption)
        return 0

    parser = subparsers.add_parser(
        name, help=title, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--results", nargs="+", required=True, help="result JSON files (each with its <stem>.timing.json beside it)"
    )
    parser.add_argument("--output", required=True, help="output path without suffix (.csv/.md/.tex are written)")
    parser.set_defaults(run=main)
