"""Wall time and peak memory of one call, on CPU or CUDA.

CPU: the growth of the process's peak resident set size (``ru_maxrss``) during the call, which is
the memory the call needed beyond what the process had already touched; call something of the same
kind once beforehand so one-off library start-up is not counted. CUDA: the caching allocator's peak
(``torch.cuda.max_memory_allocated``) during the call, minus what was allocated before it.
"""

import resource
import time
from dataclasses import dataclass

import torch


@dataclass
class Measurement:
    seconds: float
    peak_mib: float


def measure(function, *args, cuda: bool = False, **kwargs):
    """Runs ``function(*args, **kwargs)``; returns (its result, Measurement)."""
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
    else:
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    result = function(*args, **kwargs)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if cuda:
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return result, Measurement(seconds=seconds, peak_mib=max(0, peak - baseline) / 2 ** 20)
