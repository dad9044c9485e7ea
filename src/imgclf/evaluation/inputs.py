"""Which image files a prediction reads: a folder, one file, a glob or a list, and which of
them can be read. Needs no torch (`imgclf predict` through the cached ONNX file)."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from imgclf.data.images import is_image_name, list_images, unreadable_reason
from imgclf.errors import UserError


def is_one_file(source) -> bool:
    """Whether `source` (an `input=` value) names one existing file, not a folder, a glob
    or a list; `~` and environment variables expanded as `expand_input` does."""
    if not isinstance(source, (str, Path, int, float)):
        return False
    return Path(os.path.expandvars(os.path.expanduser(str(source)))).is_file()


def expand_input(source) -> list[Path]:
    """The image files `source` names: a folder (searched recursively), one image file, a
    glob pattern (`data/test/*.jpg`, `**` recurses), or a list of any of these. `~` and
    environment variables ($HOME) are expanded."""
    if not source:
        raise UserError(
            "no input given: add input=PATH (a folder, an image, a glob, or [a.jpg,b.jpg])"
        )
    if not isinstance(source, (str, Path, int, float)):  # a number names a file too
        return [path for one in source for path in expand_input(one)]
    text = os.path.expandvars(os.path.expanduser(str(source)))
    path = Path(text)
    if path.is_dir():
        return list_images(path)
    if path.is_file():
        return [path]
    if glob.has_magic(text):
        matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
        return [p for p in matches if p.is_file() and is_image_name(p)]
    raise UserError(f"input {path} does not exist (give a folder, an image file or a glob)")


def input_images(
    source, verify: str = "header", max_pixels: int | None = None
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The readable images `source` names (see `expand_input`) and the skipped ones with
    reasons."""
    paths = expand_input(source)
    if not paths:
        raise UserError(f"no images in {source} (extensions: jpg jpeg png bmp webp tif)")
    readable, skipped = [], []
    for path in paths:
        reason = unreadable_reason(path, verify, max_pixels)
        (readable.append(path) if reason is None else skipped.append((path, reason)))
    if not readable:
        raise UserError(f"none of the {len(paths)} images in {source} can be read")
    return readable, skipped
