"""albumentations pipelines: fastai-like train presets and the timm-style eval resize + centre crop.

Pipelines end in uint8 CHW tensors: normalisation with the backbone's mean/std happens in the
model, on its device (`ImageClassifier.normalize`). Workers then send a quarter of the bytes
and skip the float arithmetic. Sizes and interpolation come from the backbone's timm
pretrained config (see `imgclf.model.backbone.data_config_for`).
"""

from __future__ import annotations

import random

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2

from imgclf.data.auto_augment import AutoAugment, check_auto_augment
from imgclf.data.resize import eval_resize_target, resize_and_crop
from imgclf.data.settings import PRESETS
from imgclf.data.warp import RandomCropWarp
from imgclf.errors import UserError

# OpenCV's own thread pool: DataLoader workers already use every core, and a process that
# forks workers after OpenCV started its pool can deadlock in them. Off for the process.
cv2.setNumThreads(0)

INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}


def interpolation_flag(name: str) -> int:
    return INTERPOLATIONS.get(name, cv2.INTER_LINEAR)


class ResizeAndCrop(A.ImageOnlyTransform):
    """The evaluation resize and centre crop (`resize.resize_and_crop`: PIL's filter on
    the short side, then the centred square).

    Done by PIL on purpose, rather than by OpenCV like the training warp: an exported
    model's users preprocess with PIL (or anything that follows PIL's rule), and must get
    exactly the pixels `imgclf predict` feeds the model; `imgclf export` writes the rule to
    model.json. The ONNX predict path calls the same function without albumentations.
    """

    def __init__(
        self, size: int, interpolation: str = "bicubic", crop_pct: float = 0.875, p: float = 1.0
    ) -> None:
        super().__init__(p=p)
        self.size = int(size)
        self.interpolation = interpolation
        self.crop_pct = float(crop_pct)

    def apply(self, img: np.ndarray, **params) -> np.ndarray:
        return resize_and_crop(img, self.size, self.interpolation, self.crop_pct)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("size", "interpolation", "crop_pct")


def train_transform(
    preset: str,
    size: int,
    interpolation: str = "bicubic",
    min_scale: float = 0.35,
    do_flip: bool = True,
    max_rotate: float = 10.0,
    max_lighting: float = 0.2,
    seed: int | None = None,
    auto_augment: str = "none",
) -> A.Compose:
    """fastai's aug_transforms, roughly: random resized crop, flips, small rotation and zoom
    (one warp, `RandomCropWarp`), brightness/contrast. `top_down` adds vertical flips and
    90-degree turns (satellite, microscopy); `none` only resizes and centre-crops like
    evaluation. `auto_augment` (trivialaugment, randaugment) adds torchvision's policy right
    after the crop."""
    if preset not in PRESETS:
        raise UserError(
            f"unknown augmentation preset {preset!r}: choose one of {', '.join(PRESETS)}"
        )
    interp = interpolation_flag(interpolation)
    if preset == "none":
        steps = [A.SmallestMaxSize(max_size=size, interpolation=interp, area_for_downscale="image")]
        steps.append(A.CenterCrop(height=size, width=size))
    else:
        # fastai's rotation and zoom ranges, with probability 0.75.
        steps = [
            RandomCropWarp(
                size,
                scale=(min_scale, 1.0),
                flip=do_flip,
                max_rotate=max_rotate,
                zoom=(1.0, 1.1),
                p_affine=0.75,
                interpolation=interp,
            )
        ]
        if do_flip and preset == "top_down":
            steps += [A.VerticalFlip(p=0.5), A.RandomRotate90(p=0.5)]
    if check_auto_augment(auto_augment) != "none":
        steps.append(AutoAugment(auto_augment))
    if preset != "none":
        steps.append(
            A.RandomBrightnessContrast(
                brightness_limit=max_lighting, contrast_limit=max_lighting, p=0.75
            )
        )
    return A.Compose([*steps, ToTensorV2()], seed=seed)


def eval_transform(size: int, interpolation: str = "bicubic", crop_pct: float = 0.875) -> A.Compose:
    """timm's eval pipeline: resize the short side to size/crop_pct with PIL's filter, then
    centre-crop size (top = (height - size) // 2): `ResizeAndCrop`."""
    return A.Compose([ResizeAndCrop(size, interpolation, crop_pct), ToTensorV2()])


def min_decode_side(transform) -> int | None:
    """The smallest image side a pipeline needs to decode, so images can be decoded at a
    reduced scale (JPEG draft mode) without the pipeline ever upsampling.

    Random crop warp: the smallest crop holds `min_scale` of the area at the narrowest
    aspect ratio (3/4 by default), so its short side is sqrt(min_scale * 3/4) of a square
    image's side; it must still cover `size` pixels: side >= size / sqrt(min_scale * 3/4)
    (1.95 x size at the default min_scale 0.35). Resize-then-crop (eval, preset none): the
    resize target. Any other pipeline: None (decode at full size).
    """
    first = transform.transforms[0] if len(transform.transforms) else None
    if isinstance(first, RandomCropWarp):
        size = max(first.size)
        return int(np.ceil(size / np.sqrt(min(first.scale) * min(first.ratio))))
    if isinstance(first, ResizeAndCrop):
        return eval_resize_target(first.size, first.crop_pct)
    if isinstance(first, A.SmallestMaxSize):
        return int(np.max(first.max_size))
    return None


def seed_worker(worker_id: int) -> None:
    """DataLoader worker_init_fn: give each worker (and each epoch) its own augmentations.

    albumentations 2.0.8's Compose carries its own RNG, copied into every worker, so without
    this all workers draw the same augmentations, and non-persistent workers repeat them
    every epoch. torch.initial_seed() differs per worker and per epoch and follows the
    DataLoader's generator, so a fixed seed still reproduces everything.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    info = torch.utils.data.get_worker_info()
    transform = getattr(info.dataset, "transform", None) if info else None
    if isinstance(transform, A.BaseCompose):
        transform.set_random_seed(seed)
