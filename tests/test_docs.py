"""The front door and the docs: the README stays short, every relative link of README.md and docs/
resolves to a file of the checkout, and every generated block (the verdicts, times and tables that
`python -m truncback docs` writes from the committed outputs) is what the committed outputs give."""

import re
import shutil
from pathlib import Path

import yaml

from truncback.tools.docs import BLOCK, PAGES, stale_pages
from workflow_copy import REPO

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_the_readme_is_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 300


def test_every_relative_link_resolves_to_a_file_of_the_checkout():
    broken = []
    for page in pages():
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor of the page itself
            path = (page.parent / target.split("#")[0]).resolve()
            if not path.exists() or REPO.resolve() not in path.parents:
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert not broken


def test_the_generated_blocks_are_those_the_committed_outputs_give():
    blocks = [match.group("name") for page in PAGES for match in BLOCK.finditer((REPO / page).read_text())]
    assert {
        "claims-table",
        "at-a-glance",
        "claims-verdicts",
        "benchmark-tables",
        "scale-times",
        "offline-limitation",
    } <= set(blocks)
    assert stale_pages(REPO, write=False) == [], "run `python -m truncback docs` and commit the pages"


def test_committed_offline_outputs_fill_the_offline_column_and_limitation(tmp_path):
    from truncback.tools.docs import Committed, claims_table, offline_limitation

    shutil.copytree(REPO / "paper_tables", tmp_path / "paper_tables")
    shutil.rmtree(tmp_path / "paper_tables" / "offline", ignore_errors=True)
    committed = Committed(tmp_path)
    assert "not committed" in offline_limitation(committed)
    assert "| not committed | not run |" in claims_table(committed)
    offline = tmp_path / "paper_tables" / "offline"
    offline.mkdir()
    for name in ("reproduction_report.md", "table4_omniglot.csv"):
        shutil.copy(REPO / "paper_tables" / "quick" / name, offline / name)
    # the stand-in report's verdicts set here, whatever the committed quick report's are: C4 alone fails, 16 of 20
    report = offline / "reproduction_report.md"
    text = re.sub(r"^- \*\*(\w+): FAIL\.\*\*", r"- **\1: PASS.**", report.read_text(), flags=re.MULTILINE)
    text = text.replace("- **small_k_matches_full: PASS.**", "- **small_k_matches_full: FAIL.**")
    text = re.sub(r"Table numbers: \d+ of \d+ compared", "Table numbers: 16 of 20 compared", text)
    report.write_text(text)
    (offline / "provenance.yaml").write_text("commit: 0123456789abcdef\nwall_seconds: 3600\nmachine: here\n")
    limitation = offline_limitation(committed)
    assert "not committed" not in limitation and "`0123456789ab`" in limitation
    assert "There it fails C4 `small_k_matches_full`; 16 of 20 table numbers lie within" in " ".join(limitation.split())
    assert "[PASS](paper_tables/offline/reproduction_report.md) | not run |" in claims_table(committed)


def test_a_resumed_scale_s_wall_time_says_it_sums_its_runs():
    from truncback.tools.docs import wall_time

    assert wall_time({"wall_seconds": 5400}) == "1.5 h"
    assert wall_time({"wall_seconds": 5400, "snakemake_runs": 1}) == "1.5 h"
    assert wall_time({"wall_seconds": 5400, "snakemake_runs": 3}) == "1.5 h, the sum of 3 runs (killed and resumed)"
    reused = {"wall_seconds": 5400, "snakemake_runs": 3, "reused_runs_of": ["a" * 40]}
    assert (
        wall_time(reused)
        == "at most 1.5 h: the sum of 3 runs, an earlier commit's and the later reruns of the jobs whose code "
        "changed since (1 commit(s)), which count those jobs twice"
    )


def test_the_at_a_glance_table_says_whether_each_scale_s_outputs_are_of_the_current_code(tmp_path):
    from truncback.runtime.code_version import code_version
    from truncback.tools.docs import Committed, at_a_glance

    shutil.copytree(REPO / "paper_tables", tmp_path / "paper_tables")
    committed = Committed(tmp_path)
    provenance = tmp_path / "paper_tables" / "quick" / "provenance.yaml"
    made = yaml.safe_load(provenance.read_text())

    def quick_row(code_versions: dict | None) -> str:
        record = {key: value for key, value in made.items() if key != "code_versions"}
        if code_versions is not None:
            record["code_versions"] = code_versions
        provenance.write_text(yaml.safe_dump(record))
        return next(row for row in at_a_glance(committed).splitlines() if row.startswith("| `quick` |"))

    assert quick_row(None).endswith(f"| made at {made['commit'][:12]}, code versions not recorded |")
    toy, table = "truncback.experiments.toy.run", "truncback.experiments.omniglot.table"
    current = {
        "toy": {"module": toy, "version": code_version(toy)},
        "table-omniglot": {"module": table, "version": code_version(table)},
    }
    assert quick_row(current).endswith("| current |")
    older = {**current, "toy": {"module": toy, "version": "0" * 16}}
    assert quick_row(older).endswith("| made by older code for: toy |")
    gone = {**current, "table-omniglot": {"module": "truncback.experiments.omniglot.gone", "version": "0" * 16}}
    assert quick_row(gone).endswith("| made by older code for: table-omniglot |")
