"""The committed expected outputs of a scale: the scale run by Snakemake on a clean export of a commit
(``git archive``, package included) in ``.expected/<scale>/``, then its figures (PNG), tables (CSV and
Markdown) and reproduction report (Markdown) copied to the paths the pipeline writes
(``figures/<scale>/``, ``paper_tables/<scale>/``; the rehearsal's estimates only, for the rehearsal),
with ``paper_tables/<scale>/provenance.yaml``: the commit, command, machine and wall time that made them
(the command's data_dir relative to the repository, or ``<data_dir>``: no path of the machine),
and the code version of every ``python -m truncback`` command of the scale's jobs (``code_versions``),
from which :func:`currency` says whether the committed outputs are of the current code. ``--targets``
runs those targets, one Snakemake run each in their order, instead of ``all`` (``sensitivity all``: the
sensitivity study, which ``all`` leaves out, then the scale, whose report then finds the study); the
provenance records them, and check-results reruns the same.

``python -m truncback expected-outputs --scale quick --config data_dir=../shared/datasets`` (``make expected-outputs``)
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from truncback.data.sources import RECIPES
from truncback.runtime.atomic import atomic_path
from truncback.pipeline.scratch import (
    absolute_config,
    environment,
    export_commit,
    repository_root,
    reused_commits,
    run_scale,
    snakemake_command,
    snakemake_run_logs,
    snakemake_wall_seconds,
    unlock,
)
from truncback.reproduction.grader import COMMIT_VARIABLE
from truncback.runtime.code_version import code_version
from truncback.runtime.machine import processor
from truncback.runtime.measure import hardware

PATTERNS: dict[str, dict[str, tuple[str, ...]]] = {
    "rehearsal": {"paper_tables/rehearsal": ("full_run_estimates*.csv", "full_run_estimates*.md")}
}
DEFAULT_PATTERNS: dict[str, tuple[str, ...]] = {
    "figures/{scale}": ("*.png",),
    "paper_tables/{scale}": ("*.csv", "*.md"),
}
PROVENANCE = "provenance.yaml"


def expected_files(folder: Path, scale: str) -> list[Path]:
    """The files of ``scale`` kept as expected outputs under ``folder`` (a checkout or a scratch run)."""
    patterns = PATTERNS.get(scale) or {where.format(scale=scale): globs for where, globs in DEFAULT_PATTERNS.items()}
    return sorted(
        path.relative_to(folder)
        for where, globs in patterns.items()
        for glob in globs
        for path in (folder / where).glob(glob)
    )


def provenance_path(scale: str) -> Path:
    return Path("paper_tables") / scale / PROVENANCE


COMMAND = re.compile(r"python -m truncback ([\w-]+)")
# Run on the exported package (PYTHONPATH), not imported here: its commands and code are the commit's,
# which this process's (a working tree's) may not be.
VERSIONS = (
    "import json, sys\n"
    "from truncback.cli import COMMANDS\n"
    "from truncback.runtime.code_version import code_version\n"
    "print(json.dumps({c: {'module': COMMANDS[c], 'version': code_version(COMMANDS[c])} for c in sys.argv[1:]}))"
)


def recorded_config(config: list[str], root: Path, base: Path) -> list[str]:
    """KEY=VALUE pairs as the provenance records them: a data_dir given relative (to ``base``, where the
    command ran) or inside the repository relative to the repository ``root``, any other ``<data_dir>``,
    so that no committed file names a folder of the machine that made the outputs."""
    recorded = []
    for item in config:
        key, _, value = item.partition("=")
        if key == "data_dir" and value:
            given = Path(value)
            path = (given if given.is_absolute() else base / given).resolve()
            outside = given.is_absolute() and not path.is_relative_to(root.resolve())
            item = f"data_dir={'<data_dir>' if outside else os.path.relpath(path, root.resolve())}"
        recorded.append(item)
    return recorded


def code_versions(scratch: Path, scale: str, config: list[str], package: Path, targets=()) -> dict:
    """{command: {"module", "version"}} for every ``python -m truncback`` command of the jobs of
    ``scale``'s DAG of ``targets`` (default ``all``) in ``scratch`` (``snakemake --dry-run --forceall
    --printshellcmds``), as the package at ``package`` maps and versions them."""
    planned = subprocess.run(
        snakemake_command(
            *targets, "--dry-run", "--forceall", "--printshellcmds", "--cores", "1", "--config", f"scale={scale}"
        )
        + config,
        cwd=scratch,
        env=environment(package),
        capture_output=True,
        text=True,
    )
    if planned.returncode:
        raise RuntimeError(f"snakemake --dry-run failed in {scratch}: {planned.stderr.strip()[-500:]}")
    commands = sorted(set(COMMAND.findall(planned.stdout + planned.stderr)))
    versions = subprocess.run(
        [sys.executable, "-c", VERSIONS, *commands], env=environment(package), capture_output=True, text=True
    )
    if versions.returncode:
        raise RuntimeError(f"the code versions of {package} could not be computed: {versions.stderr.strip()[-500:]}")
    return json.loads(versions.stdout)


def older_code(made: dict) -> list[str] | None:
    """The commands whose code has changed since the provenance ``made`` recorded it: its module's code
    version differs now, or it is no longer a module of the package. None where it records no versions."""
    if "code_versions" not in made:
        return None
    changed = []
    for command, recorded in made["code_versions"].items():
        try:
            current = code_version(recorded["module"])
        except ValueError:  # the module is gone
            current = None
        if current != recorded["version"]:
            changed.append(command)
    return changed


def currency(made: dict) -> str:
    """Whether a scale's committed outputs, of provenance ``made``, are of the current code: "current",
    "made by older code for: <commands>", or, where the provenance records no code versions, the commit
    that made them and that their code versions are not recorded."""
    changed = older_code(made)
    if changed is None:
        return f"made at {str(made.get('commit', 'an unrecorded commit'))[:12]}, code versions not recorded"
    return f"made by older code for: {', '.join(changed)}" if changed else "current"


def main(args) -> int:
    root = repository_root()
    scratch = root / ".expected" / args.scale
    config = absolute_config(args.config, Path.cwd())
    try:
        commit = export_commit(root, scratch, args.commit, keep=args.resume, reuse=args.reuse)
    except ValueError as error:
        print(f"expected-outputs: {error}", file=sys.stderr)
        return 2
    reused = reused_commits(scratch)
    try:
        if (args.resume or args.reuse) and (scratch / ".snakemake" / "locks").is_dir():
            unlock(scratch, args.scale, config, package=scratch / "src")  # the lock a killed run left behind
        seconds = run_scale(
            scratch,
            args.scale,
            config,
            args.cores,
            package=scratch / "src",
            env={COMMIT_VARIABLE: commit},
            targets=args.targets,
        )
        versions = code_versions(scratch, args.scale, config, package=scratch / "src", targets=args.targets)
    except RuntimeError as error:
        print(f"expected-outputs: {error}; nothing was copied", file=sys.stderr)
        return 1
    runs = len(snakemake_run_logs(scratch))
    if runs > 1:  # resumed: every part of the run counts
        seconds = snakemake_wall_seconds(scratch)
    made = expected_files(scratch, args.scale)
    for old in expected_files(root, args.scale):
        (root / old).unlink()
    for path in made:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(scratch / path, root / path)
    record = {
        "commit": commit,
        "scale": args.scale,
        "machine": hardware(),
        **({"processor": processor()} if processor() else {}),
        "wall_seconds": round(seconds),
        "snakemake_runs": runs,
        "command": " && ".join(
            f"snakemake {target + ' ' if target else ''}--cores {args.cores} --config scale={args.scale} "
            f"{' '.join(recorded_config(args.config, root, Path.cwd()))}".strip()
            for target in args.targets or [""]
        ),
        **({"targets": list(args.targets)} if args.targets else {}),
        "made_by": "python -m truncback expected-outputs (a clean export of the commit, run in .expected/)"
        + (
            f"; {'resumed' if reused else 'killed and resumed'}, {runs} Snakemake runs, wall_seconds their sum"
            if runs > 1
            else ""
        )
        + (
            f"; the outputs of the run of {', '.join(c[:12] for c in reused)} kept where Snakemake found their "
            "jobs' code, settings and inputs unchanged (each job's code version is a param), the other jobs rerun"
            if reused
            else ""
        ),
        **({"reused_runs_of": reused} if reused else {}),
        "code_versions": versions,
        "files": [str(path) for path in made],
    }
    with atomic_path(root / provenance_path(args.scale)) as temporary:
        temporary.write_text(yaml.safe_dump(record, sort_keys=False, allow_unicode=True))
    print(
        f"expected-outputs: {len(made)} files of scale {args.scale} from commit {commit[:12]} "
        f"({seconds / 60:.1f} min); see {provenance_path(args.scale)}",
        file=sys.stderr,
    )
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "expected-outputs",
        help="run a scale on a clean export of a commit and keep its "
        "figures, tables and report as the expected outputs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scale", required=True, choices=list(RECIPES))
    parser.add_argument("--config", nargs="*", default=[], help="more KEY=VALUE config pairs (e.g. data_dir=DIR)")
    parser.add_argument("--cores", default="all", help="Snakemake's --cores (default all)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run a kill interrupted in .expected/<scale>/ when it is of the same commit "
        "(else start afresh), removing the lock the killed Snakemake left",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="move .expected/<scale>/ from the commit it holds to --commit keeping its run's outputs, so that "
        "Snakemake reruns only the jobs whose code, settings or inputs changed (as --resume for the same commit)",
    )
    parser.add_argument("--commit", default="HEAD", help="the commit to run (default HEAD)")
    parser.add_argument(
        "--targets",
        nargs="*",
        default=[],
        help="Snakemake targets instead of the default all, one run each in this order (sensitivity all: the "
        "study, then the scale, whose report includes it)",
    )
    parser.set_defaults(run=main)
