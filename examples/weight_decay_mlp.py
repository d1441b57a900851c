"""Tune a per-parameter weight decay of an nn.Module MLP by hypergradient descent (Shaban et al. 2019).

Lower level: T steps of gradient descent on the training loss plus sum_i exp(lam_i) w_i^2 (lam: one log
coefficient per weight). Upper level: the validation loss after those T steps. The hypergradient is
K-RMD's (truncated back-propagation); at the start it is checked against autograd through the unrolled loop (exact).

    python examples/weight_decay_mlp.py                 # small: seconds on a CPU
    python examples/weight_decay_mlp.py --size realistic [--mnist DIR]

Data: MNIST's test set from DIR (t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; default
../shared/datasets/mnist beside the repository) where it exists, else a synthetic stand-in.
"""

import argparse
import gzip
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.functional import cross_entropy

from truncback.hypergrad import hypergradient, module_problem

SIZES = {
    "small": {"n": 200, "hidden": 16, "T": 10, "K": 3, "iterations": 10},
    "realistic": {"n": 2000, "hidden": 64, "T": 50, "K": 10, "iterations": 50},
}
DEFAULT_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist"


def load_digits(folder: Path, count: int, generator: torch.Generator):
    """2 * count MNIST test digits (flattened, in [0, 1]) and labels, or synthetic ones if absent."""
    images, labels = folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz"
    if images.is_file() and labels.is_file():
        x = np.frombuffer(gzip.open(images).read(), np.uint8, offset=16).reshape(-1, 784) / 255.0
        y = np.frombuffer(gzip.open(labels).read(), np.uint8, offset=8)
        order = torch.randperm(len(y), generator=generator)[: 2 * count]
        return torch.tensor(x[order], dtype=torch.float32), torch.tensor(y[order], dtype=torch.int64), "MNIST"
    centres = torch.randn(10, 784, generator=generator)
    y = torch.randint(0, 10, (2 * count,), generator=generator)
    return centres[y] + 2.0 * torch.randn(2 * count, 784, generator=generator), y, "synthetic"


def run(size: str = "small", mnist: Path = DEFAULT_MNIST, seed: int = 0) -> dict:
    settings = SIZES[size]
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x, y, source = load_digits(Path(mnist), settings["n"], generator)
    (x_train, x_val), (y_train, y_val) = x.chunk(2), y.chunk(2)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, settings["hidden"]), torch.nn.ReLU(), torch.nn.Linear(settings["hidden"], 10)
    )

    def inner(net, lam, x, y):
        decay = sum((torch.exp(lam[name]) * w**2).sum() for name, w in net.params.items())
        return cross_entropy(net(x), y) + decay

    problem = module_problem(
        model,
        inner,
        lambda net, lam: cross_entropy(net(x_val), y_val),
        lr=0.5,
        T=settings["T"],
        data=(x_train, y_train),
    )
    lam = {name: torch.full_like(p, -2.0).requires_grad_() for name, p in model.named_parameters()}
    values = {name: value.detach() for name, value in lam.items()}  # the hyperparameters' current values
    exact = hypergradient(problem, values, {"name": "unrolled"})  # autograd through the unrolled loop
    full_depth = hypergradient(problem, values, {"name": "krmd", "K": settings["T"]})  # K = T: full RMD's value
    agreement = max(float((exact[n] - full_depth[n]).abs().max() / exact[n].abs().max()) for n in exact)
    optimizer = torch.optim.Adam(lam.values(), lr=0.1)
    losses, start = [], time.perf_counter()
    for _ in range(settings["iterations"]):
        h, info = hypergradient(problem, values, {"name": "krmd", "K": settings["K"]}, return_info=True)
        losses.append(info.outer_loss)
        for name, value in lam.items():
            value.grad = h[name]
        optimizer.step()
    return {
        "data": source,
        "krmd_K_equals_T_vs_unrolled": agreement,
        "first_val_loss": losses[0],
        "last_val_loss": losses[-1],
        "seconds": time.perf_counter() - start,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--mnist", type=Path, default=DEFAULT_MNIST, help="folder with MNIST's t10k files")
    result = run(**vars(parser.parse_args()))
    print(
        f"{result['data']}: K-RMD at K = T against autograd through the unrolled loop, largest relative difference {result['krmd_K_equals_T_vs_unrolled']:.1e}; "
        f"validation loss {result['first_val_loss']:.4f} -> {result['last_val_loss']:.4f} in {result['seconds']:.1f} s"
    )
