"""The fastai classifier head: concat pooling, then BatchNorm/Dropout/Linear blocks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# The head's first two layers pool and flatten; precomputed features enter right after them.
HEAD_FEATURES_INDEX = 2


class AdaptiveConcatPool2d(nn.Module):
    """Average and max pooling side by side: twice the features, and it trains better (fastai)."""

    def __init__(self, output_size: int = 1) -> None:
        super().__init__()
        self.avg = nn.AdaptiveAvgPool2d(output_size)
        self.max = nn.AdaptiveMaxPool2d(output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.max(x), self.avg(x)], dim=1)


def create_head(
    num_features: int,
    num_classes: int,
    hidden: Sequence[int] = (512,),
    dropout: Sequence[float] = (0.25, 0.5),
) -> nn.Sequential:
    """fastai's `create_head`: pool, flatten, then (BN, Dropout, Linear[, ReLU]) per layer.

    `hidden` lists the sizes of the hidden layers; `dropout` gives one probability per
    Linear layer (so `len(hidden) + 1` values). Linear layers have no bias because a
    BatchNorm with its own shift comes right before each of them.
    """
    sizes = [2 * num_features, *hidden, num_classes]
    if len(dropout) != len(sizes) - 1:
        raise ValueError(
            f"head needs {len(sizes) - 1} dropout values (one per Linear layer), got {list(dropout)}"
        )
    layers: list[nn.Module] = [AdaptiveConcatPool2d(), nn.Flatten()]
    for i, (n_in, n_out, p) in enumerate(zip(sizes[:-1], sizes[1:], dropout, strict=True)):
        layers += [nn.BatchNorm1d(n_in), nn.Dropout(p), nn.Linear(n_in, n_out, bias=False)]
        if i < len(sizes) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)
