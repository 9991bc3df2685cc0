"""Wall time and peak resident memory of a step, sampled in a background thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psutil


@dataclass
class StepCost:
    seconds: float = 0.0
    peak_rss_bytes: int = 0


@contextmanager
def measure(interval: float = 0.01) -> Iterator[StepCost]:
    """Time the block and record the highest RSS of this process seen while it ran."""
    process = psutil.Process()
    cost = StepCost(peak_rss_bytes=process.memory_info().rss)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(interval):
            cost.peak_rss_bytes = max(cost.peak_rss_bytes, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        yield cost
    finally:
        cost.seconds = time.perf_counter() - start
        done.set()
        sampler.join()
        cost.peak_rss_bytes = max(cost.peak_rss_bytes, process.memory_info().rss)
