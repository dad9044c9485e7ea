"""Processes: whether one still runs (run-directory locks, leftover cache folders), SIGTERM
turned into a stop like Ctrl-C, and seeding a process's generators."""

from __future__ import annotations

import os
import signal
import threading


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine (one we may not signal counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Terminated(KeyboardInterrupt):
    """SIGTERM outside a fit (scan, LR finder, precompute), raised where Ctrl-C would be."""


def raise_terminated(signum, frame) -> None:
    raise Terminated


def install_sigterm_handler() -> None:
    """Make SIGTERM stop a command the way Ctrl-C does (outside a fit: at once; inside: by
    SaveOnInterrupt), instead of killing the process without a word."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, raise_terminated)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators, as Lightning's `seed_everything` does
    (with `workers=True`), for commands that run without Lightning."""
    import random

    import numpy as np
    import torch

    os.environ["PL_GLOBAL_SEED"] = str(seed)
    os.environ["PL_SEED_WORKERS"] = "1"
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
