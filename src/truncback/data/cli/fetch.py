"""``data-fetch``: download an archive, or take it from a folder of downloaded files, and verify it."""

from truncback.data.cli import reporting_errors
from truncback.data.download import fetch
from truncback.data.local import copy_from_data_dir
from truncback.data.sources import ARCHIVES, archive, archives_of


@reporting_errors
def run_fetch(args) -> None:
    item = archive(args.archive)
    expected = archives_of(args.scale, "real") if args.scale else None
    if args.data_dir:
        copy_from_data_dir(item, args.data_dir, args.output, expected)
    else:
        fetch(item, args.output, attempts=args.attempts, backoff=args.backoff, timeout=args.timeout, expected=expected)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data-fetch",
        help="download an archive (or take it from --data-dir) and verify it",
        description="Download an archive from its URLs, or take it from --data-dir without any network "
        "access; verify its checksum; write OUTPUT atomically.",
    )
    parser.add_argument("archive", help=f"archive key, one of: {', '.join(ARCHIVES)}")
    parser.add_argument("--output", required=True, help="where the verified archive goes")
    parser.add_argument("--data-dir", help="folder holding the archives already; OUTPUT becomes a verified copy")
    parser.add_argument("--scale", help="list every file this scale needs in error messages")
    parser.add_argument("--attempts", type=int, default=3, help="tries per URL (default 3)")
    parser.add_argument(
        "--backoff", type=float, default=2.0, help="seconds before the 2nd try, doubled for each next one (default 2)"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds")
    parser.set_defaults(run=run_fetch)
