"""Several trials of one (dataset, method) in one job: each trial is the run ``task-interaction``
makes (``run.run_task_interaction``), with its own subsets, lambda, optimiser, early stopping and
result file, and the trials' hyper-optimisations run as one batched computation
(``runtime.batched``: every trial's hypergradient at once, each trial's numbers its run's up to
floating-point rounding). A method whose batched hypergradient would mix the trials
(``hypergrad.batched.MEMBERWISE`` lacks it: AID-CG, UFOM) runs them one after the other instead.

``python -m truncback task-interaction-trials --train f_train.npz --test f_test.npz --dataset cifar10 --method krmd-K5 --trials 0 1 2 --exact-trials 1 --output t0.json t1.json t2.json``
"""

import argparse
import json
from dataclasses import asdict

from truncback.experiments.task_interaction.run import (
    EarlyStopped,
    load_features,
    prepare_trial,
    run_task_interaction,
    trial_loop,
    trial_result,
)
from truncback.experiments.task_interaction.settings import TaskInteractionSettings
from truncback.hypergrad import resolve
from truncback.hypergrad.batched import MEMBERWISE
from truncback.runtime.batched import hyper_optimise_batched
from truncback.runtime.command import add_run_arguments, run_batch_command


def run_trials(
    train,
    test,
    dataset: str,
    settings: TaskInteractionSettings,
    method,
    trials: list,
    exact_trials: int,
    log,
    device="cpu",
    checkpoint=None,
    stop_after=None,
) -> list:
    """``method`` on each of ``trials`` of ``dataset`` (the trials below ``exact_trials`` compared with
    the exact hypergradient), batched where the method allows (module docstring). Returns one
    (result, timing) per trial, in order."""
    method = resolve(method, settings.T)
    if method["name"] not in MEMBERWISE:
        log(f"method {method['name']} mixes batched members: its {len(trials)} trials run one after the other")
        return [
            run_task_interaction(train, test, dataset, settings, method, trial, log, device, exact=trial < exact_trials)
            for trial in trials
        ]
    first = prepare_trial(train, test, dataset, settings, trials[0], device)
    prepared = [first] + [
        prepare_trial(train, test, dataset, settings, trial, device, first.problem.family) for trial in trials[1:]
    ]
    for one in prepared:
        log(one.title)
    objectives = [EarlyStopped(one.problem, settings, device) for one in prepared]
    runs = hyper_optimise_batched(
        objectives,
        [one.start for one in prepared],
        method,
        [trial_loop(settings, trial < exact_trials) for trial in trials],
        log=log,
        checkpoint=checkpoint,
        stop_after=stop_after,
        fingerprint={"settings": asdict(settings), "dataset": dataset, "trials": list(trials)},
        titles=[f"trial {trial}" for trial in trials],
    )
    return [
        (trial_result(one, objective, run, train, dataset, settings, trial, log), run.timing)
        for one, objective, run, trial in zip(prepared, objectives, runs, trials)
    ]


def main(args) -> int:
    settings = TaskInteractionSettings.from_dict(json.loads(args.settings))
    method = resolve(args.method, settings.T)
    if len(args.output) != len(args.trials):
        raise ValueError(f"{len(args.trials)} trial(s) but {len(args.output)} --output file(s): give one per trial")

    def run(device, log, checkpoint):
        train, test = load_features(args.train), load_features(args.test)
        return run_trials(
            train,
            test,
            args.dataset,
            settings,
            method,
            args.trials,
            args.exact_trials,
            log,
            device,
            checkpoint,
            args.stop_after,
        )

    return run_batch_command(args, run, inputs=[args.train, args.test])


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "task-interaction-trials",
        help="several task-interaction trials of one method, batched (Table 3, Fig. 6)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--train", required=True, help="features .npz of the training split (from `features`)")
    parser.add_argument("--test", required=True, help="features .npz of the test split")
    parser.add_argument("--dataset", required=True, help="dataset name, for the seed and the result (e.g. cifar10)")
    parser.add_argument("--settings", default="{}", help="JSON object of TaskInteractionSettings fields")
    parser.add_argument("--trials", type=int, nargs="+", required=True, help="trial indices (one result each)")
    parser.add_argument(
        "--exact-trials",
        type=int,
        default=1,
        help="the trials below this index compare h with the exact hypergradient (Fig. 6 draws trial 0)",
    )
    add_run_arguments(parser, several=True)
    parser.set_defaults(run=main)
