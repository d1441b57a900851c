"""Sub-commands of the data layer: ``data-fetch``, ``data-fixtures``, ``data-prepare``."""

import sys

from truncback.data.download import fetch
from truncback.data.errors import DataError
from truncback.data.fixtures import write_fixtures
from truncback.data.local import link_from_data_dir
from truncback.data.prepare import prepare
from truncback.data.sources import ARCHIVES, archive, archives_of


def _reporting_errors(function):
    """Run a command; turn a DataError into a one-message failure (exit status 1)."""
    def run(args) -> int:
        try:
            function(args)
        except DataError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        return 0
    return run


@_reporting_errors
def run_fetch(args) -> None:
    item = archive(args.archive)
    expected = archives_of(args.scale, "real") if args.scale else None
    if args.data_dir:
        link_from_data_dir(item, args.data_dir, args.output, expected)
    else:
        fetch(item, args.output, attempts=args.attempts, backoff=args.backoff, timeout=args.timeout,
              expected=expected)


@_reporting_errors
def run_fixtures(args) -> None:
    for path in write_fixtures(args.scale, args.files, args.seed):
        print(f"wrote {path}", file=sys.stderr)


@_reporting_errors
def run_prepare(args) -> None:
    prepare(args.scale, args.dataset, args.archives, args.output)


def register(subparsers) -> None:
    fetch_parser = subparsers.add_parser(
        "data-fetch", help="download an archive (or take it from --data-dir) and verify it",
        description="Download an archive from its URLs, or take it from --data-dir without any network "
                    "access; verify its checksum; write OUTPUT atomically.")
    fetch_parser.add_argument("archive", help=f"archive key, one of: {', '.join(ARCHIVES)}")
    fetch_parser.add_argument("--output", required=True, help="where the verified archive goes")
    fetch_parser.add_argument("--data-dir", help="folder holding the archives already; OUTPUT becomes a symlink")
    fetch_parser.add_argument("--scale", help="list every file this scale needs in error messages")
    fetch_parser.add_argument("--attempts", type=int, default=3, help="tries per URL (default 3)")
    fetch_parser.add_argument("--backoff", type=float, default=2.0,
                              help="seconds before the 2nd try, doubled for each next one (default 2)")
    fetch_parser.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds")
    fetch_parser.set_defaults(run=run_fetch)

    fixtures_parser = subparsers.add_parser(
        "data-fixtures", help="write seeded synthetic stand-ins of archives",
        description="Write seeded, format-faithful synthetic archives; each FILE's name says which archive "
                    "it stands in for (e.g. data/fixtures/smoke/cifar10/cifar-10-python.tar.gz).")
    fixtures_parser.add_argument("files", nargs="+", help="files to write, named as the archives they mimic")
    fixtures_parser.add_argument("--scale", required=True, help="size preset: smoke, quick or published "
                                 "(the real archives' sizes, for the dry run)")
    fixtures_parser.add_argument("--seed", type=int, default=0)
    fixtures_parser.set_defaults(run=run_fixtures)

    prepare_parser = subparsers.add_parser(
        "data-prepare", help="parse a dataset's archives into an .npz of arrays",
        description="Parse the archives of DATASET at SCALE (in the recipe's order) into an .npz.")
    prepare_parser.add_argument("dataset", help="prepared dataset name, e.g. mnist_test, omniglot_background")
    prepare_parser.add_argument("archives", nargs="+", help="the archive files, in the recipe's order")
    prepare_parser.add_argument("--scale", required=True)
    prepare_parser.add_argument("--output", required=True)
    prepare_parser.set_defaults(run=run_prepare)
