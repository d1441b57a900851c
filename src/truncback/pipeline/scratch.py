"""A scale run by Snakemake in a scratch folder, apart from the repository's own outputs: a copy of
the workflow (Snakefile, rules, config, profiles) of the working tree, or an export of a commit with
its package, so that what is committed is never overwritten."""

import contextlib
import filecmp
import json
from collections.abc import Sequence
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

WORKFLOW_PARTS = ("Snakefile", "rules", "config", "profiles")
# committed files every scale's report reads where they exist: the rehearsal's estimates
SHARED_INPUTS = ("paper_tables/rehearsal",)


def repository_root() -> Path:
    """The checkout this command runs in: the folder of the Snakefile, from the current directory up."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "Snakefile").is_file() and (folder / "rules").is_dir():
            return folder
    raise FileNotFoundError(f"no Snakefile with rules/ in {Path.cwd()} or above: run from the repository")


def copy_workflow(root: Path, scratch: Path) -> Path:
    """The working tree's workflow files, and the committed files every report reads, copied into
    ``scratch`` (replacing older copies there, keeping the outputs and Snakemake's records of an
    earlier run, which are then reused)."""
    scratch.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS + tuple(part for part in SHARED_INPUTS if (root / part).exists()):
        source, target = root / part, scratch / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            shutil.rmtree(target)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    return scratch


EXPORTED = ".exported_commit"  # in a scratch folder: the commit its files are of
REUSED = ".reused_commits"  # in a scratch folder: the earlier commits whose run's outputs it kept, oldest first
WRITTEN = ".exported_files.json"  # in a scratch folder: {file: its time stamp (ns)} as the export wrote it


def _archive(root: Path, commit: str, folder: Path) -> None:
    archive = subprocess.run(["git", "-C", str(root), "archive", commit], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)


def _files(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if not path.is_dir()}


def _same(a: Path, b: Path) -> bool:
    return a.is_file() and b.is_file() and not a.is_symlink() and filecmp.cmp(a, b, shallow=False)


def _stamps(scratch: Path, names) -> dict:
    return {name: (scratch / name).stat().st_mtime_ns for name in names if (scratch / name).is_file()}


def _record_export(scratch: Path, stamps: dict) -> None:
    (scratch / WRITTEN).write_text(json.dumps(stamps, sort_keys=True))


def _extracted(path: Path) -> bool:
    """Whether ``path``'s time stamp is one an extraction gave it: a commit's time, whole seconds (a file
    a run writes has a fraction of a second, on file systems that keep nanoseconds)."""
    return path.stat().st_mtime_ns % 1_000_000_000 == 0


def _move_to_commit(root: Path, scratch: Path, old: str, new: str) -> None:
    """``scratch``'s files of commit ``old`` made those of ``new``, everything else kept as the run left
    it. A file is the export's where its time stamp is an extraction's (``_extracted``) and, where the
    scratch records them (``WRITTEN``), the one recorded, and its content is ``old``'s (or already
    ``new``'s: a move interrupted and retried); any other file is the run's (an output, the data,
    Snakemake's records) and stays as it is, even where ``new`` commits another version of it (a
    committed expected output). Of the export's files, one the same in both commits is left as it is,
    so that its time stamp does not make Snakemake rerun the jobs that read it; one that ``new``
    changed is replaced, and one that ``new`` lacks is removed. A file of ``old`` that the scratch
    lacks (Snakemake removed a job's outputs) stays absent, so that its job reruns; one that only
    ``new`` has is added."""
    recorded = json.loads((scratch / WRITTEN).read_text()) if (scratch / WRITTEN).is_file() else None
    with tempfile.TemporaryDirectory(dir=scratch.parent, prefix=f".{scratch.name}-") as folder:
        before, after = Path(folder) / "old", Path(folder) / "new"
        for commit, where in ((old, before), (new, after)):
            where.mkdir()
            _archive(root, commit, where)
        exported, files = _files(before), _files(after)
        stamps = {}
        for name in sorted(exported | files):
            source, target, was = after / name, scratch / name, before / name
            if not (target.exists() or target.is_symlink()):
                if name in exported:
                    continue  # removed by the run: its job makes it again
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
            elif target.is_symlink() or not target.is_file() or not _extracted(target):
                continue  # the run's
            elif name in files and _same(source, target):
                pass  # already the new commit's
            elif (
                name in exported
                and _same(target, was)
                and (recorded is None or recorded.get(name) == target.stat().st_mtime_ns)
            ):
                if name in files:
                    os.replace(source, target)
                else:
                    target.unlink()
                    continue
            else:
                continue  # the run's
            stamps[name] = target.stat().st_mtime_ns
        _record_export(scratch, stamps)


def export_commit(root: Path, scratch: Path, commit: str = "HEAD", keep: bool = False, reuse: bool = False) -> str:
    """``scratch`` holding ``commit``'s files (``git archive``), package included; its full hash. With
    ``keep``, a scratch folder already holding that commit is kept as it is (with the outputs a killed
    run left there). With ``reuse``, one holding another commit of the repository is moved to
    ``commit`` with the outputs of its run kept (``REUSED`` lists the commits it held before), for
    Snakemake to rerun only the jobs whose code, settings or inputs changed (each job's code version
    is a param); a ValueError, changing nothing, where the scratch holds no export or a commit the
    repository lacks. Anything else is made afresh."""
    full = subprocess.run(
        ["git", "-C", str(root), "rev-parse", commit], capture_output=True, text=True, check=True
    ).stdout.strip()
    marker = scratch / EXPORTED
    held = marker.read_text() if marker.is_file() else None
    if (keep or reuse) and held == full:
        return full
    if reuse and scratch.exists():
        if held is None or not is_commit(root, held):
            raise ValueError(
                f"--reuse: {scratch} holds "
                + (
                    f"commit {held[:12]}, which this repository does not have (amended or rebased?)"
                    if held
                    else "no export"
                )
                + "; nothing was changed. Run without --reuse to start it afresh."
            )
        _move_to_commit(root, scratch, held, full)
        with open(scratch / REUSED, "a") as reused:
            reused.write(held + "\n")
        marker.write_text(full)
        return full
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    _archive(root, full, scratch)
    _record_export(scratch, _stamps(scratch, _files(scratch)))
    marker.write_text(full)
    return full


def is_commit(root: Path, commit: str) -> bool:
    return (
        subprocess.run(
            ["git", "-C", str(root), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True
        ).returncode
        == 0
    )


def reused_commits(scratch: Path) -> list[str]:
    """The earlier commits whose run's outputs ``scratch`` kept (``export_commit``'s ``reuse``), oldest first."""
    path = scratch / REUSED
    return path.read_text().split() if path.is_file() else []


def snakemake_run_logs(scratch: Path) -> list[Path]:
    """The logs of the Snakemake runs in ``scratch`` (.snakemake/log/<start>.snakemake.log), oldest first,
    without those of ``snakemake --unlock`` (``unlock``), which ran no job."""
    logs = sorted((scratch / ".snakemake" / "log").glob("*.snakemake.log"))
    return [log for log in logs if "Unlocked working directory." not in log.read_text(errors="replace")]


def snakemake_wall_seconds(scratch: Path) -> float:
    """The wall seconds of every Snakemake run logged in ``scratch`` (``snakemake_run_logs``: from the
    start time in a log's name to its last write), summed: a run killed and resumed counts each part."""
    total = 0.0
    for log in snakemake_run_logs(scratch):
        started = datetime.strptime(log.name.split(".")[0], "%Y-%m-%dT%H%M%S").timestamp()
        total += max(0.0, log.stat().st_mtime - started)
    return total


def absolute_config(config: list[str], base: Path) -> list[str]:
    """KEY=VALUE pairs, data_dir made absolute against ``base`` (the run happens in another folder)."""
    return [
        f"data_dir={(base / item.split('=', 1)[1]).resolve()}" if item.startswith("data_dir=") else item
        for item in config
    ]


def snakemake_command(*arguments: str) -> list[str]:
    """This Python's ``snakemake`` (the one beside ``sys.executable``, else the one on PATH) with ``arguments``."""
    snakemake = Path(sys.executable).parent / "snakemake"
    return [str(snakemake if snakemake.exists() else "snakemake"), *arguments]


def environment(package: Path | None, env: dict | None = None) -> dict:
    """This process's environment with ``env`` over it and ``package`` (a src/ folder) first on PYTHONPATH."""
    variables = {**os.environ, **(env or {})}
    if package is not None:
        variables["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package), variables.get("PYTHONPATH")]))
    return variables


def unlock(scratch: Path, scale: str, config: list[str], package: Path | None = None) -> None:
    """Removes the lock a killed Snakemake left in ``scratch`` (``snakemake --unlock``), so that a resumed
    run starts instead of refusing; a failure raises, with Snakemake's message."""
    result = subprocess.run(
        snakemake_command("--unlock", "--cores", "1", "--config", f"scale={scale}", *config),
        cwd=scratch,
        env=environment(package),
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise RuntimeError(f"snakemake --unlock failed in {scratch}: {result.stderr.strip()[-500:]}")


FINISHED = re.compile(r"^Finished jobid: \d+ \(Rule: (?P<rule>\w+)\)")
STEPS = re.compile(r"^\d+ of \d+ steps \(.+\) done$")


def run_scale(
    scratch: Path,
    scale: str,
    config: list[str],
    cores: str,
    package: Path | None = None,
    env: dict | None = None,
    log: Path | None = None,
    targets: Sequence[str] = (),
) -> float:
    """Runs ``snakemake [TARGET] --cores CORES --config scale=SCALE CONFIG...`` in ``scratch`` with this
    Python's Snakemake (``package``: a src/ folder put first on PYTHONPATH), once per target of
    ``targets`` in their order (none: once, the workflow's default ``all``), so that a later target sees
    what an earlier one made (``sensitivity all``: the report finds the study); the wall seconds it took.
    Snakemake's output goes to stderr, or, with ``log``, to that file, with one line per finished job on
    stderr ("12 of 64 steps (19%) done: toy_reference"). A failure raises, naming the log."""
    variables = environment(package, env)
    start = time.perf_counter()
    with open(log, "w") if log else contextlib.nullcontext(sys.stderr) as output:
        for target in targets or [""]:
            command = snakemake_command(
                *([target] if target else []), "--cores", cores, "--config", f"scale={scale}", *config
            )
            where = f"; Snakemake's output: {log}" if log else ""
            print(f"running in {scratch}: {' '.join(command)}{where}", file=sys.stderr, flush=True)
            process = subprocess.Popen(
                command, cwd=scratch, env=variables, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            assert process.stdout is not None  # stdout=PIPE
            rule = ""
            for line in process.stdout:
                output.write(line)
                finished = FINISHED.match(line)
                rule = finished.group("rule") if finished else rule
                if log and STEPS.match(line.strip()):
                    print(f"{line.strip()}: {rule}", file=sys.stderr, flush=True)
            status = process.wait()
            if status:
                raise RuntimeError(
                    f"snakemake failed in {scratch} (exit status {status}); its log: "
                    f"{log or scratch / '.snakemake' / 'log'}"
                )
    return time.perf_counter() - start
