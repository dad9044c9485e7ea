"""Norm statistics adapted to the data before the head learns (AdaBN, Li et al. 2016).

A pretrained body's batch-norm layers normalise with ImageNet's running means and
variances. On data unlike ImageNet (scans, drawings, glyphs, greyscale photos) those are
far from the data's own, and two things go wrong: the head learns on features normalised
for another distribution, and when the body is unfrozen with batch statistics (as fastai
trains it) the features change at once under the head's feet; with the ImageNet
statistics held instead, the unfrozen body trains without the normalisation that keeps
deep networks stable, and at the peak learning rate it can diverge.

Re-estimating the running statistics on the training images first removes both: the
head then learns on the features the unfrozen body will produce with batch statistics.
Only the buffers change (no gradient, no weight moves), from a fixed number of augmented
training images, so it costs a fraction of one epoch's forward passes.
"""

from __future__ import annotations

import random

import torch
from torch import nn

from imgclf.model.groups import NORM_TYPES

# Enough batches for stable means and variances; capped so a large folder pays little.
MAX_IMAGES = 2048


def batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The norm layers that keep running statistics (batch norms) inside `module`."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def adaptation_loader(datamodule, image_size: int, max_images: int = MAX_IMAGES):
    """Up to `max_images` training images, a seeded random draw across every class, with
    the training augmentation at `image_size`: what the unfrozen body will see."""
    items = list(datamodule.train_items)
    random.Random(datamodule.seed).shuffle(items)
    transform = datamodule.train_transform(datamodule.seed, image_size)
    return datamodule.loader(items[:max_images], transform, seed=datamodule.seed)


@torch.no_grad()
def adapt_norm_statistics(model, loader, device, max_images: int = MAX_IMAGES) -> int:
    """Replace the running mean and variance of every batch norm in `model.body` by their
    plain averages over up to `max_images` images of `loader` (batches of uint8 images, as
    the training loader gives them); returns how many images were used. The model comes
    back in the mode it was in, its weights untouched."""
    norms = batch_norms(model.body)
    if not norms:
        return 0
    was_training = model.training
    momenta = [norm.momentum for norm in norms]
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches, not an EMA
        norm.train()
    seen = 0
    try:
        for images, _ in loader:
            if seen >= max_images:
                break
            images = images[: max_images - seen].to(device)
            model.run_body(images)
            seen += len(images)
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        model.train(was_training)
    return seen


def norm_fingerprint(model) -> str:
    """A short digest of the body's norm buffers, for caches of features made with them."""
    import hashlib

    digest = hashlib.sha256()
    for module in model.body.modules():
        if isinstance(module, NORM_TYPES):
            for name, buffer in module.named_buffers(recurse=False):
                if buffer.is_floating_point():
                    digest.update(name.encode())
                    digest.update(buffer.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]
