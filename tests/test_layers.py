"""The package's layers point down (docs/architecture.md): import-linter keeps the contract in
pyproject.toml on the package as it is, and breaks it, naming the modules, on a copy where the engine
imports an experiment."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = shutil.which("lint-imports", path=str(Path(sys.executable).parent))


def lint_imports(source: Path) -> subprocess.CompletedProcess:
    """`lint-imports` with the repository's contract, on the package under ``source``."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    return subprocess.run(
        [LINT_IMPORTS, "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.mark.skipif(LINT_IMPORTS is None, reason="import-linter is not installed (make lint installs it)")
def test_the_layers_hold_and_an_upward_import_breaks_them(tmp_path):
    kept = lint_imports(REPO / "src")
    assert kept.returncode == 0 and "Layers point down KEPT" in kept.stdout, kept.stdout + kept.stderr
    shutil.copytree(REPO / "src" / "truncback", tmp_path / "truncback", ignore=shutil.ignore_patterns("__pycache__"))
    engine = tmp_path / "truncback" / "hypergrad" / "trees.py"
    engine.write_text(engine.read_text() + "\nimport truncback.experiments.toy.settings  # noqa: E402\n")
    broken = lint_imports(tmp_path)
    assert (
        broken.returncode != 0 and "truncback.hypergrad is not allowed to import truncback.experiments" in broken.stdout
    )
    assert "truncback.hypergrad.trees -> truncback.experiments.toy.settings" in broken.stdout


@pytest.mark.skipif(LINT_IMPORTS is None, reason="import-linter is not installed (make lint installs it)")
def test_the_runtime_importing_io_breaks_the_layers(tmp_path):
    """io (tables, figures) is above runtime: the atomic-write helper they share lives in runtime."""
    shutil.copytree(REPO / "src" / "truncback", tmp_path / "truncback", ignore=shutil.ignore_patterns("__pycache__"))
    runtime = tmp_path / "truncback" / "runtime" / "files.py"
    runtime.write_text(runtime.read_text() + "\nimport truncback.io.tables  # noqa: E402\n")
    broken = lint_imports(tmp_path)
    assert broken.returncode != 0 and "truncback.runtime is not allowed to import truncback.io" in broken.stdout


def test_no_module_of_the_package_imports_itself_back():
    """No import cycle between modules (function-level imports included), from grimp, import-linter's
    graph: e.g. the compiled fast path and the problem statement share the update through a third module."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("truncback")
    modules = sorted(module for module in graph.modules if module.startswith("truncback."))
    for module in modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if imported != module and imported.startswith("truncback."):
                chain = graph.find_shortest_chain(importer=imported, imported=module)
                assert chain is None, f"import cycle: {module} -> {' -> '.join(chain)}"
