"""Wall time and peak memory of one call, on CPU or CUDA.

Peak memory is the largest amount of memory the call's own tensors held at once, beyond what was
allocated before it. On CPU it is read from the allocation and free events that ``torch.profiler``
records with ``profile_memory=True`` (the running sum of their sizes, in time order), so it is
deterministic for deterministic code; on CUDA it is the caching allocator's peak
(``torch.cuda.max_memory_allocated``). A call is on CUDA when any tensor among its arguments is.
Time is measured on a separate call without the profiler.
"""

import os
import platform
import time

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils._pytree import tree_leaves


def on_cuda(*args, **kwargs) -> bool:
    """Whether any tensor in the (nested) arguments lives on a CUDA device."""
    return any(isinstance(leaf, torch.Tensor) and leaf.is_cuda for leaf in tree_leaves((args, kwargs)))


def states_mib(states_held: int, state) -> float:
    """MiB of ``states_held`` lower-level states shaped like ``state`` (Table 1's M times the states kept)."""
    return states_held * sum(x.numel() * x.element_size() for x in tree_leaves(state)) / 2**20


def timed(function, *args, **kwargs):
    """(function(*args, **kwargs), wall seconds)."""
    cuda = on_cuda(*args, **kwargs)
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = function(*args, **kwargs)
    if cuda:
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def peak_memory_mib(function, *args, **kwargs):
    """(function(*args, **kwargs), peak MiB its tensors held at once)."""
    if on_cuda(*args, **kwargs):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
        result = function(*args, **kwargs)
        torch.cuda.synchronize()
        return result, (torch.cuda.max_memory_allocated() - baseline) / 2**20
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        result = function(*args, **kwargs)
    events = sorted(
        (event for event in profiler.profiler.kineto_results.events() if event.name() == "[memory]"),
        key=lambda event: event.start_ns(),
    )
    current = peak = 0
    for event in events:
        current += event.nbytes()
        peak = max(peak, current)
    return result, peak / 2**20


def hardware() -> str:
    """The machine in one line: architecture, CPU cores, GPU, Python and torch versions."""
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{platform.machine()}, {os.cpu_count()} CPU cores, {device}; Python {platform.python_version()}, "
        f"torch {torch.__version__}"
    )
