"""One-shot Omniglot meta-learning (sec. 4.3, Table 4, Fig. 7 plots 1-3): meta-train lam = {lambda_l1,
lambda_l2, c, rho, gamma} with one hypergradient method through the shared harness, one sampled
task per hyper-iteration, recording the curves and the meta-test accuracy at Table 4's iteration
counts.

``python -m truncback omniglot --background bg.npz --evaluation ev.npz --settings '{...}'
--method krmd-K1 --iterations 15000 --milestones 5000 15000 --output r.json --hparams r.npz``

A checkpoint next to the output (``<output>.ckpt``) is written every ``checkpoint_every``
hyper-iterations; rerunning the same command after an interruption resumes from it and ends with
the same bytes as an uninterrupted run.
"""

import argparse
import json
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
from torch.utils._pytree import tree_map

from truncback.experiments.omniglot.evaluation import empty_curves, evaluate_point, evaluation_tasks
from truncback.experiments.omniglot.model import (
    Constraints,
    adapted_names,
    fixed_w0,
    flat_hyperparameters,
    one_shot_problem,
)
from truncback.experiments.omniglot.settings import OmniglotRun, OmniglotSettings
from truncback.experiments.omniglot.tasks import TaskSampler, meta_split
from truncback.runtime.command import add_run_arguments, run_command
from truncback.runtime.determinism import derive_seed, write_npz
from truncback.runtime.files import load_arrays
from truncback.runtime.harness import Objective, RunRecord, hyper_optimise

OMNIGLOT_KEYS = ("images", "labels")


@dataclass
class OmniglotResult:
    """The raw result of one meta-training run (read by Table 4 and Fig. 7)."""

    LAYOUT: ClassVar[str] = "truncback.omniglot/4"

    method: dict
    label: str
    display: str
    T: int
    iterations: int
    seed: int
    settings: dict
    run_settings: dict
    meta_train_classes: int
    meta_test_classes: int
    run: RunRecord
    evaluations: dict
    milestones: list
    final_hyperparameters: dict


def samplers(background: dict, evaluation: dict, settings: OmniglotSettings, task_seed: int, device="cpu"):
    """(meta-train sampler, meta-test sampler) over the split of the characters, tasks on ``device``."""
    train_pool, test_pool = meta_split(
        background, evaluation, settings.split, settings.meta_train_classes, settings.split_seed
    )
    dtype = getattr(torch, settings.dtype)
    return tuple(
        TaskSampler(pool, settings.ways, settings.query_per_class, settings.rotations, task_seed, dtype, device)
        for pool in (train_pool, test_pool)
    )


def learnt_values(hparams, constraints: Constraints) -> dict:
    """The learnt step size gamma and the regularisation weights rho_j by adapted tensor (a plain dict)."""
    return {
        "gamma": float(constraints.gamma(hparams)),
        "rho": dict(zip(adapted_names(hparams["c"]), constraints.rho(hparams).tolist())),
    }


def tasks_evaluated_at(done: int, settings: OmniglotSettings, run: OmniglotRun) -> int:
    """How many tasks the evaluation after ``done`` hyper-iterations scores (0: no evaluation then):
    the curve's test tasks and the validation tasks every ``eval_every``, at 0 and at the end, and
    all test tasks at a milestone. The one schedule of both the run and its time estimate."""
    milestone = done in run.milestones
    if not (done == 0 or done % settings.eval_every == 0 or done == run.iterations or milestone):
        return 0
    return (
        settings.test_tasks if milestone else min(settings.curve_tasks, settings.test_tasks)
    ) + settings.validation_tasks


class MetaTraining(Objective):
    """Hyper-iteration i meta-trains on tasks i * meta_batch, ..., (i + 1) * meta_batch - 1 of the
    meta-training stream; the curves get a point every ``eval_every`` hyper-iterations, at the end
    and at each milestone (where all test tasks are scored for Table 4)."""

    def __init__(self, train_sampler, tasks, settings: OmniglotSettings, run: OmniglotRun, w0: dict | None = None):
        self.train_sampler, self.tasks, self.settings, self.run = train_sampler, tasks, settings, run
        self.w0 = w0  # the fixed initial state (setting w0 = fixed), else None: w_0 = c
        self.T = run.horizon(settings)
        self.evaluations = empty_curves()
        self.milestones: list[dict] = []

    def problems(self, iteration: int) -> list:
        batch = self.settings.meta_batch
        return [
            one_shot_problem(
                self.train_sampler.task("train", iteration * batch + b),
                self.T,
                self.settings.batch_norm,
                self.settings.constraints(),
                compile=self.settings.compile,
                w0=self.w0,
            )
            for b in range(batch)
        ]

    def evaluate(self, done: int, hparams, log) -> int:
        tasks = tasks_evaluated_at(done, self.settings, self.run)
        if tasks:
            log(
                evaluate_point(
                    tree_map(torch.detach, hparams),
                    self.tasks,
                    self.T,
                    self.settings.batch_norm,
                    self.settings.constraints(),
                    self.settings.curve_tasks,
                    done,
                    self.evaluations,
                    self.milestones,
                    done in self.run.milestones,
                    self.w0,
                )
            )
        return tasks

    def tracked(self, hparams) -> dict:
        """gamma and the smallest and largest rho_j, over the run (the run's health)."""
        values = learnt_values(hparams, self.settings.constraints())
        return {
            "gamma": values["gamma"],
            "rho_min": min(values["rho"].values()),
            "rho_max": max(values["rho"].values()),
        }

    def state_dict(self) -> dict:
        return {"evaluations": self.evaluations, "milestones": self.milestones}

    def load_state_dict(self, state: dict) -> None:
        self.evaluations, self.milestones = state["evaluations"], state["milestones"]


def run_omniglot(
    background: dict,
    evaluation: dict,
    settings: OmniglotSettings,
    run: OmniglotRun,
    seed: int,
    log,
    checkpoint=None,
    stop_after: int | None = None,
    device="cpu",
) -> tuple:
    """Meta-trains lam with ``run`` on ``device``, with ``settings`` and the run's own over them;
    returns (result, timing, final hyperparameters). Every run starts from the same lam (within the
    bounds of its own settings) and sees the same sequence of tasks. The result records the shared
    ``settings`` and the run's own apart (``run_settings``), so the runs of one table share the former."""
    shared = settings
    run, settings = run.prepared(shared)
    task_seed = derive_seed("omniglot", 0, seed)
    train_sampler, test_sampler = samplers(background, evaluation, settings, task_seed, device)
    pools = (len(train_sampler.pool.members), len(test_sampler.pool.members))
    tasks = evaluation_tasks(train_sampler, test_sampler, settings.test_tasks, settings.validation_tasks)
    start = tree_map(lambda leaf: leaf.to(device), settings.initial_hyperparameters(task_seed))
    objective = MetaTraining(train_sampler, tasks, settings, run, fixed_w0(start, settings.w0))
    title = (
        f"omniglot {run.display(settings)} (T={objective.T}) seed={seed}: {settings.ways}-way one-shot, "
        f"{pools[0]} meta-train / {pools[1]} meta-test characters, {settings.filters} filters;"
    )
    outcome = hyper_optimise(
        objective,
        start,
        run.method,
        settings.loop(run.iterations),
        log=log,
        title=title,
        generator_seed=derive_seed("omniglot/method", 0, seed),
        checkpoint=checkpoint,
        stop_after=stop_after,
        fingerprint={
            "settings": asdict(settings),
            "seed": seed,
            "T": objective.T,
            "milestones": list(run.milestones),
            "classes": list(pools),
        },
    )
    final = outcome.hparams
    result = OmniglotResult(
        method=outcome.method,
        label=run.name(settings),
        display=run.display(settings),
        T=objective.T,
        iterations=run.iterations,
        seed=seed,
        settings=asdict(shared),
        run_settings=dict(run.settings),
        meta_train_classes=pools[0],
        meta_test_classes=pools[1],
        run=outcome.record,
        evaluations=objective.evaluations,
        milestones=objective.milestones,
        final_hyperparameters=learnt_values(final, settings.constraints()),
    )
    return result, outcome.timing, final


def load_omniglot(background_path, evaluation_path) -> tuple[dict, dict]:
    return load_arrays(background_path, OMNIGLOT_KEYS), load_arrays(evaluation_path, OMNIGLOT_KEYS)


def main(args) -> int:
    settings = OmniglotSettings.from_dict(json.loads(args.settings))
    run = OmniglotRun(
        args.method,
        args.iterations,
        tuple(args.milestones) or (args.iterations,),
        args.T,
        json.loads(args.run_settings),
    ).checked(settings)

    def meta_train(device, log, checkpoint):
        background, evaluation = load_omniglot(args.background, args.evaluation)
        result, timing, final = run_omniglot(
            background, evaluation, settings, run, args.seed, log, checkpoint, args.stop_after, device
        )
        return result, timing, lambda: write_npz(args.hparams, **flat_hyperparameters(final))

    return run_command(args, meta_train, inputs=[args.background, args.evaluation])


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "omniglot",
        help="one Omniglot meta-training run (Table 4, Fig. 7)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--background", required=True, help="prepared Omniglot .npz (meta-training side)")
    parser.add_argument("--evaluation", required=True, help="prepared Omniglot .npz (meta-test side)")
    parser.add_argument("--settings", default="{}", help="JSON object of OmniglotSettings fields")
    parser.add_argument(
        "--T",
        type=int,
        default=None,
        help="lower-level steps (default: the settings' T; 1 with full RMD: the short horizon)",
    )
    parser.add_argument(
        "--run-settings",
        default="{}",
        help="JSON object of OmniglotSettings fields for this run alone, over --settings (e.g. the short "
        "horizon's bound of gamma; not T)",
    )
    parser.add_argument("--iterations", type=int, required=True, help="hyper-iterations")
    parser.add_argument(
        "--milestones",
        type=int,
        nargs="*",
        default=[],
        help="hyper-iteration counts whose test accuracy goes into Table 4 (default: the last)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed index (tasks and initial lam are derived from it)")
    parser.add_argument("--hparams", required=True, help="final hyperparameters (.npz)")
    add_run_arguments(parser)
    parser.set_defaults(run=main)
