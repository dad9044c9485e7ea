"""MixUp and CutMix on training batches, with torchvision v2's own transforms.

`batch_mixer(mixup_alpha, cutmix_alpha, prob, num_classes)` returns a callable that takes a
batch of float images and integer labels and returns the mixed images and soft targets
(rows of class probabilities), or None when both alphas are 0 (mixing off). With both
alphas set, each mixed batch is MixUp or CutMix at random (`RandomChoice`, as timm's
`switch_prob` 0.5). `prob` is the share of batches mixed at all; the others keep their
images and get one-hot targets, so the loss always sees soft targets.

Random draws come from torch's global generator (seeded by `seed_everything`, and saved in
every checkpoint for resume).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from imgclf.errors import UserError

Mixer = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def check_mixing(mixup_alpha: float, cutmix_alpha: float, prob: float) -> None:
    """One-line errors for alphas below 0 and a probability outside [0, 1]."""
    for key, value in (("model.mixup_alpha", mixup_alpha), ("model.cutmix_alpha", cutmix_alpha)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise UserError(f"{key}={value!r}: must be a number >= 0 (0 turns it off)")
    if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 <= prob <= 1:
        raise UserError(f"model.mix_prob={prob!r}: must be a number between 0 and 1")


def batch_mixer(
    mixup_alpha: float, cutmix_alpha: float, prob: float, num_classes: int
) -> Mixer | None:
    """The batch mixing of the settings, or None when both alphas are 0."""
    check_mixing(mixup_alpha, cutmix_alpha, prob)
    choices = []
    if mixup_alpha > 0:
        choices.append(v2.MixUp(alpha=float(mixup_alpha), num_classes=num_classes))
    if cutmix_alpha > 0:
        choices.append(v2.CutMix(alpha=float(cutmix_alpha), num_classes=num_classes))
    if not choices:
        return None
    mix = choices[0] if len(choices) == 1 else v2.RandomChoice(choices)

    def mixer(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if prob < 1 and float(torch.rand(())) >= prob:
            return images, F.one_hot(labels, num_classes).to(images.dtype)
        return mix(images, labels)

    return mixer
