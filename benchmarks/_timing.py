"""Timing shared by the benchmark scripts (imported as a sibling module)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable


def best_time(call: Callable[[], object], repeat: int = 10, min_total: float = 1.0, *,
              min_sample: float = 0.0) -> float:
    """Best seconds per call over at least ``repeat`` samples and ``min_total`` seconds.

    Sampling until ``min_total`` seconds have passed lets the best sample escape the stalls
    of a machine shared with other jobs. Calls faster than ``min_sample`` seconds are looped
    so that each sample lasts at least that long. The garbage collector is off while timing
    (as in ``timeit``).
    """
    start = time.perf_counter()
    call()  # warm-up, also sizes the loop
    number = max(1, int(min_sample / max(time.perf_counter() - start, 1e-9)))
    best, samples, begin = float("inf"), 0, time.perf_counter()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while samples < repeat or time.perf_counter() - begin < min_total:
            start = time.perf_counter()
            for _ in range(number):
                call()
            best = min(best, (time.perf_counter() - start) / number)
            samples += 1
    finally:
        if gc_was_enabled:
            gc.enable()
    return best
