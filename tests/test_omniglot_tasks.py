"""One-shot Omniglot tasks: the meta-train/meta-test split of the characters and task sampling."""

import numpy as np
import pytest
import torch

from truncback.experiments.omniglot.tasks import TaskSampler, meta_split, strokes_as_ones


def character_file(characters: int, drawings: int = 20, first_value: int = 0) -> dict:
    """Image i of character c is filled with the value first_value + c (so tests can tell characters
    apart), with a one-pixel mark at (0, 0) so rotations are visible."""
    values = np.repeat(np.arange(characters) + first_value, drawings).astype(np.uint8)
    images = np.broadcast_to(values[:, None, None], (len(values), 28, 28)).copy()
    images[:, 0, 0] = 255
    return {"images": images, "labels": np.repeat(np.arange(characters), drawings)}


def characters_of(pool) -> set:
    return {int(round(255 * (1 - pool.images[members[0], 5, 5]))) for members in pool.members}


def test_pooled_split_shuffles_the_characters_of_both_files_into_disjoint_sets():
    background, evaluation = character_file(30), character_file(20, first_value=100)
    train, test = meta_split(background, evaluation, "pooled", 35, split_seed=0)
    assert (len(train.members), len(test.members)) == (35, 15)
    train_ids, test_ids = characters_of(train), characters_of(test)
    assert not train_ids & test_ids
    assert train_ids | test_ids == set(range(30)) | set(range(100, 120))
    assert train_ids & set(range(100, 120)), "the evaluation file's characters are pooled too"
    again, _ = meta_split(background, evaluation, "pooled", 35, split_seed=0)
    assert characters_of(again) == train_ids
    other, _ = meta_split(background, evaluation, "pooled", 35, split_seed=1)
    assert characters_of(other) != train_ids


def test_files_split_keeps_the_files_apart():
    train, test = meta_split(character_file(10), character_file(12, first_value=50), "files", 0, split_seed=0)
    assert characters_of(train) == set(range(10))
    assert characters_of(test) == set(range(50, 62))


def test_split_errors_name_the_bad_value():
    with pytest.raises(ValueError, match="split='halves' is unknown"):
        meta_split(character_file(5), character_file(5, first_value=100), "halves", 3, 0)
    with pytest.raises(ValueError, match="meta_train_classes=10 must lie strictly between 0 and the 10"):
        meta_split(character_file(5), character_file(5, first_value=100), "pooled", 10, 0)
    with pytest.raises(ValueError, match="must be uint8"):
        strokes_as_ones(np.zeros((2, 28, 28), dtype=np.float32))


def test_a_task_has_one_training_drawing_per_class_and_its_query_drawings_from_the_same_classes():
    train, _ = meta_split(character_file(12), character_file(3, first_value=100), "files", 0, 0)
    sampler = TaskSampler(train, ways=5, query_per_class=3, rotations=True, seed=7)
    task = sampler.task("train", 4)
    assert task.x_train.shape == (5, 1, 28, 28) and task.x_query.shape == (15, 1, 28, 28)
    assert task.y_train.tolist() == [0, 1, 2, 3, 4]
    assert task.y_query.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]

    def centre(x):
        return torch.round(255 * (1 - x[:, 0, 5, 5])).long()

    train_classes = centre(task.x_train)
    assert len(set(train_classes.tolist())) == 5
    assert torch.equal(centre(task.x_query), train_classes.repeat_interleave(3))

    def corners(x):
        return [tuple(int(i) for i in torch.nonzero(image[0] == 0)[0]) for image in x]

    for label in range(5):
        marks = corners(task.x_train[label : label + 1]) + corners(task.x_query[task.y_query == label])
        assert len(set(marks)) == 1, "all drawings of a class share its rotation"


def test_tasks_depend_only_on_seed_stream_and_index():
    train, _ = meta_split(character_file(12), character_file(3, first_value=100), "files", 0, 0)
    sampler = TaskSampler(train, 5, 3, rotations=True, seed=7)
    same = TaskSampler(train, 5, 3, rotations=True, seed=7)
    first, again = sampler.task("train", 3), same.task("train", 3)
    assert torch.equal(first.x_train, again.x_train) and torch.equal(first.x_query, again.x_query)
    assert not torch.equal(first.x_query, sampler.task("validation", 3).x_query)
    assert not torch.equal(first.x_query, sampler.task("train", 4).x_query)


def test_sampler_errors_name_the_bad_value():
    train, _ = meta_split(character_file(4, drawings=5), character_file(3, first_value=100), "files", 0, 0)
    with pytest.raises(ValueError, match=r"ways=5 must lie in \[2, 4\]"):
        TaskSampler(train, 5, 3, False, 0)
    with pytest.raises(ValueError, match="query_per_class=5: a class has only 5 drawings"):
        TaskSampler(train, 3, 5, False, 0)
    with pytest.raises(ValueError, match="stream='meta' is unknown"):
        TaskSampler(train, 3, 2, False, 0).task("meta", 0)


@pytest.mark.parametrize("split", ["files", "pooled"])
def test_a_character_both_files_hold_never_meta_tests(split):
    """Omniglot's small1 and small2 share alphabets: the second file's copy of a character is left out."""
    background = character_file(10)
    evaluation = character_file(6, first_value=50)
    evaluation["images"][:20] = background["images"][40:60]  # the second file's first character is character 2
    train, test = meta_split(background, evaluation, split, 8, split_seed=0)
    assert characters_of(train) | characters_of(test) == set(range(10)) | set(range(51, 56))
    assert not characters_of(train) & characters_of(test)
