"""Alternate two measurements (A, B, A, B, ...) and compare their medians; machine facts."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable

import torch


def alternate(a: Callable[[], float], b: Callable[[], float], rounds: int) -> dict:
    """Run `a` and `b` in turns, `rounds` times each; both return a rate (higher is better).

    Taking turns spreads slow drifts of the machine (other jobs, heat, caches) over both
    sides; the ratio of the medians then compares like with like. Per-round ratios (each
    A against the B right after it) show the spread.
    """
    rates_a, rates_b = [], []
    for _ in range(rounds):
        rates_a.append(a())
        rates_b.append(b())
    median_a, median_b = statistics.median(rates_a), statistics.median(rates_b)
    return {
        "a": median_a,
        "b": median_b,
        "ratio": median_a / median_b,
        "rounds": rounds,
        "a_rounds": rates_a,
        "b_rounds": rates_b,
        "round_ratios": [x / y for x, y in zip(rates_a, rates_b, strict=True)],
    }


class Clock:
    """Timestamps taken after each step; the rate counts steps after `warmup` only, so
    one-off costs (first-call allocations, Trainer set-up) stay out of the figure."""

    def __init__(self, warmup: int = 1) -> None:
        self.warmup = warmup
        self.stamps: list[float] = []

    def tick(self) -> None:
        self.stamps.append(time.perf_counter())

    def rate(self, items_per_step: int) -> float:
        timed = len(self.stamps) - self.warmup
        if timed < 1 or self.warmup < 1:
            raise ValueError(f"need at least {self.warmup + 1} steps, got {len(self.stamps)}")
        return timed * items_per_step / (self.stamps[-1] - self.stamps[self.warmup - 1])


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    import lightning
    import PIL
    import timm
    import torchvision

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "lightning": lightning.__version__,
        "timm": timm.__version__,
        "pillow": PIL.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cuda": torch.cuda.is_available(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
