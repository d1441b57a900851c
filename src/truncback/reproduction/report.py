"""The reproduction report (``paper_tables/<scale>/reproduction_report.md``): every number of the
paper's Tables 2-4 beside ours with a verdict against a stated tolerance, every claim of the paper
with the numbers that decide it and a verdict, the run time of every experiment that ran, and, at a
reduced scale, what the verdicts mean there. Lines holding wall-clock measurements say "(wall clock)"
(the only lines that differ between two runs). An HTML copy beside it is what Snakemake's report shows.

``python -m truncback reproduction-report --scale quick --reference config/paper_reference.yaml --toy-dir results/quick/toy ... --output paper_tables/quick/reproduction_report.md``
"""

import argparse
import html
import re
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from truncback.runtime.atomic import atomic_path
from truncback.reproduction.claims import COMPANION_EVALUATORS, EVALUATORS, NOT_RUN
from truncback.reproduction.evidence import TABLE_DATASETS, load_evidence, load_reference
from truncback.reproduction.grader import graded_by
from truncback.reproduction.health import health_blocks
from truncback.reproduction.numbers import NOT_COMPARABLE, table_rows
from truncback.reproduction.sensitivity import explained, load_study, study_blocks, table4_sentence
from truncback.runtime.health import UNSTABLE
from truncback.runtime.measure import hardware
from truncback.io.tables import html_page, html_table

WALL_CLOCK = "(wall clock)"
REDUCED = (
    "**Reduced scale ({scale}).** These verdicts are qualitative: the {scale} scale runs the paper's "
    "problems on smaller data ({data}) for fewer hyper-iterations, so its accuracies are not the paper's and a "
    "table number outside its tolerance says little about the paper. The claims about the toy problem and "
    "about time and memory are checked as at full scale (the toy is the paper's; Table 1 measures the "
    "methods at the configured sizes); the claims from Tables 2-4 and Fig. 7 are judged on the reduced runs "
    "where their data are real."
)
REHEARSAL = (
    "**Rehearsal.** Every job of the paper scale ran, on seeded synthetic archives of the published sizes, "
    "for a few hyper-iterations each (docs/reproducing.md): the numbers and verdicts below say nothing about "
    "the paper. This run shows that every job starts and fits in memory, and measures the time from which "
    "the full run's is estimated (below)."
)
OFFLINE = (
    "**The paper's settings on offline data.** The hypercleaning and Omniglot runs keep the paper's T, K, "
    "iteration counts, training-set size and evaluation; their data are the real subsets that need no "
    "download, the MNIST test set and Omniglot's small background sets, so the validation and test sets "
    "and the Omniglot characters are fewer than the paper's, as the departures below say; the tolerances "
    "follow the same formulas as at full scale, from this scale's own sizes (hence wider). Task interaction "
    "(Table 3, Fig. 6) is not run: no CIFAR file is available offline. The toy problem, Table 1 and the "
    "companion experiments are as at full scale."
)
DATA = {
    "smoke": "synthetic format-faithful stand-ins of tiny size",
    "quick": "the MNIST test set, Omniglot's small "
    "background sets and synthetic CIFAR stand-ins with random features",
}


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _markdown(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, disable_numparse=True) if len(frame) else "(none)"


def run_times(benchmarks) -> list[str]:
    """One line per experiment: its jobs' summed seconds and largest resident memory, from Snakemake's
    benchmark files ``benchmarks`` (.../<experiment>/<job>.tsv); the files that do not exist are named."""
    paths = [Path(path) for path in benchmarks or ()]
    absent = [path for path in paths if not path.is_file()]
    by_experiment: dict[str, list[pd.DataFrame]] = {}
    for path in paths:
        if path.is_file():
            by_experiment.setdefault(path.parent.name, []).append(pd.read_csv(path, sep="\t"))
    lines = [
        f"{experiment}: {len(frames)} job(s), {pd.concat(frames)['s'].sum():.0f} s in all, largest resident "
        f"memory {pd.concat(frames)['max_rss'].max():.0f} MB {WALL_CLOCK}"
        for experiment, frames in sorted(by_experiment.items())
    ]
    if absent:
        lines.append(
            f"no benchmark file for {len(absent)} job(s) (run through Snakemake, every job writes one): "
            + ", ".join(f"`{path}`" for path in absent)
        )
    return lines or ["(no Snakemake benchmark files given)"]


FAST_PATH_SHORTFALLS = {
    "frames_run_eagerly": "compiled call(s) run eagerly by dynamo",
    "graph_breaks": "graph break(s)",
    "onednn_products_kept": "large product(s) the oneDNN pass left to torch",
}
"""The counts of a fast-path record (``hypergrad.fast_path.record``) that say it did less than asked."""


def compute_lines(timings: dict) -> list[str]:
    """Per hyper-optimisation experiment, from its runs' timing files (``timings``: experiment -> their
    contents): the torch and device they ran on and what computed, eagerly or through the compiled fast
    path (its graphs and the oneDNN products it computed: the same on a rerun, whether inductor compiled
    the graphs anew or took them from its cache; the timing files hold the rest)."""
    lines = []
    for experiment, files in sorted(timings.items()):
        records = [entry["compute"] for entry in files if entry.get("compute")]
        if not records:
            continue
        where = ", ".join(sorted({f"torch {r['torch']} on {r['device']}" for r in records}))
        fast = [r["fast_path"] for r in records if r["fast_path"]]
        line = f"{experiment}: {len(records)} run(s), {where}; "
        if not fast:
            lines.append(line + "eager (nothing compiled)")
            continue
        graphs = sum(f["graphs_compiled"] + f["graphs_from_cache"] for f in fast)
        calls = sum(f["onednn_product_calls"] for f in fast)
        line += f"{len(fast)} compiled, {graphs} compiled graph(s) in all, {calls} matrix products by oneDNN"
        if not all(f["onednn_operator"] for f in fast):
            line += " (this torch lacks oneDNN's linear operator: torch's own products)"
        elif calls == 0:
            line += " (none: every product stayed with torch's kernel)"
        less = [
            f"{total} {what}"
            for key, what in FAST_PATH_SHORTFALLS.items()
            if (total := sum(f.get(key, 0) for f in fast))
        ]
        if less:
            line += "; less than asked: " + ", ".join(less) + " (the runs' logs have the warnings)"
        lines.append(line)
    return lines


def estimate_blocks(estimates) -> list:
    """The rehearsal's full-scale estimates (its summary CSV), when that file exists."""
    if not estimates or not Path(estimates).is_file():
        return [("p", "No full-scale estimate yet: `snakemake --cores all --config scale=rehearsal` writes it.")]
    return [
        (
            "p",
            f"Estimated from the rehearsal ({estimates}; per job and formula in "
            f"{Path(estimates).with_name(Path(estimates).stem + '_jobs.md')}) {WALL_CLOCK}:",
        ),
        ("table", pd.read_csv(estimates, dtype=str)),
    ]


SPREAD_KEYS = {"measured_with", "machine", "scale", "first_run", "second_run", "largest", "columns", "claims"}


def load_spread(path) -> dict:
    """The measured cross-machine spread (config/cross_machine_spread.yaml), its keys checked."""
    spread = yaml.safe_load(Path(path).read_text())
    if not isinstance(spread, dict) or set(spread) != SPREAD_KEYS:
        raise ValueError(
            f"{path}: expected the keys {sorted(SPREAD_KEYS)}, got "
            f"{sorted(spread) if isinstance(spread, dict) else type(spread).__name__}"
        )
    return spread


def spread_blocks(spread) -> list:
    """What the measured spread between two machines says about judging our numbers."""
    if spread is None:
        return [("p", "The spread of our numbers across machines has not been measured.")]
    items = [
        f"{entry['table']}: no number moved"
        if entry["move"] == 0
        else f"{entry['table']}: {entry['what']} moved by {entry['move']:.3g} ({entry['first']} -> {entry['second']})"
        for entry in spread["largest"]
    ]
    return [
        (
            "p",
            f"The same target gives the same bytes on one machine, not across machines: their floating-point "
            f"kernels differ and training amplifies the last digits. Measured at the {spread['scale']} scale "
            f"on {spread['machine']}, a run {spread['first_run']} against a second run {spread['second_run']} "
            f"(`{spread['measured_with']}` on their paper_tables/{spread['scale']} folders), the largest moves per "
            "table were:",
        ),
        ("ul", items),
        (
            "p",
            "So each number is judged against an interval, never its exact digits; a verdict whose number lies "
            "closer to the tolerance's edge than these moves can flip on another machine.",
        ),
    ]


def verdict_blocks(verdicts, texts: dict) -> list:
    """A table of the verdicts (claim, verdict, the paper's words from ``texts``) and one item per verdict
    with the numbers that decide it."""
    return [
        ("table", pd.DataFrame([{"Claim": v.claim, "Verdict": v.verdict, "Paper": texts[v.claim]} for v in verdicts])),
        (
            "ul",
            [
                f"**{v.claim}: {v.verdict}.** {v.evidence}" + (f" {WALL_CLOCK}" if "wall clock" in v.evidence else "")
                for v in verdicts
            ],
        ),
    ]


def companion_blocks(reference, evidence) -> list:
    """The companion papers' claims (AID vs ITD, FOM vs UFOM), checked on our runs of their experiments."""
    verdicts = [COMPANION_EVALUATORS[claim["id"]](evidence) for claim in reference["companion_claims"]]
    texts = {claim["id"]: f"{claim['text']} ({claim['source']})" for claim in reference["companion_claims"]}
    return [
        ("h2", "Companion papers' claims"),
        (
            "p",
            "The engine's method family also covers two later papers; their headline findings, checked on our "
            "runs of their experiments (figures/.../companion_*, paper_tables/.../companion_*). Not counted in "
            "the paper's claims above.",
        ),
        *verdict_blocks(verdicts, texts),
    ]


def design_blocks(evidence, study=None) -> list:
    """Where this scale's tables depart from the paper on purpose, one item per table; Table 4's cites
    what the sensitivity study measured of the meta-training data (``study``, None where it has not run)."""
    notes = [
        f"Table {table}: {evidence.by_design(table)}" + (f"; {table4_sentence(study)}" if table == "4" else "")
        for table in TABLE_DATASETS
        if evidence.by_design(table)
    ]
    return [("p", "Departures from the paper at this scale:"), ("ul", notes)] if notes else []


def report_blocks(reference, evidence, benchmarks=None, estimates=None, spread=None, study=None) -> list:
    """The report as blocks: ("h1" | "h2" | "p", text), ("ul", [items]) or ("table", DataFrame);
    ``study``: the sensitivity study's summary, None where it has not run."""
    verdicts = explained([EVALUATORS[claim["id"]](evidence) for claim in reference["claims"]], study)
    texts = {claim["id"]: claim["text"] for claim in reference["claims"]}
    rows = table_rows(reference, evidence)
    blocks: list[tuple[str, Any]] = [
        ("h1", f"Reproduction report: Shaban et al. 2019, scale `{evidence.scale}`"),
        ("p", graded_by(__name__)),
    ]
    if evidence.scale == "rehearsal":
        blocks.append(("p", REHEARSAL))
    elif evidence.scale == "offline":
        blocks.append(("p", OFFLINE))
    elif evidence.scale != "full":
        blocks.append(("p", REDUCED.format(scale=evidence.scale, data=DATA.get(evidence.scale, "smaller data"))))
    synthetic = [table for table in TABLE_DATASETS if not evidence.comparable(table)]
    if synthetic and evidence.scale != "rehearsal":
        blocks.append(
            (
                "p",
                f"**Synthetic data.** At this scale the data of Table(s) {', '.join(synthetic)} are "
                "seeded synthetic stand-ins, so their numbers, and the claims drawn only from them, are "
                f"{NOT_COMPARABLE} with the paper's; PASS and FAIL are kept for what this scale can judge "
                "(the toy problem, time and memory, the companion papers' claims, and the tables on real "
                "data).",
            )
        )
    counts = {
        verdict: sum(v.verdict == verdict for v in verdicts)
        for verdict in ("PASS", "FAIL", NOT_RUN, NOT_COMPARABLE, UNSTABLE)
    }
    compared = [r for r in rows if r["verdict"] in ("PASS", "FAIL")]
    not_judged = sum(r["verdict"] == UNSTABLE for r in rows)
    synthetic_rows = sum(r["verdict"] == NOT_COMPARABLE for r in rows)
    blocks += [
        (
            "p",
            f"Claims: {counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts[NOT_RUN]} NOT RUN, "
            f"{counts[NOT_COMPARABLE]} {NOT_COMPARABLE}"
            + (f", {counts[UNSTABLE]} {UNSTABLE} (see Run health)" if counts[UNSTABLE] else "")
            + ". Table numbers: "
            f"{sum(r['verdict'] == 'PASS' for r in compared)} of {len(compared)} compared within tolerance"
            + (f", {not_judged} from UNSTABLE runs not judged" if not_judged else "")
            + (f", {synthetic_rows} on synthetic data not compared" if synthetic_rows else "")
            + ".",
        ),
        ("h2", "Claims"),
        *verdict_blocks(verdicts, texts),
        *companion_blocks(reference, evidence),
        ("h2", "Tables 2-4: the paper's numbers and ours"),
        (
            "p",
            "Each of our numbers is the mean over our seeds or trials; a verdict says whether the difference "
            "lies within the tolerance, whose basis is given. Paper rows without a counterpart among our "
            "runs (other iteration counts or methods at a reduced scale) are not listed.",
        ),
        (
            "table",
            pd.DataFrame(
                [
                    {
                        "Table": r["table"],
                        "Number": r["what"],
                        "Paper": _cell(r["paper"]),
                        "Ours": _cell(r["ours"]),
                        "Difference": f"{r['difference']:+.3g}",
                        "Tolerance": f"±{r['tolerance']:.3g}",
                        "Verdict": r["verdict"],
                    }
                    for r in rows
                ]
            ),
        ),
        ("p", "Tolerances:"),
        ("ul", list(dict.fromkeys(r["basis"] for r in rows))),
        *design_blocks(evidence, study),
        *study_blocks(study, evidence.scale),
        *health_blocks(evidence),
        ("h2", "Run time and hardware"),
        ("p", f"Written on: {hardware()} {WALL_CLOCK}"),
        ("ul", run_times(benchmarks)),
        ("p", "What computed:"),
        ("ul", compute_lines(evidence.timings) or ["(no timing file records it)"]),
        ("h2", "Full-scale run time"),
        *estimate_blocks(estimates),
        ("h2", "Across machines"),
        *spread_blocks(spread),
    ]
    if evidence.further:
        blocks += [
            ("h2", "Further experiments"),
            ("p", "Experiments the paper makes no claim about: their result files, by experiment."),
            ("ul", [f"{name}: {len(paths)} result file(s)" for name, paths in evidence.further.items()]),
        ]
    if evidence.missing:
        blocks += [("h2", "Not run"), ("ul", [f"`{path}` is missing" for path in evidence.missing])]
    return blocks


def to_markdown(blocks) -> str:
    lines = []
    for kind, content in blocks:
        if kind == "table":
            lines += [_markdown(content), ""]
        elif kind == "ul":
            lines += [f"- {item}" for item in content] + [""]
        else:
            lines += [{"h1": "# ", "h2": "## ", "p": ""}[kind] + content, ""]
    return "\n".join(lines)


def _inline_html(text: str) -> str:
    """Markdown's **bold** and `code` as HTML, the rest escaped."""
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def to_html(blocks) -> str:
    parts = []
    for kind, content in blocks:
        if kind == "table":
            parts.append(html_table(content))
        elif kind == "ul":
            parts.append("<ul>" + "".join(f"<li>{_inline_html(item)}</li>" for item in content) + "</ul>")
        else:
            tag = {"h1": "h1", "h2": "h2", "p": "p"}[kind]
            parts.append(f"<{tag}>{_inline_html(content)}</{tag}>")
    return html_page("Reproduction report", "\n".join(parts))


def report_text(reference, evidence, benchmarks=None, estimates=None, spread=None, study=None) -> str:
    return to_markdown(report_blocks(reference, evidence, benchmarks, estimates, spread, study))


def main(args) -> int:
    reference = load_reference(args.reference)
    evidence = load_evidence(
        args.scale,
        args.toy_dir,
        args.hypercleaning,
        args.task_interaction,
        args.omniglot,
        args.depth,
        args.complexity,
        args.aid_vs_itd,
        args.fom_ufom,
        args.results,
        args.omniglot_companion,
    )
    spread = load_spread(args.spread) if args.spread else None
    blocks = report_blocks(reference, evidence, args.benchmarks, args.estimates, spread, load_study(args.sensitivity))
    output = Path(args.output)
    for path, text in ((output.with_suffix(".html"), to_html(blocks)), (output, to_markdown(blocks))):
        with atomic_path(path) as temporary:
            temporary.write_text(text)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "reproduction-report",
        help="the reproduction report: paper vs ours, with verdicts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scale", required=True, help="the scale the results are of (full, quick, smoke, rehearsal)")
    parser.add_argument(
        "--reference", required=True, help="the paper's numbers and claims (config/paper_reference.yaml)"
    )
    parser.add_argument("--toy-dir", help="results/<scale>/toy")
    for name in ("hypercleaning", "task-interaction", "omniglot", "aid-vs-itd", "fom-ufom"):
        parser.add_argument(f"--{name}", nargs="*", default=[], help=f"{name} result JSON files")
    parser.add_argument(
        "--omniglot-companion",
        nargs="*",
        default=[],
        help="the FOM/UFOM companion's Omniglot result JSON files (shown in Run health)",
    )
    parser.add_argument(
        "--results",
        nargs="*",
        default=[],
        help="the result files of experiments the report has no section for (results/<scale>/<experiment>/...): "
        "listed by experiment",
    )
    parser.add_argument("--depth", help="the Omniglot depth study JSON")
    parser.add_argument("--complexity", help="Table 1's measurements CSV")
    parser.add_argument(
        "--benchmarks",
        nargs="*",
        default=[],
        help="Snakemake's benchmark files of the scale's jobs (benchmarks/<scale>/<experiment>/<job>.tsv)",
    )
    parser.add_argument("--spread", help="the measured cross-machine spread (config/cross_machine_spread.yaml)")
    parser.add_argument(
        "--estimates",
        help="the rehearsal's full-scale estimates (paper_tables/rehearsal/"
        "full_run_estimates.csv), shown when the file exists",
    )
    parser.add_argument(
        "--sensitivity",
        help="the sensitivity study's summary (results/<scale>/sensitivity/summary.json), where the study has run",
    )
    parser.add_argument("--output", required=True, help="the report (.md; an .html copy is written beside it)")
    parser.set_defaults(run=main)
