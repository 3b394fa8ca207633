"""Shared helpers for benchmark scripts: timing, peak memory, deterministic synthetic data (labelled synthetic)."""

from __future__ import annotations

import platform
import resource
import time
from contextlib import contextmanager

import numpy as np


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timer(label: str, results: dict):
    t0 = time.perf_counter()
    yield
    results[label] = time.perf_counter() - t0


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def synthetic_dem(n: int, seed: int = 0) -> np.ndarray:
    """SYNTHETIC smooth terrain (metres): sum of random sinusoids, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n].astype(np.float32) / n
    z = np.zeros((n, n), np.float32)
    for k in range(1, 7):
        a, b, ph = rng.uniform(1, 4 * k, 3)
        z += (800 / k) * np.sin(2 * np.pi * (a * x + b * y) + ph).astype(np.float32)
    return z + 3500


def machine() -> str:
    import os

    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}"
