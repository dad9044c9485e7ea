"""One path from an image to the model's input, for every consumer: the data loaders (so
training, `imgclf evaluate` and `imgclf predict`), the Python API's `TrainedRun.predict`,
and the steps export writes into model.json.

A file is decoded as small as its transform allows (`min_decode_side`: libjpeg's
reduced-scale JPEG decode), then transformed. Decoding a file at full size instead gives
other pixels after the resize, and so other probabilities: that is why there is one path.
`eval_pixels` is the evaluation transform's half of it without albumentations or torch,
for `imgclf predict` through the cached ONNX file (`evaluation/onnx_predict.py`); it calls
the same decode and the same `resize_and_crop`. This module imports neither, for that path.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from imgclf.data.images import DEFAULT_MAX_PIXELS, load_rgb, to_rgb
from imgclf.data.resize import eval_resize_target, resize_and_crop

if TYPE_CHECKING:
    import albumentations as A


def model_transform(data_config: Mapping, image_size: int) -> A.Compose:
    """The evaluation pipeline of a model's data config (interpolation, crop_pct) at
    `image_size`: short-side resize, centre crop, uint8 CHW tensor."""
    from imgclf.data.transforms import eval_transform

    return eval_transform(image_size, data_config["interpolation"], data_config["crop_pct"])


def decode(
    source, min_side: int | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """An HxWx3 uint8 array from a path (str or Path, `~` expanded; decoded by `load_rgb`'s
    rules, JPEGs at a reduced scale down to `min_side`), a PIL image, or an array (uint8
    0..255, or float 0..1; greyscale repeated, alpha dropped)."""
    if isinstance(source, (str, Path)):
        return load_rgb(Path(source).expanduser(), max_pixels, min_side=min_side)
    if isinstance(source, Image.Image):
        return np.asarray(to_rgb(source))
    array = np.asarray(source)
    if array.dtype != np.uint8:
        array = np.clip(np.rint(array.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    return np.ascontiguousarray(array[..., :3])


def decode_for(source, transform, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """`decode` at the smallest size `transform` can use without upsampling."""
    from imgclf.data.transforms import min_decode_side

    return decode(source, min_decode_side(transform), max_pixels)


def preprocess(source, transform, max_pixels: int | None = DEFAULT_MAX_PIXELS):
    """A path, PIL image or array through `decode_for` and `transform`: the model's input
    for one image (a uint8 CHW tensor for the evaluation pipeline)."""
    return transform(image=decode_for(source, transform, max_pixels))["image"]


def eval_pixels(
    source,
    size: int,
    interpolation: str,
    crop_pct: float,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """What `preprocess(source, model_transform(config, size))` gives, as an HxWx3 uint8
    array, without albumentations or torch: the decode at the resize's short side, then
    `resize_and_crop`."""
    image = decode(source, eval_resize_target(size, crop_pct), max_pixels)
    return resize_and_crop(image, size, interpolation, crop_pct)
