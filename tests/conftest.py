"""Shared test fixtures."""

import os
import secrets
import zlib

import pytest
import torch

# Small tensors: one thread is fastest, and on a loaded machine extra threads only contend.
torch.set_num_threads(1)

# The longest files first: with `make test`'s workers (pytest-xdist, one file per worker at a time, in
# this order) the smoke pipeline starts at once, and the Slurm test, which mostly waits, runs beside it.
LONGEST_FIRST = ("test_pipeline_smoke.py", "test_slurm.py")


# The session's random seed: random unless given (random seeds found a false claim once); set before
# pytest-xdist starts its workers, which inherit it, so one value replays the whole session.
SEED_VARIABLE = "TRUNCBACK_TEST_SEED"


def pytest_configure(config):
    if not hasattr(config, "workerinput") and SEED_VARIABLE not in os.environ:
        os.environ[SEED_VARIABLE] = str(secrets.randbits(31))


def pytest_report_header(config):
    seed = os.environ[SEED_VARIABLE]
    return f"random seed of the session: {seed} (replay with {SEED_VARIABLE}={seed} make test)"


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


@pytest.fixture
def rng(request):
    """A random generator per test, seeded from the session's seed and the test's name, so that one
    variable replays every test's draws (the seed is in the header, and printed on failure)."""
    seed = zlib.crc32(f"{os.environ[SEED_VARIABLE]}:{request.node.nodeid}".encode()) & 0x7FFFFFFF
    request.node.user_properties.append(("seed", seed))
    print(
        f"random seed of this test: {seed}; of the session: {os.environ[SEED_VARIABLE]} (replay with "
        f"{SEED_VARIABLE}={os.environ[SEED_VARIABLE]})"
    )
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def torch_state_restored():
    """The `features` command sets torch's threads and deterministic mode for its process; undone here."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


@pytest.fixture
def fresh_fast_path(monkeypatch):
    """``truncback.hypergrad.fast_path`` as if newly imported (no compiled function, strict wrapper or
    warning given yet), inductor's caches off (a graph taken from the cache would not meet the oneDNN
    pass), warnings shown every time."""
    import warnings

    from truncback.hypergrad import fast_path

    monkeypatch.setattr(fast_path, "_COMPILED", {})
    monkeypatch.setattr(fast_path, "_STRICTLY", {})
    monkeypatch.setattr(fast_path, "_WARNED", set())
    with torch._inductor.config.patch(force_disable_caches=True), warnings.catch_warnings():
        warnings.simplefilter("always")
        yield fast_path
