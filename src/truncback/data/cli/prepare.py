"""``data-prepare``: parse a dataset's archives into an .npz of arrays."""

from truncback.data.cli import reporting_errors
from truncback.data.prepare import prepare


@reporting_errors
def run_prepare(args) -> None:
    prepare(args.scale, args.dataset, args.archives, args.output)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data-prepare",
        help="parse a dataset's archives into an .npz of arrays",
        description="Parse the archives of DATASET at SCALE (in the recipe's order) into an .npz.",
    )
    parser.add_argument("dataset", help="prepared dataset name, e.g. mnist_test, omniglot_background")
    parser.add_argument("archives", nargs="+", help="the archive files, in the recipe's order")
    parser.add_argument("--scale", required=True)
    parser.add_argument("--output", required=True)
    parser.set_defaults(run=run_prepare)
