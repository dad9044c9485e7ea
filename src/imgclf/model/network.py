"""The trained network alone, for predictions: the timm body and the fastai head with the
input normalisation, as a plain `nn.Module`, built from a checkpoint's hyperparameters.

`ImageClassifier` (a LightningModule) trains this network; loading one for predictions
needs neither Lightning nor torchmetrics, which take seconds to import.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn

from imgclf.model.backbone import create_body, data_config_for
from imgclf.model.head import create_head
from imgclf.task import task_named

# The submodules whose weights a checkpoint's state_dict holds for the network.
NETWORK_PARTS = ("body.", "head.")


def pixel_stats(values: Sequence[float]) -> torch.Tensor:
    """Per-channel mean or std on the 0..255 pixel scale, shaped to broadcast over NCHW."""
    return torch.tensor([255.0 * float(v) for v in values]).view(1, 3, 1, 1)


def head_layers(hidden, dropout) -> tuple[list[int], list[float]]:
    """The head's hidden sizes and dropouts as plain lists; one number stands for every
    layer (model.head_hidden=256, model.head_dropout=0.3)."""
    hidden = [hidden] if isinstance(hidden, (int, float)) else hidden
    hidden = [int(n) for n in hidden]
    dropout = [dropout] * (len(hidden) + 1) if isinstance(dropout, (int, float)) else dropout
    return hidden, [float(p) for p in dropout]


def normalize_pixels(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Pixels -> the backbone's normalised floats, by one rule for every input: uint8
    pixels (what the data pipelines deliver) are 0..255, float pixels are 0..1 (uint8
    / 255, what an exported model takes); both become (x - mean) / std."""
    if images.dtype == torch.uint8:
        return (images.float() - mean) / std
    return (images * 255.0 - mean) / std


class Network(nn.Module):
    """Body + head of a trained ImageClassifier with its task, classes, input size and
    (multi-label) thresholds: what predicting needs. `forward` takes uint8 or 0..1 float
    NCHW pixels and returns logits, as `ImageClassifier.forward` does."""

    def __init__(self, hparams: dict, image_size: int | None, thresholds=None) -> None:
        super().__init__()
        hidden, dropout = head_layers(
            hparams.get("head_hidden", (512,)), hparams.get("head_dropout", (0.25, 0.5))
        )
        num_classes = int(hparams["num_classes"])
        names = hparams.get("class_names")
        self.class_names = (
            [str(n) for n in names] if names else [str(i) for i in range(num_classes)]
        )
        self.task = task_named(hparams.get("task", "single"))
        self.channels_last = bool(hparams.get("channels_last", True))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*random initialisation.*")
            self.body = create_body(hparams.get("backbone", "tf_efficientnet_lite0"), "none")
        self.head = create_head(self.body.num_features, num_classes, hidden, dropout)
        self.data_config = data_config_for(self.body)
        self.register_buffer("pixel_mean", pixel_stats(self.data_config["mean"]), persistent=False)
        self.register_buffer("pixel_std", pixel_stats(self.data_config["std"]), persistent=False)
        if self.channels_last:
            self.body.to(memory_format=torch.channels_last)
        self.image_size = image_size
        self.thresholds = thresholds

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = normalize_pixels(images, self.pixel_mean, self.pixel_std)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.head(self.body(images))


def network_from_checkpoint(checkpoint: dict) -> Network:
    """The Network a checkpoint dict (`torch.load`ed) holds, in eval mode, on the CPU.
    Raises ValueError when the dict holds no ImageClassifier, RuntimeError (torch's) when
    its weights do not fit the network its hyperparameters describe."""
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    if "num_classes" not in hparams or "state_dict" not in checkpoint:
        raise ValueError("not an imgclf ImageClassifier checkpoint")
    saved = checkpoint.get("imgclf") or {}
    network = Network(hparams, saved.get("image_size"), saved.get("thresholds"))
    weights = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith(NETWORK_PARTS)}
    network.load_state_dict(weights)
    return network.eval()
