"""A scale's unfinished run carried from one machine to the next through the repository.

``make expected-outputs`` runs a scale in ``.expected/<scale>/`` (``pipeline.scratch``), which a killed
run resumes from (``--resume``, ``--reuse``). That folder is ignored by git, so it lives only as long
as its machine: a run longer than one machine's life (the offline scale with its sensitivity study,
about 18 job-hours) would start afresh on the next. This command packs what the run made into one
archive to copy to the next machine (not into git: it holds data and results), and unpacks it on another machine, where the same ``expected-outputs``
command continues it:

    python -m truncback expected-carry save --scale offline        # carry/offline.tar.xz
    python -m truncback expected-carry restore --scale offline     # .expected/offline/ again
    python -m truncback expected-outputs --scale offline --reuse ...

What is packed is every file of the scratch that the commit's export did not write (the outputs,
finished or checkpointed; the prepared data; Snakemake's records of the jobs, the code version of each
among them; its logs, whose time stamps give the run's wall time) and the scratch's markers of the
commit it holds. The export itself is not packed: ``restore`` makes it again from the commit, which
the repository must have. Every file gets back its time stamp to the nanosecond (kept in the archive's
manifest), because Snakemake decides by them what to rerun and ``--reuse`` tells the export's files
from the run's by them.
"""

import argparse
import io
import json
import os
import sys
import tarfile
from pathlib import Path

from truncback.pipeline.scratch import EXPORTED, WRITTEN, is_commit, export_commit, repository_root
from truncback.runtime.atomic import atomic_path

MANIFEST = ".carry.json"  # in the archive: {"commit": the export's, "files": {file: its time stamp (ns)}}
LEFT_OUT = (".snakemake/locks", "__pycache__")  # a killed run's lock (a resume removes it) and bytecode


def archive_path(root: Path, scale: str) -> Path:
    """Where ``save`` puts a scale's archive: ``carry/<scale>.tar.xz`` in the repository."""
    return root / "carry" / f"{scale}.tar.xz"


def run_files(scratch: Path) -> list[str]:
    """The files of ``scratch`` that its run made (relative paths, sorted): all but those its export
    wrote and still holds unchanged (``WRITTEN``, with their time stamps), Snakemake's lock and Python's
    bytecode (``LEFT_OUT``)."""
    written = json.loads((scratch / WRITTEN).read_text()) if (scratch / WRITTEN).is_file() else {}
    files = []
    for path in scratch.rglob("*"):
        name = path.relative_to(scratch).as_posix()
        if path.is_dir() and not path.is_symlink():
            continue
        if any(name.startswith(part + "/") or f"/{part}/" in f"/{name}" for part in LEFT_OUT):
            continue
        if written.get(name) != path.lstat().st_mtime_ns:
            files.append(name)
    return sorted(files)


def save(scratch: Path, archive: Path) -> int:
    """``scratch``'s run (``run_files``) and its markers packed into ``archive`` (xz), written under a
    temporary name and then renamed; the number of files packed. A ValueError where ``scratch`` holds
    no export."""
    if not (scratch / EXPORTED).is_file():
        raise ValueError(f"{scratch} holds no export of a commit (no {EXPORTED}): nothing to carry")
    names = run_files(scratch)
    manifest = {
        "commit": (scratch / EXPORTED).read_text().strip(),
        "files": {name: (scratch / name).lstat().st_mtime_ns for name in names},
    }
    archive.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(archive) as temporary:
        with tarfile.open(temporary, "w:xz") as tar:
            for name in names:
                tar.add(scratch / name, arcname=name, recursive=False)
            data = json.dumps(manifest, sort_keys=True, indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return len(names)


def restore(root: Path, scratch: Path, archive: Path, replace: bool = False) -> str:
    """``scratch`` made again from ``archive``: the export of the commit it was packed from, then the
    run's files with their time stamps; that commit. A ValueError, changing nothing, where the archive
    is missing or not one of ``save``'s, the repository lacks its commit, or ``scratch`` exists and
    ``replace`` is not set."""
    if not archive.is_file():
        raise ValueError(f"{archive} does not exist: nothing to restore (`expected-carry save` makes it)")
    try:
        tar = tarfile.open(archive, "r:xz")
    except (tarfile.ReadError, EOFError, OSError) as error:  # lzma's errors are OSErrors
        raise ValueError(f"{archive} is not an archive of `expected-carry save` ({error})") from None
    with tar:
        try:
            member = tar.getmember(MANIFEST)
        except KeyError:
            raise ValueError(f"{archive} is not an archive of `expected-carry save` (it has no {MANIFEST})") from None
        content = tar.extractfile(member)
        if content is None:
            raise ValueError(f"{archive} is not an archive of `expected-carry save` (its {MANIFEST} is no file)")
        manifest = json.loads(content.read())
        commit = manifest["commit"]
        if not is_commit(root, commit):
            raise ValueError(f"{archive} carries a run of commit {commit[:12]}, which this repository does not have")
        if scratch.exists() and not replace:
            raise ValueError(f"{scratch} exists: move it away, or pass --replace to overwrite it")
        export_commit(root, scratch, commit)
        for name in manifest["files"]:
            target = scratch / name
            if target.is_symlink() or target.is_file():
                target.unlink()  # an exported file the run rewrote: the run's copy wins
        members = [member for member in tar.getmembers() if member.name != MANIFEST]
        if hasattr(tarfile, "tar_filter"):  # Python 3.11.4 and later: refuses members that would land elsewhere
            tar.extractall(scratch, members=members, filter="tar")
        else:
            tar.extractall(scratch, members=members)
    for name, stamp in manifest["files"].items():
        os.utime(scratch / name, ns=(stamp, stamp), follow_symlinks=False)
    return commit


def main(args) -> int:
    root = repository_root()
    scratch = root / ".expected" / args.scale
    archive = Path(args.archive) if args.archive else archive_path(root, args.scale)
    try:
        if args.action == "save":
            count = save(scratch, archive)
            print(
                f"expected-carry: {count} files of {scratch} packed into {archive} "
                f"({archive.stat().st_size / 2**20:.1f} MiB); it holds data and results, so keep it out of git: copy it to the next machine",
                file=sys.stderr,
            )
        else:
            commit = restore(root, scratch, archive, replace=args.replace)
            print(
                f"expected-carry: {scratch} restored from {archive} at commit {commit[:12]}; continue with "
                f"`python -m truncback expected-outputs --scale {args.scale} --reuse ...` (the same "
                "--config and --targets as the run)",
                file=sys.stderr,
            )
    except ValueError as error:
        print(f"expected-carry: {error}", file=sys.stderr)
        return 2
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "expected-carry",
        help="pack an unfinished expected-outputs run into an archive to commit, or unpack one to continue it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=["save", "restore"])
    parser.add_argument("--scale", required=True, help="the scale whose .expected/<scale>/ is carried")
    parser.add_argument("--archive", default=None, help="the archive (default carry/<scale>.tar.xz)")
    parser.add_argument(
        "--replace", action="store_true", help="restore over an existing .expected/<scale>/ (it is removed first)"
    )
    parser.set_defaults(run=main)
