"""The scratch folders of make expected-outputs and make check-results: a clean export of a commit,
kept with a killed run's outputs only when asked and only for the same commit; the lock a killed
Snakemake leaves is removed for the resume; the wall time of a run killed and resumed is the sum of its
parts, read from Snakemake's logs. check-results keeps Snakemake's output in a log file and ends with its
verdicts; expected-outputs records the code version of each command its jobs ran and gives them the
commit; both say whether committed outputs are of the current code."""

import os
import re
import shutil
import subprocess
from datetime import datetime

import pytest
import yaml

from truncback.cli import main as cli
from truncback.pipeline.scratch import (
    export_commit,
    reused_commits,
    run_scale,
    snakemake_command,
    snakemake_run_logs,
    snakemake_wall_seconds,
    unlock,
)
from truncback.pipeline.expected import currency
from truncback.runtime.code_version import code_version
from workflow_copy import SEARCH_PATH, SNAKEMAKE


# export_commit archives a commit with git; where git is missing (a bare container), its tests skip
needs_git = pytest.mark.skipif(
    shutil.which("git") is None, reason="git is not installed (scratch exports use git archive)"
)


def git(repo, *args) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def committed_workflow(repo, snakefile: str) -> None:
    """A git repository at ``repo`` whose one commit holds the workflow ``snakefile`` (and an empty
    rules/), what expected-outputs exports."""
    (repo / "rules").mkdir()
    (repo / "Snakefile").write_text(snakefile)
    git(repo, "init", "-q")
    git(repo, "add", "Snakefile")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")


@needs_git
def test_a_scratch_export_is_kept_for_a_resume_of_the_same_commit_only(tmp_path):
    repo, scratch = tmp_path / "repo", tmp_path / "scratch"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "Snakefile").write_text("one\n")
    git(repo, "add", "Snakefile")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    first = export_commit(repo, scratch)
    assert first == git(repo, "rev-parse", "HEAD") and (scratch / "Snakefile").read_text() == "one\n"
    (scratch / "results").mkdir()  # what a killed run left
    assert export_commit(repo, scratch, keep=True) == first and (scratch / "results").is_dir()
    assert export_commit(repo, scratch) == first and not (scratch / "results").exists()  # no resume: afresh
    (scratch / "results").mkdir()
    (repo / "Snakefile").write_text("two\n")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two")
    assert export_commit(repo, scratch, keep=True) != first  # another commit: afresh
    assert not (scratch / "results").exists() and (scratch / "Snakefile").read_text() == "two\n"


VERSIONED_SNAKEFILE = """
rule all:
    input:
        "out/a.txt",
        "out/b.txt",

rule one:
    output:
        "out/{name}.txt"
    params:
        version=lambda wildcards: open(f"code_{wildcards.name}").read().strip()
    shell:
        "echo {params.version} > {output}"
"""


def commit_all(repo, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


@needs_git
def test_a_scratch_moved_to_another_commit_keeps_its_outputs_and_the_files_that_did_not_change(tmp_path):
    repo, scratch = tmp_path / "repo", tmp_path / "scratch"
    repo.mkdir()
    git(repo, "init", "-q")
    files = (
        ("same.txt", "same"),
        ("changed.txt", "old"),
        ("gone.txt", "gone"),
        ("figure.png", "old"),
        ("table.md", "old"),
        ("deleted.md", "old"),
    )
    for name, text in files:
        (repo / name).write_text(text)
    first = commit_all(repo, "one")
    export_commit(repo, scratch)
    (scratch / "results").mkdir()
    (scratch / "results" / "r.json").write_text("{}")  # what the run made
    (scratch / "figure.png").write_text("run")  # a committed expected output the run made again
    (scratch / "table.md").write_text("old")  # made again with the committed bytes: still the run's
    later = datetime(2030, 1, 2).timestamp() + 0.5
    os.utime(scratch / "table.md", (later, later))
    (scratch / "deleted.md").unlink()  # a job's output Snakemake removed: its job must run again
    exported = (scratch / "same.txt").stat().st_mtime_ns
    (repo / "changed.txt").write_text("new")
    (repo / "gone.txt").unlink()
    (repo / "added.txt").write_text("added")
    (repo / "figure.png").write_text("committed elsewhere")
    (repo / "table.md").write_text("committed elsewhere")
    (repo / "deleted.md").write_text("committed elsewhere")
    second = commit_all(repo, "two")
    # a move interrupted after replacing changed.txt: the new commit's bytes at an extraction's time stamp
    (scratch / "changed.txt").write_text("new")
    os.utime(scratch / "changed.txt", (datetime(2026, 1, 2).timestamp(),) * 2)
    assert export_commit(repo, scratch, second, reuse=True) == second
    assert (scratch / "results" / "r.json").read_text() == "{}"
    assert (scratch / "same.txt").stat().st_mtime_ns == exported  # unchanged: its time stamp too
    assert (scratch / "changed.txt").read_text() == "new"
    assert not (scratch / "gone.txt").exists() and (scratch / "added.txt").read_text() == "added"
    assert (scratch / "figure.png").read_text() == "run"  # the run's output, not the new commit's copy
    assert (scratch / "table.md").read_text() == "old"  # written by the run (its time stamp says so)
    assert not (scratch / "deleted.md").exists()
    assert reused_commits(scratch) == [first]
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".scratch-")]  # no temporary left
    assert export_commit(repo, scratch, second, reuse=True) == second and reused_commits(scratch) == [first]
    (repo / "same.txt").write_text("changed at last")  # kept through one move, still the export's copy
    (repo / "changed.txt").write_text("newer")  # the interrupted move's file is the export's too
    third = commit_all(repo, "three")
    assert export_commit(repo, scratch, third, reuse=True) == third and reused_commits(scratch) == [first, second]
    assert (scratch / "same.txt").read_text() == "changed at last" and (scratch / "figure.png").read_text() == "run"
    assert (scratch / "changed.txt").read_text() == "newer" and (scratch / "table.md").read_text() == "old"
    (scratch / ".exported_files.json").unlink()  # a scratch exported before the record: time stamps alone
    export_commit(repo, scratch, second, reuse=True)  # and back
    assert (scratch / "same.txt").read_text() == "same" and (scratch / "changed.txt").read_text() == "new"
    assert (scratch / "table.md").read_text() == "old" and (scratch / "figure.png").read_text() == "run"
    (scratch / ".exported_commit").write_text("0" * 40)  # a commit the repository lacks: refused, unchanged
    with pytest.raises(ValueError, match="does not have"):
        export_commit(repo, scratch, first, reuse=True)
    assert (scratch / "results" / "r.json").is_file()
    assert export_commit(repo, scratch, first) == first and reused_commits(scratch) == []  # no reuse: afresh
    assert not (scratch / "results").exists()


@needs_git
@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
def test_a_reused_scratch_reruns_only_the_jobs_whose_code_changed(tmp_path):
    """A job's code version is a param (rules/common.smk): moved to a commit that changes one job's
    code, Snakemake reruns that job and keeps the other's output, time stamp included."""
    repo, scratch = tmp_path / "repo", tmp_path / "scratch"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "Snakefile").write_text(VERSIONED_SNAKEFILE)
    (repo / "code_a").write_text("1")
    (repo / "code_b").write_text("1")
    commit_all(repo, "one")
    export_commit(repo, scratch)
    log = tmp_path / "snakemake.txt"
    run_scale(scratch, "smoke", [], "1", log=log)
    kept = (scratch / "out" / "a.txt").stat().st_mtime_ns
    (repo / "code_b").write_text("2")
    export_commit(repo, scratch, commit_all(repo, "two"), reuse=True)
    run_scale(scratch, "smoke", [], "1", log=log)
    assert (scratch / "out" / "b.txt").read_text() == "2\n"
    assert (scratch / "out" / "a.txt").read_text() == "1\n"
    assert (scratch / "out" / "a.txt").stat().st_mtime_ns == kept


def test_the_wall_time_of_a_resumed_run_sums_its_snakemake_runs(tmp_path):
    logs = tmp_path / ".snakemake" / "log"
    logs.mkdir(parents=True)
    for started, seconds in (("2026-01-02T030405", 100), ("2026-01-02T050000", 250)):
        log = logs / f"{started}.123456.snakemake.log"
        log.write_text("")
        end = datetime.strptime(started, "%Y-%m-%dT%H%M%S").timestamp() + seconds
        os.utime(log, (end, end))
    unlocked = logs / "2026-01-02T060000.123456.snakemake.log"  # snakemake --unlock: no job, not a run
    unlocked.write_text("Unlocked working directory.\n")
    end = datetime(2026, 1, 2, 7).timestamp()
    os.utime(unlocked, (end, end))
    assert snakemake_wall_seconds(tmp_path) == 350
    assert len(snakemake_run_logs(tmp_path)) == 2


SLOW_SNAKEFILE = """
rule all:
    output:
        "done"
    shell:
        "touch started && sleep 120 && touch {output}"
"""


@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
def test_the_lock_a_killed_snakemake_left_is_removed_for_the_resume(tmp_path):
    (tmp_path / "Snakefile").write_text(SLOW_SNAKEFILE)
    killed = subprocess.Popen(snakemake_command("--cores", "1"), cwd=tmp_path, start_new_session=True)
    for _ in range(600):  # the job has started (it then sleeps 120 s): Snakemake holds its lock
        if (tmp_path / "started").exists() or killed.poll() is not None:
            break
        subprocess.run(["sleep", "0.1"])
    os.killpg(killed.pid, 9)
    killed.wait()
    assert any((tmp_path / ".snakemake" / "locks").iterdir())
    (tmp_path / "Snakefile").write_text(SLOW_SNAKEFILE.replace("sleep 120 && ", ""))
    log = tmp_path / "snakemake.txt"
    with pytest.raises(RuntimeError, match="snakemake failed"):
        run_scale(tmp_path, "smoke", [], "1", log=log)  # locked
    unlock(tmp_path, "smoke", [])
    run_scale(tmp_path, "smoke", [], "1", log=log)
    assert (tmp_path / "done").exists()


CHECKED_SNAKEFILE = """
rule all:
    input:
        "paper_tables/quick/table4_omniglot.csv",
        "paper_tables/quick/reproduction_report.md",


rule table:
    output:
        "paper_tables/quick/table4_omniglot.csv",
    shell:
        "printf 'Method,Accuracy\\n1-RMD,74.60\\n' > {output}"


rule report:
    output:
        "paper_tables/quick/reproduction_report.md",
    shell:
        "printf '# Report\\n\\n- **one_rmd_descent_direction: PASS.** min 0.05\\n' > {output}"
"""


def checkable_repository(root, snakefile: str):
    """A checkout whose workflow is ``snakefile`` and whose committed quick outputs are what
    CHECKED_SNAKEFILE makes."""
    for folder in ("rules", "profiles", "config", "paper_tables/quick"):
        (root / folder).mkdir(parents=True)
    (root / "Snakefile").write_text(snakefile)
    (root / "config" / "cross_machine_spread.yaml").write_text("second_run: nowhere\ncolumns: {}\nclaims: {}\n")
    (root / "paper_tables" / "quick" / "table4_omniglot.csv").write_text("Method,Accuracy\n1-RMD,74.60\n")
    report = "# Report\n\n- **one_rmd_descent_direction: PASS.** min 0.05\n"
    (root / "paper_tables" / "quick" / "reproduction_report.md").write_text(report)
    record_code_version(root, code_version(LINT))


LINT = "truncback.pipeline.lint"


def record_code_version(root, version: str):
    """A provenance of the committed quick outputs saying they were made by ``version`` of lint-workflow."""
    made = {"commit": "0123456789abcdef", "code_versions": {"lint-workflow": {"module": LINT, "version": version}}}
    (root / "paper_tables" / "quick" / "provenance.yaml").write_text(yaml.safe_dump(made))


@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
def test_check_results_logs_snakemake_to_a_file_and_ends_with_its_verdicts(tmp_path, monkeypatch, capsys):
    checkable_repository(tmp_path, CHECKED_SNAKEFILE)
    monkeypatch.chdir(tmp_path)
    assert cli(["check-results", "--scale", "quick", "--cores", "1"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines()[0] == "check-results: the committed outputs of scale quick: current"  # before the run
    log = (tmp_path / ".check" / "quick" / "snakemake.log").read_text()
    assert "Building DAG of jobs" in log and "Building DAG" not in out + err  # Snakemake's own lines: in the log
    assert re.search(r"^3 of 3 steps \(100%\) done: all$", err, re.MULTILINE)  # a line per finished job
    assert out.splitlines()[-1] == "2 of 2 SAME or WITHIN SPREAD"  # the verdicts come last
    (tmp_path / "Snakefile").write_text(CHECKED_SNAKEFILE.replace("printf '# Report", "exit 3; printf '# Report"))
    record_code_version(tmp_path, "0" * 16)
    assert cli(["check-results", "--scale", "quick", "--cores", "1"]) == 2
    out, err = capsys.readouterr()
    assert err.splitlines()[0].endswith("scale quick: made by older code for: lint-workflow")
    assert err.splitlines()[-1].endswith(f"its log: {tmp_path / '.check' / 'quick' / 'snakemake.log'}")
    assert "exit status 3" in (tmp_path / ".check" / "quick" / "snakemake.log").read_text() and not out


EXPORTED_SNAKEFILE = """
rule all:
    input:
        "paper_tables/smoke/help.md",
        "paper_tables/smoke/commit.md",


rule help:
    output:
        "paper_tables/smoke/help.md",
    shell:
        "python -m truncback lint-workflow --help > {output}"


rule commit:
    output:
        "paper_tables/smoke/commit.md",
    shell:
        "echo $TRUNCBACK_COMMIT > {output}"
"""


@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
@needs_git
def test_expected_outputs_record_each_command_s_code_version_and_give_the_jobs_the_commit(tmp_path, monkeypatch):
    committed_workflow(tmp_path, EXPORTED_SNAKEFILE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", SEARCH_PATH)  # the jobs' python: this environment's
    assert cli(["expected-outputs", "--scale", "smoke", "--cores", "1"]) == 0
    made = yaml.safe_load((tmp_path / "paper_tables" / "smoke" / "provenance.yaml").read_text())
    assert made["code_versions"] == {"lint-workflow": {"module": LINT, "version": code_version(LINT)}}
    assert currency(made) == "current"
    commit = (tmp_path / "paper_tables" / "smoke" / "commit.md").read_text().strip()
    assert commit == made["commit"] == git(tmp_path, "rev-parse", "HEAD")  # what the report names
    made["code_versions"]["lint-workflow"]["version"] = "0" * 16
    assert currency(made) == "made by older code for: lint-workflow"
    assert currency({"commit": commit}) == f"made at {commit[:12]}, code versions not recorded"
    # --reuse at a later commit that changes no job: nothing reruns, the provenance names both commits
    (tmp_path / "NOTES.md").write_text("a change no job reads\n")
    git(tmp_path, "add", "NOTES.md")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "two")
    assert cli(["expected-outputs", "--scale", "smoke", "--cores", "1", "--reuse"]) == 0
    again = yaml.safe_load((tmp_path / "paper_tables" / "smoke" / "provenance.yaml").read_text())
    assert again["commit"] == git(tmp_path, "rev-parse", "HEAD") and again["reused_runs_of"] == [commit]
    assert "the outputs of the run of" in again["made_by"] and currency(again) == "current"
    assert (tmp_path / "paper_tables" / "smoke" / "commit.md").read_text().strip() == commit  # not rerun


STUDY_SNAKEFILE = """
rule all:
    input:
        "paper_tables/smoke/table.csv",
        "paper_tables/smoke/reproduction_report.md",


rule table:
    output:
        "paper_tables/smoke/table.csv",
    shell:
        "printf 'Method,Accuracy\\n1-RMD,74.60\\n' > {output}"


rule report:
    output:
        "paper_tables/smoke/reproduction_report.md",
    shell:
        "printf '# Report\\n' > {output}; if [ -f paper_tables/smoke/study.csv ]; then cat paper_tables/smoke/study.csv >> {output}; fi"


rule study:
    output:
        "paper_tables/smoke/study.csv",
    shell:
        "python -m truncback config-schema --help > /dev/null && printf 'Variant,Accuracy\\nx,1.5\\n' > {output}"
"""


@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
@needs_git
def test_expected_outputs_with_targets_keep_a_study_all_leaves_out_and_check_results_reruns_it(
    tmp_path, monkeypatch, capsys
):
    """``--targets study all`` also makes what ``all`` does not request (as the sensitivity study), in a
    run before ``all``'s, whose report then finds it: its outputs are kept, its command versioned, the
    targets recorded, and check-results reruns them."""
    committed_workflow(tmp_path, STUDY_SNAKEFILE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", SEARCH_PATH)
    assert cli(["expected-outputs", "--scale", "smoke", "--cores", "1", "--targets", "study", "all"]) == 0
    made = yaml.safe_load((tmp_path / "paper_tables" / "smoke" / "provenance.yaml").read_text())
    assert made["targets"] == ["study", "all"]
    assert made["command"] == (
        "snakemake study --cores 1 --config scale=smoke && snakemake all --cores 1 --config scale=smoke"
    )
    assert "Variant" in (tmp_path / "paper_tables" / "smoke" / "reproduction_report.md").read_text()
    assert "paper_tables/smoke/study.csv" in made["files"]
    assert set(made["code_versions"]) == {"config-schema"}
    for folder in ("config", "profiles"):
        (tmp_path / folder).mkdir()
    (tmp_path / "config" / "cross_machine_spread.yaml").write_text("second_run: nowhere\ncolumns: {}\nclaims: {}\n")
    capsys.readouterr()
    assert cli(["check-results", "--scale", "smoke", "--cores", "1"]) == 0
    assert (tmp_path / ".check" / "smoke" / "paper_tables" / "smoke" / "study.csv").is_file()
    out, _ = capsys.readouterr()
    assert re.search(r"^study +SAME$", out, re.MULTILINE), out


@needs_git
@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")
def test_a_carried_run_restored_on_another_machine_reruns_nothing_and_moves_to_a_later_commit(tmp_path):
    """expected-carry: what a run made in a scratch, packed and unpacked where the scratch is gone (as on
    the next machine), gives Snakemake nothing to rerun, keeps a checkpoint and the runs' wall time,
    leaves out the lock, and moves to a commit that changes one job's code like any scratch."""
    from truncback.pipeline.carry import restore, run_files, save

    repo, scratch, archive = tmp_path / "repo", tmp_path / "scratch", tmp_path / "carry" / "smoke.tar.xz"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "Snakefile").write_text(VERSIONED_SNAKEFILE)
    (repo / "code_a").write_text("1")
    (repo / "code_b").write_text("1")
    first = commit_all(repo, "one")
    export_commit(repo, scratch)
    log = tmp_path / "snakemake.txt"
    run_scale(scratch, "smoke", [], "1", log=log)
    (scratch / "results").mkdir()
    (scratch / "results" / "run.ckpt").write_bytes(b"\x00checkpoint")  # a killed job's checkpoint
    (scratch / ".snakemake" / "locks").mkdir(exist_ok=True)
    (scratch / ".snakemake" / "locks" / "0.input.lock").write_text("lock")  # what the kill left
    made = {name: (scratch / name).stat().st_mtime_ns for name in ("out/a.txt", "out/b.txt", "results/run.ckpt")}
    wall = snakemake_wall_seconds(scratch)
    packed = run_files(scratch)
    assert "Snakefile" not in packed and "code_a" not in packed  # the export's, made again from the commit
    assert {"out/a.txt", "results/run.ckpt", ".exported_commit"} <= set(packed)
    assert not [name for name in packed if name.startswith(".snakemake/locks")]
    assert save(scratch, archive) == len(packed)
    with pytest.raises(ValueError, match="exists"):
        restore(repo, scratch, archive)
    shutil.rmtree(scratch)
    assert restore(repo, scratch, archive) == first
    assert {name: (scratch / name).stat().st_mtime_ns for name in made} == made
    assert (scratch / "results" / "run.ckpt").read_bytes() == b"\x00checkpoint"
    assert (scratch / "Snakefile").read_text() == VERSIONED_SNAKEFILE
    assert not (scratch / ".snakemake" / "locks" / "0.input.lock").exists()
    assert snakemake_wall_seconds(scratch) == wall
    run_scale(scratch, "smoke", [], "1", log=log)
    assert {name: (scratch / name).stat().st_mtime_ns for name in made} == made  # nothing reran
    (repo / "code_b").write_text("2")
    export_commit(repo, scratch, commit_all(repo, "two"), reuse=True)
    run_scale(scratch, "smoke", [], "1", log=log)
    assert (scratch / "out" / "b.txt").read_text() == "2\n"
    assert (scratch / "out" / "a.txt").stat().st_mtime_ns == made["out/a.txt"]


@needs_git
def test_a_carry_is_refused_without_an_archive_of_save_or_its_commit(tmp_path):
    from truncback.pipeline.carry import restore, save

    repo, other, scratch = tmp_path / "repo", tmp_path / "other", tmp_path / "scratch"
    for folder, text in ((repo, "one\n"), (other, "other\n")):
        folder.mkdir()
        git(folder, "init", "-q")
        (folder / "Snakefile").write_text(text)
        commit_all(folder, "one")
    with pytest.raises(ValueError, match="does not exist"):
        restore(repo, scratch, tmp_path / "missing.tar.xz")
    (tmp_path / "text.tar.xz").write_text("not an archive")
    with pytest.raises(ValueError, match="not an archive"):
        restore(repo, scratch, tmp_path / "text.tar.xz")
    with pytest.raises(ValueError, match="holds no export"):
        save(tmp_path / "empty", tmp_path / "a.tar.xz")
    export_commit(other, tmp_path / "elsewhere")
    save(tmp_path / "elsewhere", tmp_path / "elsewhere.tar.xz")
    with pytest.raises(ValueError, match="does not have"):
        restore(repo, scratch, tmp_path / "elsewhere.tar.xz")
    assert not scratch.exists()  # nothing was changed


def test_the_provenance_names_the_processor_from_cpuinfo(tmp_path):
    """Trained numbers and timings differ between CPU vendors of one architecture, so the provenance
    names the model (the first "model name" of /proc/cpuinfo)."""
    from truncback.runtime.machine import processor

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\n\nmodel name\t: other\n"
    )
    assert processor(cpuinfo) == "AMD EPYC 9R14"
    cpuinfo.write_text("processor\t: 0\nmodel name\t:\n")  # no model: the platform's name, a string
    assert isinstance(processor(cpuinfo), str)
