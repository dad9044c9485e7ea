"""TrivialAugment and RandAugment (torchvision v2) inside our albumentations train pipeline.

`data.auto_augment: none|trivialaugment|randaugment` adds one of torchvision's policies
after the crop/flip warp, on the uint8 crop. The policy draws from torch's global
generator; to keep it seeded like the rest of the pipeline (per worker, per epoch, per
TTA item, restored on resume) the albumentations wrapper draws a seed from its own
generator and runs the policy under a forked torch generator seeded with it.
"""

from __future__ import annotations

import albumentations as A
import numpy as np
import torch
from torchvision.transforms import v2

from imgclf.errors import UserError

AUTO_AUGMENTS = ("none", "trivialaugment", "randaugment")


def policy(name: str):
    """torchvision's policy object of `name` (its own default magnitudes)."""
    if name == "trivialaugment":
        return v2.TrivialAugmentWide()
    if name == "randaugment":
        return v2.RandAugment()
    raise UserError(f"unknown data.auto_augment {name!r}: choose one of {', '.join(AUTO_AUGMENTS)}")


def check_auto_augment(name: str) -> str:
    if name not in AUTO_AUGMENTS:
        policy(name)  # the one-line error
    return name


class AutoAugment(A.ImageOnlyTransform):
    """A torchvision v2 policy (`trivialaugment`, `randaugment`) on an HWC uint8 image."""

    def __init__(self, name: str, p: float = 1.0) -> None:
        super().__init__(p=p)
        self.name = name
        self.policy = policy(name)

    def get_params(self) -> dict:
        return {"torch_seed": self.py_random.randrange(2**31)}

    def apply(self, img: np.ndarray, torch_seed: int = 0, **params) -> np.ndarray:
        chw = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed)
            out = self.policy(chw)
        return out.permute(1, 2, 0).contiguous().numpy()

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("name",)
