"""Random resized crop, flip, rotation and zoom as one affine warp (fastai's way).

Doing them one after another resamples the image twice (crop-and-resize, then rotate);
composing their matrices first and warping once is about twice as fast and blurs less.
The crop is drawn like torchvision's RandomResizedCrop (area share in `scale`, aspect
ratio log-uniform in `ratio`, ten tries, then a centre crop). A bilinear or bicubic warp
that shrinks by more than 2x would alias, so such images are first shrunk with area
averaging to about the output scale.
"""

from __future__ import annotations

import math

import albumentations as A
import cv2
import numpy as np

# Beyond this shrink factor, resample with area averaging before the warp.
MAX_WARP_SHRINK = 2.0


def sample_crop(
    width: int, height: int, scale: tuple[float, float], ratio: tuple[float, float], rng
) -> tuple[float, float, float, float]:
    """(x0, y0, w, h) of a random crop holding `scale` of the area at aspect `ratio`."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = math.sqrt(target * aspect)
        h = math.sqrt(target / aspect)
        if w <= width and h <= height:
            return rng.uniform(0, width - w), rng.uniform(0, height - h), w, h
    # Fallback: the largest centre crop within the ratio range.
    aspect = min(max(width / height, ratio[0]), ratio[1])
    w, h = (width, width / aspect) if width / height <= aspect else (height * aspect, height)
    return (width - w) / 2, (height - h) / 2, w, h


def warp_matrix(
    crop: tuple[float, float, float, float],
    size: int,
    flip: bool,
    angle: float,
    zoom: float,
) -> np.ndarray:
    """The 2x3 source-to-output matrix: crop -> size x size, then flip, then rotate by
    `angle` degrees and zoom by `zoom` about the output centre (pixel centres at +0.5)."""
    x0, y0, w, h = crop
    crop_to_out = np.array(
        [[size / w, 0, (0.5 - x0) * size / w - 0.5], [0, size / h, (0.5 - y0) * size / h - 0.5]]
    )
    matrix = np.vstack([crop_to_out, [0, 0, 1]])
    centre = (size - 1) / 2
    if flip:
        matrix = np.array([[-1, 0, size - 1], [0, 1, 0], [0, 0, 1]]) @ matrix
    if angle or zoom != 1:
        rotation = np.vstack([cv2.getRotationMatrix2D((centre, centre), angle, zoom), [0, 0, 1]])
        matrix = rotation @ matrix
    return matrix[:2]


class RandomCropWarp(A.ImageOnlyTransform):
    """Random resized crop + horizontal flip + rotation/zoom, resampled once.

    `size` and `scale` mean what they mean for albumentations' RandomResizedCrop;
    rotation (degrees) and zoom are drawn with probability `p_affine` (fastai's 0.75).
    """

    def __init__(
        self,
        size: int,
        scale: tuple[float, float] = (0.35, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip: bool = True,
        max_rotate: float = 10.0,
        zoom: tuple[float, float] = (1.0, 1.1),
        p_affine: float = 0.75,
        interpolation: int = cv2.INTER_LINEAR,
        border_mode: int = cv2.BORDER_REFLECT_101,
    ) -> None:
        super().__init__(p=1.0)
        self.size = (size, size)
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.flip = flip
        self.max_rotate = max_rotate
        self.zoom = tuple(zoom)
        self.p_affine = p_affine
        self.interpolation = interpolation
        self.border_mode = border_mode

    def apply(self, img: np.ndarray, **params) -> np.ndarray:
        rng = self.py_random
        # OpenCV's bicubic warp never returns on a side of one pixel; two copies of
        # that row or column warp to the same picture.
        if img.shape[0] == 1:
            img = np.repeat(img, 2, axis=0)
        if img.shape[1] == 1:
            img = np.repeat(img, 2, axis=1)
        height, width = img.shape[:2]
        x0, y0, w, h = sample_crop(width, height, self.scale, self.ratio, rng)
        flip = self.flip and rng.random() < 0.5
        angle, zoom = 0.0, 1.0
        if rng.random() < self.p_affine:
            angle = rng.uniform(-self.max_rotate, self.max_rotate)
            zoom = rng.uniform(*self.zoom)
        size = self.size[0]
        shrink = min(w, h) / size
        if shrink > MAX_WARP_SHRINK:
            # Area-average the whole image down to about the output scale first.
            factor = 1 / shrink
            img = cv2.resize(img, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
            sx, sy = img.shape[1] / width, img.shape[0] / height
            x0, y0, w, h = x0 * sx, y0 * sy, w * sx, h * sy
        matrix = warp_matrix((x0, y0, w, h), size, flip, angle, zoom)
        return cv2.warpAffine(
            img, matrix, (size, size), flags=self.interpolation, borderMode=self.border_mode
        )

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("size", "scale", "ratio", "flip", "max_rotate", "zoom", "p_affine")
