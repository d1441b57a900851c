"""Data hypercleaning experiment (sec. 4.2.1, Table 2, Fig. 5): hyper-optimise the example weights
with K-RMD hypergradients and record the outer loss, the exact gradient norm and the final metrics.

``python -m truncback hypercleaning --data mnist.npz --settings '{...}' --K 5 --seed 0 --output r.json``
"""

import argparse
import json
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch

from truncback.experiments.hypercleaning_problem import (accuracy, cleaning_problem, corrupted_f1,
                                                         make_cleaning_data)
from truncback.determinism import configure_torch, derive_seed
from truncback.experiments.runs import ProgressLog, add_compute_arguments, load_arrays, select_device, write_json
from truncback.hypergrad import dynamics, krmd, rmd
from truncback.measure import peak_memory_mib, timed
from truncback.settings import Settings


@dataclass(frozen=True)
class HypercleaningSettings(Settings):
    """Sizes and optimiser settings; the README's Assumptions explain the choices."""

    section: ClassVar[str] = "hypercleaning"

    n_train: int = 5000
    n_val: int = 5000
    n_test: int = 10000
    corrupted_fraction: float = 0.5
    T: int = 100
    lr: float = 1.0
    weight_decay: float = 1e-3
    hyper_iterations: int = 1000
    hyper_optimizer: str = "adam"
    hyper_lr: float = 0.1
    exact_every: int = 10
    threshold: float = -3.0
    dtype: str = "float32"
    log_every: int = 10

    def check(self) -> None:
        if self.hyper_optimizer not in HYPER_OPTIMIZERS:
            raise ValueError(f"hyper_optimizer={self.hyper_optimizer!r}; choose one of {sorted(HYPER_OPTIMIZERS)}")


HYPER_OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


def final_metrics(data, problem, hparams, threshold) -> dict:
    """Test/validation accuracy and loss of w_T(lam), F1 of the corrupted-label detection."""
    W = dynamics.run(problem, hparams, dynamics.initial_state(problem, hparams), 0, problem.T)
    weights = torch.sigmoid(hparams)
    return {
        "test_acc": 100 * accuracy(W, data.x_test, data.y_test),
        "val_acc": 100 * accuracy(W, data.x_val, data.y_val),
        "val_loss": float(problem.outer(W, hparams)),
        "f1": corrupted_f1(hparams, data.corrupted, threshold),
        "mean_weight_corrupted": float(weights[data.corrupted].mean()),
        "mean_weight_clean": float(weights[~data.corrupted].mean()),
    }


def state_bytes(problem, hparams) -> int:
    state = dynamics.initial_state(problem, hparams.detach())
    return state.numel() * state.element_size()


def run_hypercleaning(images, labels, settings: HypercleaningSettings, K: int, seed: int, log,
                      device="cpu") -> dict:
    """One hyper-optimisation run with K-RMD (K = T is full RMD) on ``device``."""
    dtype = getattr(torch, settings.dtype)
    split_seed = derive_seed("hypercleaning", 0, seed)  # the same split and corruption for every K
    data = make_cleaning_data(images, labels, settings.n_train, settings.n_val, settings.n_test,
                              settings.corrupted_fraction, split_seed, dtype=dtype, device=device)
    problem = cleaning_problem(data, settings.T, settings.lr, settings.weight_decay)
    hparams = torch.zeros(settings.n_train, dtype=dtype, device=device, requires_grad=True)
    optimizer = HYPER_OPTIMIZERS[settings.hyper_optimizer]([hparams], lr=settings.hyper_lr)
    baseline = final_metrics(data, problem, hparams.detach(), settings.threshold)
    log(f"hypercleaning K={K} seed={seed}: {settings.n_train} train / {settings.n_val} val / "
        f"{settings.n_test} test, T={settings.T}, {settings.hyper_iterations} hyper-iterations; "
        f"no-cleaning baseline test acc {baseline['test_acc']:.2f}")
    krmd(cleaning_problem(data, 1, settings.lr, settings.weight_decay), hparams.detach(), 1)
    curve = {"iteration": [], "outer_loss": []}
    exact = {"iteration": [], "grad_norm": [], "cosine": []}
    seconds = []
    for iteration in range(settings.hyper_iterations):
        lam = hparams.detach().clone()  # the optimiser updates hparams in place
        if iteration == 0:  # profiled once for its memory; the profiler's overhead is kept out of the timing
            (h, info), peak_mib = peak_memory_mib(krmd, problem, lam, K, return_info=True)
        else:
            (h, info), elapsed = timed(krmd, problem, lam, K, return_info=True)
            seconds.append(elapsed)
        optimizer.zero_grad()
        hparams.grad = h
        optimizer.step()
        curve["iteration"].append(iteration)
        curve["outer_loss"].append(info.outer_loss)
        if iteration % settings.exact_every == 0 or iteration == settings.hyper_iterations - 1:
            true_gradient = h if K == settings.T else rmd(problem, lam)
            norm = float(true_gradient.norm())
            exact["iteration"].append(iteration)
            exact["grad_norm"].append(norm)
            exact["cosine"].append(float(h @ true_gradient) / max(norm * float(h.norm()), 1e-300))
        if iteration % settings.log_every == 0 or iteration == settings.hyper_iterations - 1:
            log(f"  iter {iteration:5d}  val loss {info.outer_loss:.4f}  "
                f"{sum(seconds) / max(len(seconds), 1):.3f} s/iter")
    final = final_metrics(data, problem, hparams.detach(), settings.threshold)
    log(f"done: test acc {final['test_acc']:.2f}, val loss {final['val_loss']:.4f}, F1 {final['f1']:.3f}")
    return {
        "experiment": "hypercleaning", "K": K, "seed": seed, "settings": asdict(settings),
        "curve": curve, "exact": exact, "final": final, "baseline": baseline,
        "measured": {"seconds_per_iteration": sum(seconds) / max(len(seconds), 1),
                     "hypergradient_peak_mib": peak_mib, "states_held": info.states_held,
                     "state_mib": info.states_held * state_bytes(problem, hparams) / 2 ** 20},
    }


def main(args) -> int:
    settings = HypercleaningSettings.from_dict(json.loads(args.settings))
    if not 0 <= args.K <= settings.T:
        raise ValueError(f"--K {args.K} must lie in [0, T={settings.T}]")
    configure_torch(args.threads)
    device = select_device(args.device)
    arrays = load_arrays(args.data, ("images", "labels"))
    with ProgressLog(args.log) as log:
        result = run_hypercleaning(arrays["images"], arrays["labels"], settings, args.K, args.seed, log, device)
    write_json(args.output, result)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("hypercleaning", help="one data-hypercleaning run (Table 2, Fig. 5)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="prepared MNIST .npz (images uint8 [n,28,28], labels)")
    parser.add_argument("--settings", default="{}", help="JSON object of HypercleaningSettings fields")
    parser.add_argument("--K", type=int, required=True, help="truncation depth (K = T: full RMD)")
    parser.add_argument("--seed", type=int, default=0, help="seed index (the split is derived from it)")
    add_compute_arguments(parser)
    parser.add_argument("--output", required=True, help="result JSON")
    parser.add_argument("--log", help="also write the progress lines to this file")
    parser.set_defaults(run=main)
