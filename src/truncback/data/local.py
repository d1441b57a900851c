"""Archives supplied by hand in a data_dir: found, verified, and copied into place - the network is
never touched."""

import shutil
import sys
from pathlib import Path

from truncback.runtime.atomic import atomic_path
from truncback.data.checksums import verify
from truncback.data.errors import ChecksumError, MissingFileError
from truncback.data.layout import raw_path
from truncback.data.sources import Archive, archives_of, placement_hint


def find_in_data_dir(archive: Archive, data_dir, expected=None) -> Path:
    """The archive's file in ``data_dir``: ``<data_dir>/<group>/<filename>`` or else
    ``<data_dir>/<filename>``; raises :class:`MissingFileError` naming both places and the names
    expected (those of ``expected``, by default just this archive)."""
    data_dir = Path(data_dir)
    candidates = (data_dir / archive.relpath, data_dir / archive.filename)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    where = "does not exist" if not data_dir.is_dir() else "has no " + archive.filename
    raise MissingFileError(
        f"data_dir {data_dir} {where} (looked for {candidates[0]} and {candidates[1]}). "
        + placement_hint(expected or (archive,))
    )


def copy_from_data_dir(archive: Archive, data_dir, target, expected=None, log=sys.stderr) -> Path:
    """Verify the archive's file in ``data_dir`` and copy it to ``target`` (atomically: a temporary
    name, verified, then renamed). A copy, not a link: Snakemake dates a link by its target, so a
    data_dir re-created with the same bytes would make every job downstream rerun. A ``target``
    already holding the archive's bytes is left untouched."""
    source = find_in_data_dir(archive, data_dir, expected)
    target = Path(target)
    if target.is_file() and not target.is_symlink():
        try:
            verify(target, archive)
            print(f"{archive.filename}: already in {target}, checksums verified", file=log, flush=True)
            return target
        except ChecksumError:
            pass  # replaced below by the data_dir's verified file
    with atomic_path(target) as temporary:
        shutil.copyfile(source, temporary)
        matched = verify(temporary, archive, source=str(source))
    print(f"{archive.filename}: copied from {source}, checksums of the {matched} verified", file=log, flush=True)
    return target


def missing_from_data_dir(scale: str, data_dir, root) -> str:
    """What ``data_dir`` lacks of the real archives ``scale`` needs (those not already under
    ``root``/raw), in one message naming every missing file and where it was looked for; "" if nothing."""
    data_dir = Path(data_dir)
    needed = [item for item in archives_of(scale, "real") if not raw_path(item, root).exists()]
    if needed and not data_dir.is_dir():
        return f"data_dir {data_dir} does not exist (resolved: {data_dir.resolve()}). " + placement_hint(
            archives_of(scale, "real")
        )
    missing = [
        item for item in needed if not any((data_dir / name).is_file() for name in (item.relpath, item.filename))
    ]
    if not missing:
        return ""
    listed = "; ".join(
        f"{item.relpath} (looked for {data_dir / item.relpath} and {data_dir / item.filename})" for item in missing
    )
    return f"data_dir {data_dir} lacks {len(missing)} file(s) that scale {scale!r} needs: {listed}. " + placement_hint(
        archives_of(scale, "real")
    )
