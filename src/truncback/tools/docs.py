"""The documentation's measured numbers, written from the committed outputs: every block between
``<!-- generated: NAME -->`` and ``<!-- end generated: NAME -->`` in README.md and docs/*.md is
rewritten from the files the pipeline committed (the reproduction reports, tables and provenance of
the smoke and quick scales, the rehearsal's estimates), so prose never carries a number no file holds.

``python -m truncback docs`` rewrites the blocks; ``--check`` only says which are stale (exit status 1).
"""

import argparse
import re
import string
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from truncback.hypergrad import METHODS, resolve
from truncback.pipeline.check import has_outputs
from truncback.pipeline.expected import currency
from truncback.pipeline.scratch import repository_root
from truncback.reproduction.compare import report_claims

PAGES = ("README.md", "docs/claims.md", "docs/benchmarks.md", "docs/reproducing.md", "docs/choosing.md")
BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated: (?P=name) -->)", re.DOTALL
)
COMMITTED_SCALES = ("smoke", "quick")
OFFLINE = "offline"  # its outputs are committed once its hours-long run has been made (its column says so until then)
TABLE_NUMBERS = re.compile(r"Table numbers: (\d+) of (\d+) compared within tolerance")
RUN_TIME = re.compile(r"^- (\w+): (\d+) job\(s\), (\d+) s in all, largest resident memory (\d+) MB", re.MULTILINE)


@dataclass(frozen=True)
class Claim:
    """A claim of the report as the README lists it."""

    key: str
    name: str
    evidence: str  # the figure or table it is judged from
    targets: tuple  # outputs (under figures/<scale>/ or paper_tables/<scale>/) that make its evidence
    experiments: tuple  # the experiments whose jobs it needs (the report's run-time lines)


CLAIMS = (
    Claim(
        "C1",
        "bias_decays_exponentially",
        "Fig. 1; Fig. 7 (4)",
        ("fig1_toy_bound.png", "fig7_omniglot.png"),
        ("toy", "omniglot"),
    ),
    Claim("C2", "one_rmd_descent_direction", "Fig. 2", ("fig2_toy_descent_ratio.png",), ("toy",)),
    Claim("C3", "biased_convergence_with_direct_term", "Fig. 3", ("fig3_toy_biased_convergence.png",), ("toy",)),
    Claim(
        "C4",
        "small_k_matches_full",
        "Tables 2-4",
        ("table2_hypercleaning.md", "table3_task_interaction.md", "table4_omniglot.md"),
        ("hypercleaning", "task_interaction", "omniglot"),
    ),
    Claim("C5", "krmd_faster_and_leaner", "Table 1", ("table1_complexity.md",), ("complexity",)),
    Claim("C6", "no_decay_without_regularization", "Fig. 7 (4)", ("fig7_omniglot.png",), ("omniglot",)),
    Claim("G1", "aid_cg_fewest_iterations", "AID vs ITD (companion)", ("companion_aid_vs_itd.md",), ("aid_vs_itd",)),
    Claim("G2", "aid_fp_itd_same_rate", "AID vs ITD (companion)", ("companion_aid_vs_itd.png",), ("aid_vs_itd",)),
    Claim("L1", "fom_does_not_converge", "FOM vs UFOM (companion)", ("companion_fom_ufom_paths.md",), ("fom_ufom",)),
    Claim("L2", "ufom_unbiased", "FOM vs UFOM (companion)", ("companion_fom_ufom_estimator.md",), ("fom_ufom",)),
    Claim(
        "L3",
        "ufom_constant_memory_and_time",
        "FOM vs UFOM (companion)",
        ("companion_fom_ufom_memory.md",),
        ("fom_ufom",),
    ),
)


class Committed:
    """The committed outputs the blocks are written from, each read once; a missing file is named."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, relative: str) -> Path:
        path = self.root / relative
        if not path.is_file():
            raise FileNotFoundError(
                f"{relative} is not in the checkout: the docs are written from the committed "
                "outputs (make expected-outputs SCALE=smoke|quick|rehearsal makes them)"
            )
        return path

    def verdicts(self, scale: str) -> dict:
        return {
            claim: cell.verdict
            for claim, cell in report_claims(self.path(f"paper_tables/{scale}/reproduction_report.md")).items()
        }

    def job_seconds(self, scale: str) -> dict:
        """Per experiment: (jobs, summed job seconds, largest resident MB), from the report's run-time lines."""
        text = self.path(f"paper_tables/{scale}/reproduction_report.md").read_text()
        return {name: (int(jobs), int(seconds), int(rss)) for name, jobs, seconds, rss in RUN_TIME.findall(text)}

    def table_numbers(self, scale: str) -> tuple[int, int] | None:
        """(table numbers within tolerance, table numbers compared), from the report's summary line."""
        found = TABLE_NUMBERS.search(self.path(f"paper_tables/{scale}/reproduction_report.md").read_text())
        return (int(found.group(1)), int(found.group(2))) if found else None

    def has(self, scale: str) -> bool:
        """Whether the outputs of ``scale`` are committed (check-results' test: its tables and its report)."""
        return has_outputs(self.root, scale)

    def provenance(self, scale: str) -> dict:
        return yaml.safe_load(self.path(f"paper_tables/{scale}/provenance.yaml").read_text())

    def estimates(self) -> pd.DataFrame:
        return pd.read_csv(self.path("paper_tables/rehearsal/full_run_estimates.csv"))

    def estimate_jobs(self) -> pd.DataFrame:
        return pd.read_csv(self.path("paper_tables/rehearsal/full_run_estimates_jobs.csv"))


def minutes(seconds: float) -> str:
    """A duration, in hours from 1 h, in minutes from 1 min, else in seconds."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def wall_time(made: dict) -> str:
    """A committed scale's wall time from its provenance; made by several Snakemake runs (expected-outputs'
    ``snakemake_runs``: one per target, more where it was killed and resumed or where it reused an
    earlier commit's run, ``reused_runs_of``: then an upper bound, the rerun jobs counted twice), it says it
    is their sum, which counts any pause within them."""
    runs, targets = made.get("snakemake_runs", 1), len(made.get("targets") or ()) or 1
    if made.get("reused_runs_of"):
        return (
            f"at most {minutes(made['wall_seconds'])}: the sum of {runs} runs, an earlier commit's and the later "
            f"reruns of the jobs whose code changed since ({len(made['reused_runs_of'])} commit(s)), which count "
            "those jobs twice"
        )
    if runs > targets:
        return f"{minutes(made['wall_seconds'])}, the sum of {runs} runs (killed and resumed)"
    if runs > 1:
        return f"{minutes(made['wall_seconds'])}, the sum of {runs} runs (one per target)"
    return minutes(made["wall_seconds"])


WALL = re.compile(r"wall with (\d+) jobs at once: at least ([\d.]+) h")


def full_run(estimates: pd.DataFrame) -> str:
    """The paper scale's estimated total, from the summary's last row."""
    total = estimates.iloc[-1]
    wall = WALL.search(total["Experiment"])
    return f"{total['Estimate (job-hours)']:.1f} job-hours" + (
        f", at least {wall.group(2)} h of wall time with {wall.group(1)} jobs at once" if wall else ""
    )


def hours_of(estimates: pd.DataFrame, experiments) -> float:
    rows = estimates[estimates["Experiment"].isin(experiments)]
    return float(rows["Estimate (job-hours)"].sum())


def offline_hours(estimates: pd.DataFrame) -> float:
    """The offline scale's job-hours as the rehearsal estimates them: every experiment's but task
    interaction's (the summary's rows but its last, the total)."""
    return hours_of(estimates, [name for name in estimates["Experiment"][:-1] if name != "task_interaction"])


def claims_table(committed: Committed) -> str:
    """README: claim -> evidence -> target -> time -> verdict per scale."""
    scales = COMMITTED_SCALES + ((OFFLINE,) if committed.has(OFFLINE) else ())
    verdicts = {scale: committed.verdicts(scale) for scale in scales}
    seconds = committed.job_seconds("quick")
    estimates = committed.estimates()
    quick = committed.provenance("quick")
    lines = [
        "| Claim | Evidence | Target (under `figures/<scale>/` or `paper_tables/<scale>/`) | Job time: quick "
        "(measured) / full (estimated) | Smoke | Quick | Offline | Full |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for claim in CLAIMS:
        quick_seconds = sum(seconds.get(name, (0, 0, 0))[1] for name in claim.experiments)
        lines.append(
            f"| {claim.key} `{claim.name}` | {claim.evidence} | "
            + ", ".join(f"`{target}`" for target in claim.targets)
            + f" | {minutes(quick_seconds)} / {minutes(3600 * hours_of(estimates, claim.experiments))} | "
            f"{verdicts['smoke'].get(claim.name, '-')} | "
            f"[{verdicts['quick'].get(claim.name, '-')}](paper_tables/quick/reproduction_report.md) | "
            + (
                f"[{verdicts[OFFLINE].get(claim.name, '-')}](paper_tables/{OFFLINE}/reproduction_report.md)"
                if OFFLINE in verdicts
                else "not committed"
            )
            + " | not run |"
        )
    lines.append("")
    lines.append(
        f"Job time sums the jobs each claim needs (the quick run's on {quick['machine']}, commit "
        f"`{quick['commit'][:12]}`; the paper scale's as the rehearsal estimates it on the same kind of "
        "machine); jobs run side by side on several cores."
    )
    return "\n".join(lines) + "\n"


def at_a_glance(committed: Committed) -> str:
    """README: what each scale takes here, whether its committed outputs are of the current code, and the
    largest memory any job needs."""
    rows = [
        "| Scale | What it runs | Wall time here | Commit and machine | Code of the committed outputs |",
        "| --- | --- | --- | --- | --- |",
    ]
    for scale, what in (
        ("smoke", "the whole DAG on tiny synthetic data"),
        ("quick", "the whole DAG on the offline real subsets (MNIST test set, Omniglot small1/2; CIFAR synthetic)"),
        (OFFLINE, "the paper's settings for all but task interaction, on the offline real subsets"),
        ("rehearsal", "every paper-scale job on synthetic data of the real sizes, a few iterations each"),
    ):
        if scale == OFFLINE and not committed.has(OFFLINE):
            rows.append(
                f"| `{OFFLINE}` | {what} | not committed; estimated {offline_hours(committed.estimates()):.1f} "
                "job-hours | from the rehearsal | - |"
            )
            continue
        made = committed.provenance(scale)
        rows.append(
            f"| `{scale}` | {what} | {wall_time(made)} | `{made['commit'][:12]}`, {made['machine']}{', ' + made['processor'] if made.get('processor') else ''} | {currency(made)} |"
        )
    rows.append(
        f"| `full` | the paper's settings, downloaded data | not run here; estimated "
        f"{full_run(committed.estimates())} | from the rehearsal | - |"
    )
    peak = committed.estimate_jobs().sort_values("max RSS MB").iloc[-1]
    rows += [
        "",
        f"The largest memory of any job: {peak['max RSS MB'] / 1000:.1f} GB ({peak['experiment']}, "
        f"{peak['job']}, in the rehearsal).",
    ]
    return "\n".join(rows) + "\n"


def claims_verdicts(committed: Committed) -> str:
    """docs/claims.md: every claim's verdict at each committed scale."""
    scales = COMMITTED_SCALES + ((OFFLINE,) if committed.has(OFFLINE) else ())
    verdicts = {scale: committed.verdicts(scale) for scale in scales}
    lines = ["| Claim | " + " | ".join(scales) + " |", "| --- |" + " --- |" * len(scales)]
    lines += [
        f"| {claim.key} `{claim.name}` | "
        + " | ".join(
            f"[{verdicts[scale].get(claim.name, '-')}](../paper_tables/{scale}/reproduction_report.md)"
            for scale in scales
        )
        + " |"
        for claim in CLAIMS
    ]
    return "\n".join(lines) + "\n"


def benchmark_tables(committed: Committed) -> str:
    """docs/benchmarks.md: Table 1 and the comparison with hand-written autograd at the quick scale."""
    parts = []
    for name, title in (
        ("table1_complexity", "Table 1 (quick scale)"),
        ("table1_baselines", "Our methods against hand-written autograd (quick scale)"),
    ):
        text = committed.path(f"paper_tables/quick/{name}.md").read_text().strip()
        parts.append(f"**{title}** ([CSV](../paper_tables/quick/{name}.csv)):\n\n{text}\n")
    return "\n".join(parts)


def scale_times(committed: Committed) -> str:
    """docs/reproducing.md: per experiment, its jobs' time at the quick scale and at the paper scale."""
    quick = committed.job_seconds("quick")
    estimates = committed.estimates().set_index("Experiment")
    lines = [
        "| Experiment | Quick: jobs, job time, largest memory | Full (estimated): jobs, job-hours, longest job |",
        "| --- | --- | --- |",
    ]
    for name in sorted(set(quick) | set(estimates.index[:-1])):
        jobs, seconds, rss = quick.get(name, (0, 0, 0))
        full = estimates.loc[name] if name in estimates.index else None
        lines.append(
            f"| {name} | {jobs}, {minutes(seconds)}, {rss} MB | "
            + (
                f"{int(full['Jobs'])}, {full['Estimate (job-hours)']:.2f}, {full['Longest job (h)']:.2f} h |"
                if full is not None
                else "- |"
            )
        )
    lines += ["", f"Full scale in all: {full_run(committed.estimates())}."]
    return "\n".join(lines) + "\n"


def table_spec(display: str) -> dict | None:
    """The method spec a Table 1 row shows (its display name in ``METHODS``, options filled in), or None."""
    for method in METHODS.values():
        parts, names = [], []
        for literal, name, _, _ in string.Formatter().parse(method.display):
            parts.append(re.escape(literal))
            if name is not None:
                parts.append(f"(?P<{name}>[^ ()]+)")
                names.append(name)
        match = re.fullmatch("".join(parts), display)
        if match:
            try:
                return resolve({"name": method.name, **{name: method.option(name).kind(match[name]) for name in names}})
            except ValueError:
                continue
    return None


def method_choice(committed: Committed) -> str:
    """docs/choosing.md: every method of ``METHODS``, its exactness and what it needs or costs (its
    ``guide_exact`` and ``guide_needs``), with its measured time and memory at the largest horizon of
    the committed quick-scale Table 1 (one row per Table 1 row, in its order; "-" for a method Table 1
    does not measure, after them)."""
    table = pd.read_csv(committed.path("paper_tables/quick/table1_complexity.csv"), dtype=str).set_index("Method")
    horizon = [column for column in table.columns if column.startswith("Time @ T=")][-1].split()[2]
    lines = [
        f"| Method | Spec | Exact | Needs / costs | Time @ {horizon} (s) | Peak MiB @ {horizon} | States held |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    first_row: dict[str, str] = {}  # method name -> the display name of its first row
    for shown, row in table.iterrows():
        spec = table_spec(shown)
        if spec is None:
            raise ValueError(f"Table 1's row {shown!r} is no method of METHODS")
        method = METHODS[spec["name"]]
        exact = method.guide_exact
        if method.name in first_row and " (" in exact:
            exact = f"{exact.split(' (')[0]} (as {first_row[method.name]})"
        first_row.setdefault(method.name, shown)
        written = ", ".join([method.name, *(f"{key}={value:g}" for key, value in spec.items() if key != "name")])
        lines.append(
            f"| {shown} | `{written}` | {exact} | {method.guide_needs} | {row[f'Time @ {horizon} (s)']} | "
            f"{row[f'Peak MiB @ {horizon}']} | {row[f'States held @ {horizon}']} |"
        )
    for method in METHODS.values():
        if method.name not in first_row:
            shown = method.display.format(**{option.name: option.name for option in method.options})
            lines.append(f"| {shown} | `{method.name}` | {method.guide_exact} | {method.guide_needs} | - | - | - |")
    return "\n".join(lines) + "\n"


def offline_limitation(committed: Committed) -> str:
    """README's list of what is not reproduced: the offline scale's item, which says whether its outputs
    are committed."""
    if not committed.has(OFFLINE):
        return (
            '- **No offline-scale outputs are committed**: its column in the claims table reads "not committed",\n'
            "  and C4 at the paper's iteration counts is not judged in this repository; `make reproduce\n"
            "  SCALE=offline CONFIG='data_dir=DIR'` runs it (its time: the estimate above).\n"
        )
    made = committed.provenance(OFFLINE)
    verdicts = committed.verdicts(OFFLINE)
    failed = [f"{claim.key} `{claim.name}`" for claim in CLAIMS if verdicts.get(claim.name) == "FAIL"]
    tables = committed.table_numbers(OFFLINE)
    item = (
        "**The offline scale is the paper's settings on smaller data**: its MNIST validation and test sets "
        "and Omniglot's characters are fewer than the paper's ([config/offline.yaml](config/offline.yaml)), "
        f"so its tolerances are wider; [its report](paper_tables/{OFFLINE}/reproduction_report.md) (commit "
        f"`{made['commit'][:12]}`) names each departure beside the verdicts. "
        + (f"There it fails {' and '.join(failed)}" if failed else "There it fails no claim")
        + (f"; {tables[0]} of {tables[1]} table numbers lie within tolerance" if tables else "")
        + "."
    )
    return textwrap.fill(item, width=104, initial_indent="- ", subsequent_indent="  ", break_long_words=False) + "\n"


BLOCKS = {
    "offline-limitation": offline_limitation,
    "claims-table": claims_table,
    "at-a-glance": at_a_glance,
    "claims-verdicts": claims_verdicts,
    "benchmark-tables": benchmark_tables,
    "scale-times": scale_times,
    "method-choice": method_choice,
}


def rewritten(text: str, committed: Committed, where: str) -> str:
    def fill(match):
        name = match.group("name")
        if name not in BLOCKS:
            raise ValueError(f"{where}: unknown generated block {name!r}; known: {', '.join(BLOCKS)}")
        return f"{match.group(1)}{BLOCKS[name](committed)}{match.group(4)}"

    return BLOCK.sub(fill, text)


def stale_pages(root: Path, write: bool) -> list[str]:
    """The pages whose generated blocks differ from what the committed outputs give (rewritten if ``write``)."""
    committed, stale = Committed(root), []
    for page in PAGES:
        path = root / page
        if not path.is_file():
            continue
        text = path.read_text()
        new = rewritten(text, committed, page)
        if new != text:
            stale.append(page)
            if write:
                path.write_text(new)
    return stale


def main(args) -> int:
    stale = stale_pages(repository_root(), write=not args.check)
    if args.check and stale:
        print(f"docs: stale generated blocks in {', '.join(stale)}: run `python -m truncback docs`", file=sys.stderr)
        return 1
    print(f"docs: {'rewrote ' + ', '.join(stale) if stale and not args.check else 'every generated block is current'}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "docs",
        help="rewrite the documentation's generated blocks from the committed outputs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--check", action="store_true", help="only report stale blocks (exit status 1)")
    parser.set_defaults(run=main)
