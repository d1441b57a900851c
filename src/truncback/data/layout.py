"""Where data files live, relative to a data root (``data/`` under the project, git-ignored)."""

from pathlib import Path

from truncback.data.sources import Archive, recipe

DATA_ROOT = Path("data")


def raw_path(item: Archive, root=DATA_ROOT) -> Path:
    """A real archive, downloaded or linked from data_dir: ``data/raw/<group>/<filename>``."""
    return Path(root) / "raw" / item.relpath


def fixture_path(scale: str, item: Archive, root=DATA_ROOT) -> Path:
    """A synthetic stand-in: ``data/fixtures/<scale>/<group>/<filename>``."""
    return Path(root) / "fixtures" / scale / item.fixture_relpath


def source_path(scale: str, origin: str, item: Archive, root=DATA_ROOT) -> Path:
    """The archive a recipe of ``scale`` reads, by origin ("real" or "fixture")."""
    return raw_path(item, root) if origin == "real" else fixture_path(scale, item, root)


def prepared_path(scale: str, name: str, root=DATA_ROOT) -> Path:
    """A prepared array file, ``data/prepared/<scale>/<name>.npz``; ``name`` must exist at ``scale``."""
    recipe(scale, name)
    return Path(root) / "prepared" / scale / f"{name}.npz"
