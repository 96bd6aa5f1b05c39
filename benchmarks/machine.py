"""What every benchmark records about the machine it ran on (figures are only comparable on one)."""

from __future__ import annotations

import contextlib
import os
import platform
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def describe_machine() -> dict[str, Any]:
    """CPU model, cores available to this process, RAM and OS, from ``/proc`` (Linux)."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024**2
    cores = len(os.sched_getaffinity(0))
    return {
        "description": f"{cores}-core {platform.machine()} VM, {memory} GiB RAM, no GPU",
        "cpu": cpu,
        "cores": cores,
        "memory_gib": memory,
        "os": platform.platform(),
        "gpu": None,
    }


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants now (0 once it has ended)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


@contextlib.contextmanager
def peak_tree_rss(pid: int, every_s: float = 0.05) -> Iterator[list[int]]:
    """Samples :func:`tree_rss` of ``pid`` while the block runs; yields ``[peak bytes]`` (final after it)."""
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(pid))
            time.sleep(every_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()
