"""A client of an exported model: model.json's preprocessing written from its description."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


def preprocess(path: Path, card: dict) -> np.ndarray:
    """model.json's preprocessing, written from its description: PIL and numpy only."""
    steps, size = card["preprocessing"], card["input"]["height"]
    target = steps["resize"]["short_side"]
    image = Image.open(path)
    if image.format == "JPEG":
        width, height = image.size
        scales = [s for s in (8, 4, 2) if min(-(-width // s), -(-height // s)) >= target]
        if scales:
            image.draft("RGB", (width // scales[0], height // scales[0]))
    image = ImageOps.exif_transpose(image)
    if image.mode == "RGBA":  # transparency composited onto white
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image)
    image = image.convert("RGB")
    width, height = image.size
    short = min(width, height)
    long_side = math.floor(max(width, height) * target / short + 0.5)
    new = (target, long_side) if width <= height else (long_side, target)
    resample = getattr(Image.Resampling, steps["resize"]["interpolation"].upper())
    pixels = np.asarray(image.resize(new, resample=resample))
    top, left = (pixels.shape[0] - size) // 2, (pixels.shape[1] - size) // 2
    crop = pixels[top : top + size, left : left + size].astype(np.float32) / 255.0
    return crop.transpose(2, 0, 1)
