"""``data-fixtures``: write seeded, format-faithful synthetic stand-ins of archives."""

import sys

from truncback.data.cli import reporting_errors
from truncback.data.fixtures import write_fixtures


@reporting_errors
def run_fixtures(args) -> None:
    for path in write_fixtures(args.scale, args.files, args.seed):
        print(f"wrote {path}", file=sys.stderr)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data-fixtures",
        help="write seeded synthetic stand-ins of archives",
        description="Write seeded, format-faithful synthetic archives; each FILE's name says which archive "
        "it stands in for (e.g. data/fixtures/smoke/cifar10/cifar-10-python.tar.gz).",
    )
    parser.add_argument("files", nargs="+", help="files to write, named as the archives they mimic")
    parser.add_argument(
        "--scale",
        required=True,
        help="size preset: smoke, quick or published (the real archives' sizes, for the rehearsal)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(run=run_fixtures)
