"""The GPU check's parts that need no GPU: without CUDA it stops at once with a one-line reason, and
on the CPU its engine and repeatability checks run and pass (they compare against independent
references: autograd through the unrolled loop and the toy's closed form)."""

import subprocess
import sys

import pytest
import torch

from truncback.cli import main as cli
from workflow_copy import REPO


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_stops_at_once_with_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "truncback", "gpu-check"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("gpu-check: no CUDA device")


def test_on_the_cpu_the_engine_and_repeatability_checks_pass(tmp_path, capsys):
    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    try:
        assert cli(["gpu-check", "--device", "cpu", "--skip-paper-sizes", "--output", str(tmp_path / "g.md")]) == 0
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)
    summary = (tmp_path / "g.md").read_text()
    assert "ALL PASSED" in summary and summary.count("| True |") == 15
