"""Sub-commands of the data layer, one module each (``data-fetch``, ``data-fixtures``,
``data-prepare``), so that each command's code version covers only the code it runs."""

import sys

from truncback.data.errors import DataError


def reporting_errors(function):
    """Run a command; turn a DataError into a one-message failure (exit status 1)."""

    def run(args) -> int:
        try:
            function(args)
        except DataError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        return 0

    return run
