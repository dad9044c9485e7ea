"""One uploaded file -> class probabilities, by the functions `imgclf predict` runs on
each image (TTA off): `load_rgb` decodes, the data module's eval transform resizes and
crops, the model's `predict_step` normalises and applies the softmax. A file that cannot
be classified gets a one-line reason instead, never an exception."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from imgclf.data.images import DEFAULT_MAX_PIXELS, load_rgb, unreadable_reason
from imgclf.data.transforms import min_decode_side


@dataclass
class Answer:
    """A file's class probabilities (in class order), or why it has none."""

    name: str
    probs: np.ndarray | None = None
    error: str | None = None


class FileClassifier:
    """The checkpoint's model with the eval transform of its data module, for single files.

    One model call at a time (a lock): torch's threads already use every core, and
    concurrent calls would only compete for them.
    """

    def __init__(self, model, transform, classes: list[str], max_pixels=DEFAULT_MAX_PIXELS):
        self.model = model.eval()
        self.transform = transform
        self.classes = list(classes)
        self.max_pixels = max_pixels
        self.min_side = min_decode_side(transform)
        self._lock = threading.Lock()

    def pixels(self, path: Path) -> torch.Tensor:
        """The uint8 CHW tensor the plain prediction pass feeds the model for `path`
        (what `ImageFileDataset` returns for it)."""
        array = load_rgb(path, self.max_pixels, min_side=self.min_side)
        return self.transform(image=array)["image"]

    def probabilities(self, images: torch.Tensor) -> np.ndarray:
        """Softmax probabilities (N x C) of a uint8 NCHW batch, by `predict_step`."""
        with self._lock, torch.inference_mode():
            probs = self.model.predict_step((images, None), 0)
        return probs.float().cpu().numpy()

    def classify(self, path: str | Path, name: str | None = None) -> Answer:
        """`path`'s probabilities, or a one-line reason it cannot be classified."""
        path = Path(path)
        name = name or path.name
        reason = unreadable_reason(path, "header", self.max_pixels)
        if reason is not None:
            return Answer(name, error=reason)
        try:
            image = self.pixels(path)
        except Exception as err:  # PIL and the OS raise many types for broken files
            return Answer(name, error=decode_error(err))
        return Answer(name, probs=self.probabilities(image[None])[0])

    def classify_all(self, paths: list[str | Path]) -> list[Answer]:
        return [self.classify(path) for path in paths]


def decode_error(err: Exception) -> str:
    """A short reason for a decode failure (a truncated JPEG: 'image file is truncated')."""
    text = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
    return f"cannot decode: {text}"


def ranked(probs: np.ndarray, classes: list[str], top_k: int | None = None) -> dict[str, float]:
    """{class: probability}, most likely first, `top_k` of them (all when None)."""
    order = np.argsort(-probs, kind="stable")[: top_k or len(classes)]
    return {classes[i]: float(probs[i]) for i in order}
