"""Task interaction's subsets (sec. 4.2.2): the training and validation examples a trial draws per
class from the training split, by a seed of its own (the same draw for every method). Kept apart from
the problem so that the features job, which computes features only for the drawn images, depends on
the draw and not on the hypergradient engine."""

import numpy as np

from truncback.runtime.determinism import derive_seed


def per_class_split(labels: np.ndarray, train_per_class: int, val_per_class: int, seed: int):
    """Disjoint index arrays (train, val) with exactly the given number of examples of every class,
    drawn at random from ``labels``."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    train, val = [], []
    for label in classes:
        members = rng.permutation(np.flatnonzero(labels == label))
        if len(members) < train_per_class + val_per_class:
            raise ValueError(
                f"class {label} has {len(members)} examples, fewer than train_per_class + "
                f"val_per_class = {train_per_class + val_per_class}"
            )
        train.append(members[:train_per_class])
        val.append(members[train_per_class : train_per_class + val_per_class])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def trial_seed(dataset: str, trial: int) -> int:
    """The seed of trial ``trial``'s subsets of ``dataset`` (the same draw for every method)."""
    return derive_seed(f"task_interaction/{dataset}", 0, trial)


def drawn_rows(labels: np.ndarray, dataset: str, trials: int, train_per_class: int, val_per_class: int) -> np.ndarray:
    """The rows of ``dataset``'s training split that trials 0, ..., trials - 1 draw into their training
    and validation subsets (``per_class_split`` at ``trial_seed``), sorted: the only training images
    whose features the runs read."""
    draws = [
        np.concatenate(per_class_split(labels, train_per_class, val_per_class, trial_seed(dataset, trial)))
        for trial in range(trials)
    ]
    return np.unique(np.concatenate(draws)) if draws else np.zeros(0, np.int64)
