"""How many DataLoader worker processes a loader gets: `data.num_workers`, a number or auto."""

from __future__ import annotations

import os

from imgclf.errors import UserError

# auto: workers only for loaders of at least this many images, at most this many workers.
AUTO_MIN_IMAGES = 1000
AUTO_MAX_WORKERS = 8


def available_cpus() -> int:
    """The cores this process may run on (a container's or `taskset`'s limit, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def check_num_workers(setting) -> int | str:
    """`data.num_workers`: a whole number >= 0 or "auto" (one-line error otherwise)."""
    if setting == "auto":
        return setting
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 0:
        raise UserError(f"data.num_workers={setting!r}: must be a whole number >= 0 or auto")
    return setting


def loader_workers(setting: int | str, n_images: int, cpus: int | None = None) -> int:
    """The workers of a loader over `n_images` images. A number is taken as it is. `auto`:
    none below AUTO_MIN_IMAGES images, else one per available core (at most
    AUTO_MAX_WORKERS).

    Why no workers for small loaders: a loader that is not persistent starts its workers
    anew every epoch, and while they live each memory page the training process writes is
    copied (fork's copy-on-write). Whole `imgclf train` runs on 2 cores, no workers against
    2: 1.5x faster on 120 training images, 1.35x on 444, but 1.1x slower on 5,000, where
    decoding beside the model pays (docs/benchmarks.md, speed knobs)."""
    if setting != "auto":
        return int(setting)
    if n_images < AUTO_MIN_IMAGES:
        return 0
    return min(available_cpus() if cpus is None else cpus, AUTO_MAX_WORKERS)
