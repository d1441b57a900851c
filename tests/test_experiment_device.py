"""Where experiments compute (--device): auto is CUDA where torch sees a GPU and the CPU otherwise;
asking for CUDA without one, or for an unknown device, is an error naming the option."""

import pytest
import torch

from truncback.cli import main as cli
from truncback.runtime.device import select_device


def test_auto_follows_what_torch_sees():
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert select_device("cpu") == torch.device("cpu")


def test_unknown_device_is_named():
    with pytest.raises(ValueError, match=r"--device 'tpu' is unknown; choose one of \['auto', 'cpu', 'cuda'\]"):
        select_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_stops_the_command_naming_the_option(tmp_path, capsys):
    assert (
        cli(
            [
                "hypercleaning",
                "--data",
                str(tmp_path / "unused.npz"),
                "--method",
                "krmd-K1",
                "--device",
                "cuda",
                "--output",
                str(tmp_path / "run.json"),
            ]
        )
        == 1
    )
    assert "--device cuda was asked for, but torch sees no CUDA device" in capsys.readouterr().err
