"""Reading raw run results for tables and figures."""

import json
from pathlib import Path


def read_runs(paths) -> list[dict]:
    """The JSON results of runs that must share their settings (they differ only in K and seed);
    a file whose settings differ from the first one's is named in a ValueError."""
    runs = [json.loads(Path(path).read_text()) for path in paths]
    if not runs:
        raise ValueError("no result files given")
    for path, run in zip(paths, runs):
        if run["settings"] != runs[0]["settings"]:
            changed = sorted(key for key in run["settings"] if run["settings"][key] != runs[0]["settings"].get(key))
            raise ValueError(f"{path} was run with other settings than {paths[0]} (differing: {changed}); "
                             "delete stale results and rerun")
    return runs
