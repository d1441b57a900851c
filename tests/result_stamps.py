"""What the tests of stamped result files share: every file a job of the DAG reads that another job's
`python -m truncback` command wrote (from `snakemake -n --forceall -p`), the producers left out and
why, and the code version a result file of each format records (``module@version``), read and
rewritten."""

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from truncback.cli import COMMANDS
from truncback.runtime.code_version import STAMP_KEY, code_version
from workflow_copy import snakemake

# The producers whose files a command reads without a code version, each with its reason; every other
# file a command reads that a command wrote must be of a stamped format (FORMATS).
UNSTAMPED_PRODUCERS = {
    "data-fetch": "downloaded archives are data, not results: keyed by their checksums (a param), verified on fetch",
    "data-fixtures": "synthetic archives are data: keyed by the seed and sizes (params), parsed like the real ones",
    "data-prepare": "prepared arrays are data: parsed from archives keyed by their checksums, and named by the "
    "recipe (data/prepared/<scale>/<name>.npz), not by code that could change the arrays' meaning",
    "sensitivity-pool": "the sensitivity study's Omniglot pools are prepared data: cut from the prepared files by the "
    "alphabet names and size its rule passes (params), and read by omniglot as it reads a prepared file",
    "rehearsal-estimates": "the estimates are a paper table (paper_tables/rehearsal, committed), not a raw result: "
    "every scale's report quotes the committed one, which Snakemake cannot remake there; a code version column "
    "would enter the committed table that check-results compares",
    "benchmark": "Snakemake writes a job's benchmark file (its wall seconds and memory), not the job's command; it is "
    "rewritten whenever the job reruns",
}
FORMATS = (".json", ".csv", ".npz")
"""The suffixes of stamped result files: JSON (write_json, read_json), CSV (write_csv, read_csv) and
npz (write_npz, load_npz)."""
COMMAND = re.compile(r"python -m truncback ([\w-]+)")


@dataclass
class Job:
    """One job of a dry run: its rule, the truncback command it runs (None: it runs none), its files
    and its shell command."""

    rule: str
    command: str | None
    inputs: list[str]
    outputs: list[str]
    benchmark: str | None
    shell: str


def planned(workdir: Path, scale: str, *targets: str) -> list[Job]:
    """Every job of ``scale``'s DAG for ``targets`` (default: rule all) in the workflow copy ``workdir``,
    whether or not its outputs exist."""
    text = snakemake(workdir, "-n", "--forceall", "-p", "--config", f"scale={scale}", "--", *targets).stdout
    jobs = []
    for block in re.split(r"^(?=(?:local)?rule \w+:$)", text, flags=re.MULTILINE)[1:]:
        fields = dict(re.findall(r"^    (\w+): (.*)$", block, flags=re.MULTILINE))
        shell = re.search(r"^Shell command: (.*)$", block, flags=re.MULTILINE)
        command = COMMAND.match(shell.group(1)) if shell else None
        jobs.append(
            Job(
                rule=re.match(r"(?:local)?rule (\w+):", block).group(1),
                command=command.group(1) if command else None,
                inputs=fields["input"].split(", ") if "input" in fields else [],
                outputs=fields["output"].split(", ") if "output" in fields else [],
                benchmark=fields.get("benchmark"),
                shell=shell.group(1) if shell else "",
            )
        )
    return jobs


def command_results(jobs: list[Job]) -> list[tuple[Job, str, str]]:
    """(job, path, producer) for every file a job's command reads that another job made, its producer
    being the command that wrote it, or ``benchmark`` for Snakemake's benchmark files; those of
    UNSTAMPED_PRODUCERS included (the caller leaves them out, by name)."""
    producer = {path: job.command for job in jobs for path in job.outputs if job.command}
    producer.update({job.benchmark: "benchmark" for job in jobs if job.benchmark})
    return [(job, path, producer[path]) for job in jobs if job.command for path in job.inputs if path in producer]


def stamp_of(command: str) -> str:
    """The code version that files written by ``python -m truncback <command>`` record now."""
    return f"{COMMANDS[command]}@{code_version(COMMANDS[command])}"


def recorded(path: Path) -> str:
    """The code version the result file ``path`` records (``module@version``; empty when none)."""
    if path.suffix == ".json":
        value = json.loads(path.read_text()).get(STAMP_KEY, {})
        return f"{value['module']}@{value['version']}" if value else ""
    if path.suffix == ".csv":
        values = set(pd.read_csv(path).get(STAMP_KEY, []))
        assert len(values) <= 1, f"{path} records several code versions {values}"
        return values.pop() if values else ""
    assert path.suffix == ".npz", f"{path}: no stamped format for {path.suffix!r} (stamped: {FORMATS})"
    with np.load(path) as archive:
        return str(archive[STAMP_KEY].item()) if STAMP_KEY in archive.files else ""


def restamp(path: Path, text: str) -> None:
    """Rewrites the result file ``path`` recording the code version ``text`` (``module@version``), or
    none when it is empty; its data are kept."""
    if path.suffix == ".json":
        value = {key: item for key, item in json.loads(path.read_text()).items() if key != STAMP_KEY}
        if text:
            module, _, version = text.partition("@")
            value[STAMP_KEY] = {"module": module, "version": version}
        path.write_text(json.dumps(value))
    elif path.suffix == ".csv":
        frame = pd.read_csv(path).drop(columns=STAMP_KEY, errors="ignore")
        frame.assign(**({STAMP_KEY: text} if text else {})).to_csv(path, index=False)
    else:
        assert path.suffix == ".npz", f"{path}: no stamped format for {path.suffix!r} (stamped: {FORMATS})"
        with np.load(path) as archive:
            arrays = {key: archive[key] for key in archive.files if key != STAMP_KEY}
        np.savez(path, **arrays, **({STAMP_KEY: np.array([text])} if text else {}))


def without_redirection(shell: str) -> list[str]:
    """A job's shell command as arguments, without its redirection to the log (so errors reach stderr)."""
    words = shlex.split(shell)
    return words[: words.index(">")] if ">" in words else words
