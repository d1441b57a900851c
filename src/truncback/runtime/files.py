"""Files of a run: prepared arrays read with errors naming the file; result files written atomically
with the code version of the command that wrote them and read back refusing a file whose code has
changed since: JSON (:func:`write_json`, :func:`read_json`), CSV (:func:`write_csv`,
:func:`read_csv`) and npz (``truncback.runtime.determinism.write_npz``, :func:`load_npz`; a CSV or
npz file that records no version is refused too); and typed result files.

A result file is a dataclass written by :func:`write_result` with its ``LAYOUT`` (name and version)
and read back by :func:`read_result` into the same dataclass: a key that is missing, unexpected or
renamed fails when the file is written or read, naming the file and the key, not deep inside a table.
"""

import csv
import dataclasses
import json
import typing
from pathlib import Path

import numpy as np

from truncback.runtime.atomic import atomic_path
from truncback.runtime.code_version import (
    STAMP_KEY,
    StaleResultError,
    check_stamp,
    check_stamp_text,
    stamp,
    stamp_text,
)


def _arrays(path: Path, keys, what: str, stamped: bool) -> dict:
    """The named arrays of an .npz file (``what`` it is, for the errors; None: every array but the
    stamp), its stamp checked if ``stamped``."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    with np.load(path) as archive:
        if stamped:
            check_stamp_text(path, str(archive[STAMP_KEY].item()) if STAMP_KEY in archive.files else "")
        if keys is None:
            keys = [key for key in archive.files if key != STAMP_KEY]
        missing = [key for key in keys if key not in archive.files]
        if missing:
            raise ValueError(f"{path} lacks array(s) {missing}; it has {archive.files}")
        return {key: archive[key] for key in keys}


def load_arrays(path, keys) -> dict:
    """The named arrays of a prepared .npz file, with an error naming the file and missing keys.
    Prepared data are keyed by their archives' checksums, not by code, so they carry no stamp."""
    return _arrays(Path(path), keys, "prepared data file", stamped=False)


def load_npz(path, keys=None) -> dict:
    """The named arrays (default: all) of an .npz result file written by ``write_npz``; a file recording a code
    version other than the current one of the command that wrote it, or none, is refused
    (StaleResultError, naming the file and how to remake it)."""
    return _arrays(Path(path), keys, "result file", stamped=True)


def write_csv(path, fieldnames, rows) -> None:
    """Writes ``rows`` (dicts) as CSV with the columns ``fieldnames`` to a temporary name, then renames
    it into place; written by a command, every row also records its code version (column
    ``code_version``, ``module@version``)."""
    fieldnames, rows = list(fieldnames), list(rows)
    if STAMP_KEY in fieldnames:
        raise ValueError(f"{path}: the column {STAMP_KEY!r} is the code version's; name the data otherwise")
    if stamp_text():
        fieldnames.append(STAMP_KEY)
        rows = [{**row, STAMP_KEY: stamp_text()} for row in rows]
    with atomic_path(path) as temporary, temporary.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path):
    """The CSV file at ``path`` (written by :func:`write_csv`) as a pandas DataFrame without its
    ``code_version`` column; a file whose rows record a code version other than the current one of
    the command that wrote it, or none, is refused (StaleResultError, naming the file)."""
    import pandas as pd  # here: the commands that write no table do not pay for importing pandas

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"result file {path} does not exist")
    frame = pd.read_csv(path)
    recorded = set(frame[STAMP_KEY]) if STAMP_KEY in frame else set()
    if len(recorded) > 1:
        raise StaleResultError(
            f"{path} mixes rows of different code versions {sorted(map(str, recorded))}; delete it and remake it"
        )
    check_stamp_text(path, recorded.pop() if recorded else "")
    return frame.drop(columns=STAMP_KEY)


def write_json(path, value) -> None:
    """Writes ``value`` as JSON (sorted keys) to a temporary name, then renames it into place; an
    object written by a command records the code version of that command (``code_version``)."""
    if isinstance(value, dict) and stamp():
        value = {**value, STAMP_KEY: stamp()}
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n")


def read_json(path) -> dict:
    """The JSON file at ``path``; a file recording a code version other than the current one of the
    command that wrote it is refused (StaleResultError), and the record is not part of the value."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"result file {path} does not exist")
    try:
        value = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if isinstance(value, dict) and STAMP_KEY in value:
        check_stamp(path, value.pop(STAMP_KEY))
    return value


def _check_typed(cls, value, where: str):
    """``value`` (from JSON) as an instance of dataclass ``cls``, recursing into dataclass fields."""
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected an object for {cls.__name__}, got {type(value).__name__}")
    hints = typing.get_type_hints(cls)
    names = [field.name for field in dataclasses.fields(cls)]
    unknown, missing = sorted(set(value) - set(names)), sorted(set(names) - set(value))
    if unknown or missing:
        raise ValueError(
            f"{where}: {cls.__name__} has no key(s) {unknown} and lacks {missing}; "
            "the file was written by another version - delete it and rerun"
        )
    return cls(
        **{
            name: _check_typed(hints[name], value[name], f"{where}.{name}")
            if dataclasses.is_dataclass(hints[name])
            else value[name]
            for name in names
        }
    )


def write_result(path, result) -> None:
    """Writes the dataclass ``result`` with its ``LAYOUT`` tag (atomically)."""
    if not dataclasses.is_dataclass(result) or isinstance(result, type) or not hasattr(result, "LAYOUT"):
        raise TypeError(f"a result must be a dataclass with a LAYOUT, got {type(result).__name__}")
    write_json(path, {"layout": result.LAYOUT, **dataclasses.asdict(result)})


def read_result(path, cls):
    """The result file at ``path`` as a ``cls``; its layout tag and keys must be those of ``cls``."""
    data = read_json(path)
    layout = data.pop("layout", None)
    if layout != cls.LAYOUT:
        raise ValueError(
            f"{path} has layout {layout!r}, expected {cls.LAYOUT!r}: it is not a {cls.__name__} "
            "file of this version - delete it and rerun"
        )
    return _check_typed(cls, data, str(path))


def read_results(paths, cls) -> list:
    """Several result files of one kind, which must share their settings (they differ only in the
    method, seed or trial); a file whose settings differ from the first one's is named."""
    results = [read_result(path, cls) for path in paths]
    if not results:
        raise ValueError("no result files given")
    for path, result in zip(paths, results):
        if result.settings != results[0].settings:
            changed = sorted(key for key in result.settings if result.settings[key] != results[0].settings.get(key))
            raise ValueError(
                f"{path} was run with other settings than {paths[0]} (differing: {changed}); "
                "delete stale results and rerun"
            )
    return results


def timing_path(output) -> Path:
    """The timing file that goes with the result file ``output``: ``<stem>.timing.json``."""
    output = Path(output)
    return output.with_name(f"{output.stem}.timing.json")


def read_timings(result_paths) -> list[dict]:
    """The timing file of each result file (seconds and CPU seconds per hyper-iteration)."""
    return [read_json(timing_path(path)) for path in result_paths]
