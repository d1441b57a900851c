"""Omniglot's evaluation with its tasks batched (``omniglot.batched``) scores each task as
``model.evaluate`` does for it alone, up to float64 rounding."""

import math

import pytest
import torch

from test_omniglot_model import BOUNDS, random_task
from truncback.experiments.omniglot.batched import evaluate_tasks
from truncback.experiments.omniglot.model import evaluate, initial_hyperparameters


@pytest.mark.parametrize("batch_norm", [True, False])
def test_each_task_of_a_batched_evaluation_scores_as_it_does_alone(batch_norm):
    generator = torch.Generator().manual_seed(3)
    tasks = [random_task(generator) for _ in range(5)]
    lam = initial_hyperparameters(4, 5, batch_norm, 0.1, 0.2, BOUNDS, seed=1, dtype=torch.float64)
    alone = [evaluate(task, lam, 3, batch_norm, BOUNDS) for task in tasks]
    for batch in (1, 2, 5):  # a last batch smaller than the others included
        batched = evaluate_tasks(tasks, lam, 3, batch_norm, BOUNDS, batch)
        assert [accuracy for accuracy, _ in batched] == [accuracy for accuracy, _ in alone]
        for (_, loss), (_, reference) in zip(batched, alone):
            assert math.isclose(loss, reference, rel_tol=1e-10)
    assert len({loss for _, loss in alone}) == len(tasks)  # the tasks differ
