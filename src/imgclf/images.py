"""Finding, checking and decoding image files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VERIFY_MODES = ("header", "full", "none")


def is_image_name(path: Path) -> bool:
    # Hidden files (.DS_Store, macOS ._foo resource forks) are never images.
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, sorted. Directory symlinks are not followed,
    so a symlink loop cannot hang the scan."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / name for name in filenames if is_image_name(Path(name))]
    return sorted(found)


def unreadable_reason(path: Path, mode: str = "header") -> str | None:
    """None if the file looks like a readable image, else a short reason.

    `header` reads only the header (fast: format and size), `full` decodes every pixel.
    """
    if mode == "none":
        return None
    try:
        if path.stat().st_size == 0:
            return "empty file"
        with Image.open(path) as image:
            width, height = image.size
            if mode == "full":
                image.load()
    except Exception as err:  # PIL raises many types for broken files
        return f"{type(err).__name__}: {err}".splitlines()[0][:200]
    if width < 1 or height < 1:
        return "zero-sized image"
    return None


def reduce_on_decode(image: Image.Image, min_side: int | None) -> None:
    """JPEG only: let the decoder scale down by 1/2, 1/4 or 1/8 (libjpeg's DCT scaling,
    much cheaper than decoding every pixel and resizing) as long as both sides stay at
    least `min_side`. Other formats, and `min_side=None`, decode at full size."""
    if min_side and image.format == "JPEG":
        image.draft("RGB", (min_side, min_side))


def load_rgb(path: Path, min_side: int | None = None) -> np.ndarray:
    """Decode to an HxWx3 uint8 array, applying the EXIF orientation as cameras intend.
    With `min_side`, JPEGs may decode at a reduced scale (see `reduce_on_decode`)."""
    with Image.open(path) as image:
        reduce_on_decode(image, min_side)
        image = ImageOps.exif_transpose(image)
        if image.mode != "RGB":
            image = image.convert("RGB")
        return np.asarray(image)
