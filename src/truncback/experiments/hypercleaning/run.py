"""One data-hypercleaning run (sec. 4.2.1): hyper-optimise the example weights lam with one
hypergradient method through the shared harness, recording the outer loss, the exact gradient norm
(Fig. 5) and the final metrics (Table 2).

``python -m truncback hypercleaning --data mnist.npz --settings '{...}' --method krmd-K5 --seed 0 --output r.json``
(``--hparams r.npz`` also keeps the final lam and which examples were corrupted: F1 at any threshold)

A killed run resumes from ``<output>.ckpt`` when the same command is run again.
"""

import argparse
import json
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch

from truncback.experiments.hypercleaning.problem import accuracy, cleaning_problem, corrupted_f1, make_cleaning_data
from truncback.experiments.hypercleaning.settings import HypercleaningSettings
from truncback.hypergrad import dynamics, resolve
from truncback.runtime.command import add_run_arguments, run_command
from truncback.runtime.determinism import derive_seed, write_npz
from truncback.runtime.files import load_arrays
from truncback.runtime.harness import Objective, RunRecord, hyper_optimise


@dataclass
class HypercleaningResult:
    """The raw result of one run (read by Table 2 and Fig. 5)."""

    LAYOUT: ClassVar[str] = "truncback.hypercleaning/3"

    method: dict
    label: str
    display: str
    seed: int
    settings: dict
    run: RunRecord
    final: dict
    baseline: dict


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


def cleaning_setup(images, labels, settings: HypercleaningSettings, seed: int, device="cpu") -> tuple:
    """What a run with ``settings`` and seed index ``seed`` hyper-optimises: (the data, the bilevel
    problem on them, the initial lam = 0), in ``settings.dtype`` on ``device``. The split and the
    corruption are derived from the seed alone, the same for every method. ``run_hypercleaning`` and
    the lower-level measurement of ``omniglot.stability`` both build the problem here."""
    dtype = getattr(torch, settings.dtype)
    data = make_cleaning_data(
        images,
        labels,
        settings.n_train,
        settings.n_val,
        settings.n_test,
        settings.corrupted_fraction,
        derive_seed("hypercleaning", 0, seed),
        dtype=dtype,
        device=device,
    )
    problem = cleaning_problem(
        data, settings.T, settings.lr, settings.weight_decay, settings.compile, settings.inner_loss
    )
    start = torch.zeros(settings.n_train, dtype=dtype, device=device)
    return data, problem, start


class Cleaning(Objective):
    """One fixed bilevel problem: every hyper-iteration uses the same training and validation data."""

    def __init__(self, problem):
        self.problem = problem

    def problems(self, iteration: int) -> list:
        return [self.problem]


def run_hypercleaning(
    images,
    labels,
    settings: HypercleaningSettings,
    method,
    seed: int,
    log,
    device="cpu",
    checkpoint=None,
    stop_after=None,
):
    """One hyper-optimisation with ``method`` (a spec) on ``device``; returns (result, timing, the
    final lam and the corruption mask as numpy arrays)."""
    method = resolve(method, settings.T)
    data, problem, start = cleaning_setup(images, labels, settings, seed, device)
    baseline = final_metrics(data, problem, start, settings.threshold)
    title = (
        f"hypercleaning seed={seed}: {settings.n_train} train / {settings.n_val} val / {settings.n_test} test, "
        f"T={settings.T}; no-cleaning test acc {baseline['test_acc']:.2f};"
    )
    run = hyper_optimise(
        Cleaning(problem),
        start,
        method,
        settings.loop(),
        log=log,
        title=title,
        generator_seed=derive_seed("hypercleaning/method", 0, seed),
        checkpoint=checkpoint,
        fingerprint={"settings": asdict(settings), "seed": seed},
        stop_after=stop_after,
    )
    final = final_metrics(data, problem, run.hparams, settings.threshold)
    log(f"done: test acc {final['test_acc']:.2f}, val loss {final['val_loss']:.4f}, F1 {final['f1']:.3f}")
    result = HypercleaningResult(
        method=run.method,
        label=run.label,
        display=run.display,
        seed=seed,
        settings=asdict(settings),
        run=run.record,
        final=final,
        baseline=baseline,
    )
    final_arrays = {"hparams": run.hparams.detach().cpu().numpy(), "corrupted": data.corrupted.cpu().numpy()}
    return result, run.timing, final_arrays


def main(args) -> int:
    settings = HypercleaningSettings.from_dict(json.loads(args.settings))
    method = resolve(args.method, settings.T)

    def run(device, log, checkpoint):
        arrays = load_arrays(args.data, ("images", "labels"))
        result, timing, final = run_hypercleaning(
            arrays["images"], arrays["labels"], settings, method, args.seed, log, device, checkpoint, args.stop_after
        )
        return result, timing, (lambda: write_npz(args.hparams, **final)) if args.hparams else None

    return run_command(args, run, inputs=[args.data])


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "hypercleaning",
        help="one data-hypercleaning run (Table 2, Fig. 5)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, help="prepared MNIST .npz (images uint8 [n,28,28], labels)")
    parser.add_argument("--settings", default="{}", help="JSON object of HypercleaningSettings fields")
    parser.add_argument("--seed", type=int, default=0, help="seed index (the split is derived from it)")
    parser.add_argument(
        "--hparams", help="also write the final lam and the corruption mask (.npz: hparams, corrupted) here"
    )
    add_run_arguments(parser)
    parser.set_defaults(run=main)
