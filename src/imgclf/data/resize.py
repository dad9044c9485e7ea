"""The evaluation resize rule, without torch or albumentations: short side to
`size / crop_pct` with PIL's filter, then the centred `size` x `size` crop.

`transforms.eval_transform` (the data loaders, so evaluate and predict through torch) and
`preprocess.eval_pixels` (predict through the cached ONNX file) both call these functions,
so the two paths feed the model the same pixels; `imgclf export` writes the same rule into
model.json for clients in other languages.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# The same names as PIL resampling filters, for the evaluation resize.
PIL_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def eval_resize_target(size: int, crop_pct: float) -> int:
    """The short side before the centre crop: `round(size / crop_pct)`."""
    return int(round(size / crop_pct))


def short_side_size(height: int, width: int, target: int) -> tuple[int, int]:
    """(height, width) with the short side at `target` and the aspect ratio kept: the long
    side is `floor(long * target / short + 0.5)`."""
    if height <= width:
        return target, int(np.floor(width * target / height + 0.5))
    return int(np.floor(height * target / width + 0.5)), target


def resize_short_side(image: np.ndarray, target: int, interpolation: str) -> np.ndarray:
    """An HxWx3 uint8 array with its short side resized to `target` by PIL's `Image.resize`
    (`interpolation`: nearest, bilinear, bicubic or lanczos; PIL widens the filter when
    shrinking, so it antialiases). An image already that size is returned as is."""
    height, width = image.shape[:2]
    new_height, new_width = short_side_size(height, width, target)
    if (new_height, new_width) == (height, width):
        return image
    resample = PIL_FILTERS.get(interpolation, Image.Resampling.BILINEAR)
    resized = Image.fromarray(np.ascontiguousarray(image)).resize((new_width, new_height), resample)
    return np.asarray(resized)


def center_crop_box(height: int, width: int, size: int) -> tuple[int, int]:
    """(top, left) of the centred `size` x `size` crop: `(side - size) // 2`."""
    return (height - size) // 2, (width - size) // 2


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The centred `size` x `size` crop of an image at least that large."""
    top, left = center_crop_box(*image.shape[:2], size)
    return image[top : top + size, left : left + size]


def resize_and_crop(
    image: np.ndarray, size: int, interpolation: str, crop_pct: float
) -> np.ndarray:
    """timm's evaluation pipeline on an HxWx3 uint8 array: `resize_short_side` to
    `eval_resize_target(size, crop_pct)`, then `center_crop` to `size`."""
    target = eval_resize_target(size, crop_pct)
    return center_crop(resize_short_side(image, target, interpolation), size)
