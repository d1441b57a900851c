"""Archives supplied by hand in a data_dir: found, verified, and linked into place - the network is
never touched."""

import os
import sys
from pathlib import Path

from truncback.io.atomic import atomic_path
from truncback.data.checksums import verify
from truncback.data.errors import MissingFileError
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


def link_from_data_dir(archive: Archive, data_dir, target, expected=None, log=sys.stderr) -> Path:
    """Verify the archive's file in ``data_dir`` and make ``target`` a symlink to it (atomically).
    If ``target`` already is that file, it is only verified."""
    source = find_in_data_dir(archive, data_dir, expected)
    matched = verify(source, archive)
    print(f"{archive.filename}: taken from {source}, checksums of the {matched} verified", file=log, flush=True)
    target = Path(target)
    if target.exists() and os.path.samefile(target, source):
        return target
    with atomic_path(target) as temporary:
        temporary.symlink_to(source.resolve())
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
