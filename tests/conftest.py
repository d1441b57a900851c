"""Shared test fixtures."""

import os
import secrets

import pytest
import torch

# Small tensors: one thread is fastest, and on a loaded machine extra threads only contend.
torch.set_num_threads(1)

# The longest files first: with `make test`'s workers (pytest-xdist, one file per worker at a time, in
# this order) the smoke pipeline starts at once, and the Slurm test, which mostly waits, runs beside it.
LONGEST_FIRST = ("test_pipeline_smoke.py", "test_slurm.py")


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


@pytest.fixture
def rng(request):
    """A fresh random generator per test; its seed is printed on failure (set TRUNCBACK_TEST_SEED
    to replay one)."""
    seed = int(os.environ.get("TRUNCBACK_TEST_SEED", secrets.randbits(31)))
    request.node.user_properties.append(("seed", seed))
    print(f"random seed: {seed} (replay with TRUNCBACK_TEST_SEED={seed})")
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def torch_state_restored():
    """The `features` command sets torch's threads and deterministic mode for its process; undone here."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
