"""The data settings checked before anything is built: one line for a value out of range.
Needs no torch (`imgclf predict` through the cached ONNX file checks them too)."""

from __future__ import annotations

from imgclf.data.images import VERIFY_MODES
from imgclf.errors import UserError

# The training augmentation presets (`data.augment`; see `transforms.train_transform`).
PRESETS = ("side_on", "top_down", "none")


def checked_settings(
    verify: str, augment: str, max_pixels, valid_pct: float, min_scale: float = 0.35
) -> int | None:
    """One-line errors for data settings out of range; returns max_pixels as an int."""
    if verify not in VERIFY_MODES:
        raise UserError(f"unknown data.verify {verify!r}: choose one of {', '.join(VERIFY_MODES)}")
    if augment not in PRESETS:
        raise UserError(f"unknown data.augment {augment!r}: choose one of {', '.join(PRESETS)}")
    if isinstance(max_pixels, float) and max_pixels.is_integer():
        max_pixels = int(max_pixels)  # data.max_pixels=1e8 on the command line
    if max_pixels is not None and not (
        isinstance(max_pixels, int) and not isinstance(max_pixels, bool) and max_pixels > 0
    ):
        raise UserError(f"data.max_pixels must be a positive integer or null, got {max_pixels!r}")
    if not 0.0 < valid_pct < 1.0:
        raise UserError(f"data.valid_pct must be between 0 and 1, got {valid_pct}")
    if not 0.0 < min_scale <= 1.0:  # the smallest crop's share of the image area
        raise UserError(f"data.min_scale must be above 0 and at most 1, got {min_scale}")
    return max_pixels
