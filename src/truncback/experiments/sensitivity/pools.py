"""The data-scaling study's Omniglot files, cut from the two prepared Omniglot files: a pool of the first
N characters of some alphabets (meta-training) or every character of others (the held-out meta-test set).

``python -m truncback sensitivity-pool --background bg.npz --evaluation ev.npz --alphabets
background/Balinese background/Korean --characters 40 --exclude evaluation/Tagalog --output pool40.npz``

An alphabet is named by its file and its name, ``background/<alphabet>`` or ``evaluation/<alphabet>``
(``<file>/*``: every alphabet of that file, in its order); its characters are taken in their order in
that file. The file written is prepared data, as ``data-prepare`` writes it (no code version: it is
made from prepared files by the names and size its rule passes, and read by ``omniglot`` as a prepared
file), with the prepared files' keys (``images``, ``labels`` 0..C-1 in pool order, ``alphabet``
indexing ``alphabet_names`` = the alphabets' names as <file>/<alphabet>, ``character``, ``drawing``). A
pool holding a drawing identical to one of the ``--exclude`` alphabets' is refused: the offline files
small1 and small2 both hold the alphabets Greek and Latin, byte for byte, so naming the file is not
enough to keep a meta-test alphabet out of a pool.
"""

import argparse

import numpy as np

from truncback.data.prepare import save_arrays
from truncback.experiments.sensitivity.settings import FILES
from truncback.runtime.files import load_arrays

KEYS = ("images", "labels", "alphabet", "character", "drawing", "alphabet_names")


def alphabet_rows(files: dict, name: str) -> tuple[str, np.ndarray]:
    """(file, the rows of that file holding alphabet ``name`` = "<file>/<alphabet>")."""
    file, _, alphabet = name.partition("/")
    if file not in files:
        raise ValueError(f"alphabet {name!r}: name it <file>/<alphabet> with file one of {sorted(files)}")
    names = [str(value) for value in files[file]["alphabet_names"]]
    if alphabet not in names:
        raise ValueError(f"alphabet {name!r}: the {file} file has no alphabet {alphabet!r}; it has {names}")
    return file, np.flatnonzero(files[file]["alphabet"] == names.index(alphabet))


def expanded(files: dict, alphabets) -> list[str]:
    """The alphabets' names with each ``<file>/*`` replaced by every alphabet of that file, in its order."""
    names = []
    for name in alphabets:
        file, _, alphabet = name.partition("/")
        if alphabet == "*" and file in files:
            names += [f"{file}/{value}" for value in files[file]["alphabet_names"]]
        else:
            names.append(name)
    return names


def character_pool(files: dict, alphabets: list, characters: int | None = None, exclude: tuple | list = ()) -> dict:
    """The arrays of the first ``characters`` characters (None: all) of ``alphabets``, each alphabet's
    characters in the order of its file; ``files`` maps "background" and "evaluation" to their arrays.
    A drawing identical to one of the alphabets ``exclude`` is a ValueError naming the alphabets."""
    alphabets, exclude = expanded(files, alphabets), expanded(files, exclude)
    if len(set(alphabets)) < len(alphabets):
        raise ValueError(f"alphabets {alphabets} name one twice")
    classes = []  # (index into alphabets, file, rows), one per character
    for index, name in enumerate(alphabets):
        file, rows = alphabet_rows(files, name)
        within = files[file]["character"][rows]
        classes += [(index, file, rows[within == character]) for character in np.unique(within)]
    if characters is not None:
        if not 2 <= characters <= len(classes):
            raise ValueError(f"characters={characters}: the alphabets {alphabets} hold {len(classes)} characters")
        classes = classes[:characters]

    def joined(key):
        return np.concatenate([files[file][key][rows] for _, file, rows in classes])

    pool = {
        "images": joined("images"),
        "labels": np.concatenate([np.full(len(rows), c, dtype=np.int64) for c, (_, _, rows) in enumerate(classes)]),
        "alphabet": np.concatenate([np.full(len(rows), a, dtype=np.int64) for a, _, rows in classes]),
        "character": joined("character").astype(np.int64),
        "drawing": joined("drawing").astype(np.int64),
        "alphabet_names": np.array(alphabets[: classes[-1][0] + 1], dtype=str),
    }
    excluded: set[bytes] = set()
    for name in exclude:
        file, rows = alphabet_rows(files, name)
        excluded.update(image.tobytes() for image in files[file]["images"][rows])
    shared = sum(image.tobytes() in excluded for image in pool["images"])
    if shared:
        raise ValueError(
            f"{shared} drawing(s) of the alphabets {alphabets} are also drawings of the excluded {list(exclude)}: "
            "the same alphabet in both files (small1 and small2 share Greek and Latin); leave it out of one side"
        )
    return pool


def main(args) -> int:
    files = {file: load_arrays(getattr(args, file), KEYS) for file in FILES}
    save_arrays(args.output, character_pool(files, args.alphabets, args.characters, args.exclude))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sensitivity-pool",
        help="an Omniglot pool of characters for the data-scaling study",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--background", required=True, help="prepared Omniglot .npz (the file named background)")
    parser.add_argument("--evaluation", required=True, help="prepared Omniglot .npz (the file named evaluation)")
    parser.add_argument(
        "--alphabets", nargs="+", required=True, help="<file>/<alphabet> (or <file>/*), in the order taken"
    )
    parser.add_argument("--characters", type=int, help="take the first this many characters (default: all)")
    parser.add_argument(
        "--exclude", nargs="*", default=[], help="<file>/<alphabet>: alphabets none of whose drawings may be taken"
    )
    parser.add_argument("--output", required=True, help="the pool (.npz, the prepared files' keys)")
    parser.set_defaults(run=main)
