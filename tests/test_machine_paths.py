"""No committed file names a folder of the machine that made it: the expected outputs (figures,
tables, reports, provenance), the configuration (the measured spread), the docs and the README hold
no absolute path of the kinds a build machine has (/work, /tmp, /home, /root); the provenance records
a data_dir relative to the repository, or as ``<data_dir>``."""

import re
import subprocess
from pathlib import Path

from truncback.pipeline.expected import recorded_config
from workflow_copy import REPO

SCANNED = ("figures", "paper_tables", "config", "docs", "README.md")
MACHINE_PATH = re.compile(rb"(?<![\w.~/-])/(?:work|tmp|home|root)/[^\s'\")`]*")


def committed_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--", *SCANNED], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    return [REPO / name.decode() for name in listed if name]


def test_no_committed_file_names_a_folder_of_the_machine_that_made_it():
    files = committed_files()
    assert any(path.suffix == ".png" for path in files) and REPO / "README.md" in files
    found = {
        str(path.relative_to(REPO)): sorted(
            {match.decode(errors="replace") for match in MACHINE_PATH.findall(path.read_bytes())}
        )
        for path in files
        if path.is_file()
    }
    assert {name: paths for name, paths in found.items() if paths} == {}


def test_the_provenance_records_data_dir_relative_to_the_repository_or_as_a_placeholder(tmp_path):
    root = tmp_path / "checkout"
    (root / "docs").mkdir(parents=True)
    config = ["data_dir=../datasets", f"data_dir={tmp_path / 'datasets'}", f"data_dir={root / 'data'}", "threads=2"]
    assert recorded_config(config, root, root) == [
        "data_dir=../datasets",  # given relative: as given, from the repository
        "data_dir=<data_dir>",  # absolute, outside the repository: a path of this machine
        "data_dir=data",
        "threads=2",
    ]
    assert recorded_config(["data_dir=../../datasets"], root, root / "docs") == ["data_dir=../datasets"]
