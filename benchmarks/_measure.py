"""Run a command in a fresh process and measure it: wall time and peak RSS of its process tree."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Measured:
    returncode: int
    wall_s: float
    peak_rss_bytes: int
    stderr: str


def run_measured(command: list[str], interval: float = 0.01) -> Measured:
    """Run ``command``, polling the RSS of it and its children every ``interval`` seconds."""
    start = time.perf_counter()
    process = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.Error:
            pass
        time.sleep(interval)
    wall = time.perf_counter() - start
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    return Measured(process.returncode, wall, peak, stderr)
