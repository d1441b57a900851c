"""One-shot Omniglot tasks (sec. 4.3): the meta-train / meta-test split of the characters and the
sampling of a k-way task with its training set S (one drawing per class) and validation set Q
(``query_per_class`` further drawings per class).

Sampling is counter-based: task ``index`` of stream ``stream`` is drawn from a generator seeded by
(seed, stream, index) alone, so a run resumed from a checkpoint draws exactly the tasks an
uninterrupted run draws, every method sees the same sequence of meta-training tasks, and the
evaluation tasks are the same fixed sets for every method and every evaluation.
"""

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

STREAMS = {"train": 0, "validation": 1, "test": 2, "depth": 3}
SPLITS = ("pooled", "files")


@dataclass(frozen=True)
class CharacterPool:
    """The drawings of a set of character classes: ``images`` float [N, 28, 28] with strokes 1 and
    background 0, and ``members[c]`` the indices into ``images`` of class c's drawings."""

    images: np.ndarray
    members: tuple

    def __post_init__(self):
        if not self.members:
            raise ValueError("a character pool needs at least one class, got none")


@dataclass(frozen=True)
class Task:
    """A k-way task: S = (x_train, y_train) with one example per class, Q = (x_query, y_query)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_query: torch.Tensor
    y_query: torch.Tensor


def strokes_as_ones(images: np.ndarray) -> np.ndarray:
    """uint8 Omniglot images (white 255 background, black strokes) -> float32 in [0, 1] with
    strokes 1, as MAML's data loader does (``1 - image / 255``)."""
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"Omniglot images must be uint8 [N, H, W], got {images.dtype} {images.shape}")
    return (1.0 - images.astype(np.float32) / 255.0).astype(np.float32)


def _classes(arrays: dict) -> list[np.ndarray]:
    """Indices of each class's drawings, classes ordered by their label."""
    labels = np.asarray(arrays["labels"])
    if len(labels) != len(arrays["images"]):
        raise ValueError(f"{len(arrays['images'])} images but {len(labels)} labels")
    order = np.argsort(labels, kind="stable")
    boundaries = np.flatnonzero(np.diff(labels[order])) + 1
    return np.split(order, boundaries)


def _drawings(images: np.ndarray, members) -> frozenset:
    """What a class is, whatever file it came from: the digests of its drawings' pixels."""
    return frozenset(hashlib.sha256(images[index].tobytes()).hexdigest() for index in members)


def without_shared(images: list, classes: list) -> list:
    """The second file's classes that are not also in the first (the same drawings): Omniglot's small1
    and small2 background subsets share whole alphabets (Greek and Latin), and a character that
    meta-trains must not also meta-test."""
    seen = {_drawings(images[0], members) for members in classes[0]}
    return [members for members in classes[1] if _drawings(images[1], members) not in seen]


def meta_split(
    background: dict, evaluation: dict, split: str, meta_train_classes: int, split_seed: int
) -> tuple[CharacterPool, CharacterPool]:
    """(meta-train pool, meta-test pool) from the two prepared Omniglot files.

    ``split="pooled"``: the characters of both files are pooled and shuffled with ``split_seed``;
    the first ``meta_train_classes`` (1200 in Vinyals et al. 2016 and MAML) are for meta-training
    and the rest for meta-testing. ``split="files"``: the first file is the meta-training set and
    the second the meta-test set (the quick scale: images_background_small1 / small2). Either way a
    character of the second file that the first also holds (the same drawings) is left out, so no
    character is on both sides.
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is unknown; choose one of {SPLITS}")
    images = [strokes_as_ones(np.asarray(arrays["images"])) for arrays in (background, evaluation)]
    classes = [_classes(arrays) for arrays in (background, evaluation)]
    classes[1] = without_shared(images, classes)
    if split == "files":
        return CharacterPool(images[0], tuple(classes[0])), CharacterPool(images[1], tuple(classes[1]))
    offset = len(images[0])
    pooled = classes[0] + [members + offset for members in classes[1]]
    if not 0 < meta_train_classes < len(pooled):
        raise ValueError(
            f"meta_train_classes={meta_train_classes} must lie strictly between 0 and "
            f"the {len(pooled)} characters of both files"
        )
    order = np.random.default_rng(split_seed).permutation(len(pooled))
    all_images = np.concatenate(images)
    train = tuple(pooled[i] for i in order[:meta_train_classes])
    test = tuple(pooled[i] for i in order[meta_train_classes:])
    return CharacterPool(all_images, train), CharacterPool(all_images, test)


@dataclass(frozen=True)
class TaskSampler:
    """k-way one-shot tasks from a pool; with ``rotations`` each sampled class is rotated by a
    random multiple of 90 degrees (the same rotation for all its drawings), as MAML does."""

    pool: CharacterPool
    ways: int
    query_per_class: int
    rotations: bool
    seed: int
    dtype: torch.dtype = torch.float32
    device: torch.device | str = "cpu"

    def __post_init__(self):
        if not 2 <= self.ways <= len(self.pool.members):
            raise ValueError(f"ways={self.ways} must lie in [2, {len(self.pool.members)}] (the pool's classes)")
        if self.query_per_class < 1:
            raise ValueError(f"query_per_class={self.query_per_class} must be at least 1")
        fewest = min(len(members) for members in self.pool.members)
        if 1 + self.query_per_class > fewest:
            raise ValueError(
                f"query_per_class={self.query_per_class}: a class has only {fewest} drawings, "
                f"fewer than the 1 + {self.query_per_class} a task needs"
            )

    def task(self, stream: str, index: int) -> Task:
        """Task ``index`` of ``stream`` ("train", "validation", "test" or "depth")."""
        if stream not in STREAMS:
            raise ValueError(f"stream={stream!r} is unknown; choose one of {sorted(STREAMS)}")
        rng = np.random.default_rng([self.seed, STREAMS[stream], index])
        chosen = rng.choice(len(self.pool.members), size=self.ways, replace=False)
        train, query = [], []
        for members in (self.pool.members[c] for c in chosen):
            drawings = self.pool.images[rng.choice(members, size=1 + self.query_per_class, replace=False)]
            if self.rotations:
                drawings = np.rot90(drawings, k=int(rng.integers(4)), axes=(1, 2))
            train.append(drawings[:1])
            query.append(drawings[1:])
        labels = np.arange(self.ways)
        return Task(
            x_train=self._tensor(np.concatenate(train)),
            y_train=torch.from_numpy(labels.copy()).to(self.device),
            x_query=self._tensor(np.concatenate(query)),
            y_query=torch.from_numpy(np.repeat(labels, self.query_per_class)).to(self.device),
        )

    def tasks(self, stream: str, count: int) -> list[Task]:
        return [self.task(stream, index) for index in range(count)]

    def _tensor(self, images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(images)[:, None]).to(device=self.device, dtype=self.dtype)
