"""`data.image_size`: a number, null (the backbone's pretrained size) or auto (a size that
suits the originals of the training split)."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from imgclf.errors import UserError

# auto: how many training files (seeded sample) are measured, and the sizes it rounds to.
AUTO_SAMPLE = 2000
AUTO_MULTIPLE = 32
AUTO_SMALLEST = 32


def check_image_size_setting(setting) -> int | str | None:
    """`data.image_size`: a whole number >= 1, null or "auto" (one-line error otherwise)."""
    if setting is None or setting == "auto":
        return setting
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise UserError(f"data.image_size={setting!r}: must be a whole number >= 1, null or auto")
    return setting


def auto_image_size(
    median_short_side: float,
    largest: int,
    multiple: int = AUTO_MULTIPLE,
    smallest: int = AUTO_SMALLEST,
) -> int:
    """The input size `auto` picks: the originals' median shorter side rounded UP to a
    multiple of `multiple` (the only upscaling: a 72 px sprite trains at 96, not at the
    backbone's 224), at least `smallest` (the backbone's total stride) and never above
    `largest` (the backbone's pretrained size: larger photos are scaled down, as always)."""
    rounded = math.ceil(median_short_side / multiple) * multiple
    return int(min(max(rounded, smallest), max(largest, smallest)))


def sample_paths(paths: Sequence[Path], limit: int = AUTO_SAMPLE, seed: int = 0) -> list[Path]:
    """At most `limit` of `paths`, a seeded sample (all of them when there are fewer)."""
    if len(paths) <= limit:
        return list(paths)
    return random.Random(seed).sample(list(paths), limit)


def median_short_side(paths: Sequence[Path]) -> float | None:
    """The median of min(width, height) over `paths`, read from their headers (PIL decodes
    no pixels to report the size); files that cannot be opened are left out (the scan
    reports them). None when none can be read."""
    sides = []
    for path in paths:
        try:
            with Image.open(path) as image:
                sides.append(min(image.size))
        except (OSError, ValueError, Image.DecompressionBombError):
            continue
    return float(statistics.median(sides)) if sides else None
