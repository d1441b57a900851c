"""The version of the code a command runs: a digest of the syntax trees of its module and of every
module of the package that it imports, directly or through others.

The pipeline passes each job's code version as a Snakemake param, so that Snakemake's params
trigger reruns a job when the code it executes changes, and only then; and every result file a
command writes (JSON, CSV, npz) records the version it was made with (:func:`stamp`,
:func:`stamp_text`), so that a job reading a result that other code wrote, or one that records no
version, says so instead of using it (:func:`check_stamp`, :func:`check_stamp_text`).

The digest is of each module's syntax tree without its docstrings (``ast.dump``), so comments,
docstrings and formatting do not change it. Imports are found in the source (also those inside
functions), so a module imported lazily counts; importing ``a.b.c`` runs the packages ``a`` and
``a.b`` too, so their ``__init__`` modules count as well. The command line's dispatcher
(``truncback.cli``, ``__main__``) is not part of any command's code.
"""

import ast
import contextlib
import hashlib
from functools import cache
from pathlib import Path

PACKAGE = __name__.split(".")[0]
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
STAMP_KEY = "code_version"


class StaleResultError(ValueError):
    """A result file was written by other code than the code that would write it now."""


def module_file(name: str) -> Path | None:
    """The source file of the package's module ``name``, or None when it is not one of its modules."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_ROOT.joinpath(*parts[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


@cache
def _parsed(name: str) -> tuple[str, frozenset]:
    """(the dump of module ``name``'s syntax tree without docstrings, the package's modules it imports)."""
    path = module_file(name)
    assert path is not None, f"{name!r} is not a module of {PACKAGE}"  # modules_of passes only the package's modules
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1 packages
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            imported.add(base)
            imported.update(f"{base}.{alias.name}" for alias in node.names)
    modules: set[str] = set()
    for target in imported:
        parts = target.split(".")
        modules.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
    return ast.dump(_without_docstrings(tree)), frozenset(m for m in modules if module_file(m) is not None)


def modules_of(name: str) -> list[str]:
    """Module ``name``, the packages it lies in and every module of the package it imports, transitively."""
    if module_file(name) is None:
        raise ValueError(f"{name!r} is not a module of {PACKAGE} (under {PACKAGE_ROOT})")
    parts = name.split(".")
    pending = [".".join(parts[:end]) for end in range(1, len(parts) + 1)]
    seen = set()
    while pending:
        module = pending.pop()
        if module not in seen:
            seen.add(module)
            pending.extend(_parsed(module)[1] - seen)
    return sorted(seen)


@cache
def code_version(name: str) -> str:
    """The digest (16 hex digits) of the code of module ``name`` and everything of the package it imports."""
    digest = hashlib.sha256()
    for module in modules_of(name):
        digest.update(f"{module}\n{_parsed(module)[0]}\n".encode())
    return digest.hexdigest()[:16]


_running: list[str] = []


@contextlib.contextmanager
def running_module(name: str):
    """Declares ``name`` the module of the command running inside the block (the command line wraps
    each command in it): every result file written there records that module's code version; after
    the block, the one declared before (none outside a command) again."""
    before = list(_running)
    _running[:] = [name]
    try:
        yield
    finally:
        _running[:] = before


def stamp() -> dict:
    """What a JSON file written now records: {"module": ..., "version": ...}; empty outside a command."""
    return {"module": _running[0], "version": code_version(_running[0])} if _running else {}


def stamp_text() -> str:
    """The same record as one string, ``module@version``, for the files that keep it as text (a CSV
    column, an npz member); empty outside a command."""
    return f"{_running[0]}@{code_version(_running[0])}" if _running else ""


def check_stamp(path, recorded: dict) -> None:
    """Fails when the file at ``path`` was written by a version of its module's code other than the
    current one, naming the file and how to remake it."""
    module, version = recorded.get("module"), recorded.get("version")
    if module_file(module or "") is None:
        raise StaleResultError(
            f"{path} was written by {module!r}, which is no longer a module of {PACKAGE}: "
            f"it is stale; delete it and rerun Snakemake for it"
        )
    if code_version(module) != version:
        raise StaleResultError(
            f"{path} is stale: it was written by other code ({module} or a module it imports has changed since). "
            f"Remake it: `snakemake --cores all {path}` with the same --config (the params trigger reruns it)"
        )


def check_stamp_text(path, text: str) -> None:
    """:func:`check_stamp` for a record written by :func:`stamp_text`; an empty one (a file no
    command of this code wrote, or one written before such files were stamped) is refused too."""
    if not text:
        raise StaleResultError(
            f"{path} records no code version: no `python -m {PACKAGE}` command of this code wrote it, so it "
            f"may be stale; delete it and remake it: `snakemake --cores all {path}` with the same --config"
        )
    module, _, version = text.partition("@")
    check_stamp(path, {"module": module, "version": version})
