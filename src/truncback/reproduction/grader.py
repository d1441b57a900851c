"""Which code graded a reproduction report: the report command's code version and, where the scale ran
in a clean export of a commit, that commit. ``expected-outputs`` (the only runner that exports one)
passes it to the jobs in ``TRUNCBACK_COMMIT``; a run in a working tree, which may differ from any
commit, names none."""

import os

from truncback.runtime.code_version import code_version

COMMIT_VARIABLE = "TRUNCBACK_COMMIT"


def graded_by(module: str) -> str:
    """The report's line naming the code that graded it: the commit of the clean export it ran in (from
    ``TRUNCBACK_COMMIT``) where there is one, and the code version of ``module``, the report's command."""
    version = f"`python -m truncback reproduction-report`, code version `{code_version(module)}`"
    commit = os.environ.get(COMMIT_VARIABLE)
    if commit:
        return f"Graded by the code of commit `{commit[:12]}` ({version})."
    return (
        f"Graded by {version}; no commit is named: the scale ran in a working tree, not in a clean export of "
        "a commit (`make expected-outputs` runs one)."
    )
