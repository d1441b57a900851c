"""Where an experiment computes: ``--device`` and ``--threads``, which every experiment command takes."""

import torch

DEVICES = ("auto", "cpu", "cuda")


def select_device(name: str) -> torch.device:
    """``--device``: "auto" is CUDA where torch sees a GPU and the CPU otherwise."""
    if name not in DEVICES:
        raise ValueError(f"--device {name!r} is unknown; choose one of {list(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "--device cuda was asked for, but torch sees no CUDA device (torch "
            f"{torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); use --device cpu or auto"
        )
    return torch.device(name)


def add_compute_arguments(parser) -> None:
    """--threads and --device, which every experiment command takes."""
    parser.add_argument("--threads", type=int, default=1, help="torch threads (results depend on it)")
    parser.add_argument(
        "--device",
        default="auto",
        choices=DEVICES,
        help="where tensors live (auto: CUDA if available, else CPU; results differ between them)",
    )
