"""One uploaded file -> class probabilities and the labels they decode to, by the functions
`imgclf predict` runs on each image (TTA off): `load_rgb` decodes, the data module's eval
transform resizes and crops, the model's `predict_step` normalises and applies the task's
activation (softmax, or a sigmoid per tag), and the task decodes (the top class, or the
tags at or above their thresholds). A file that cannot be classified gets a one-line
reason instead, never an exception."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from imgclf.data.images import DEFAULT_MAX_PIXELS, load_rgb, unreadable_reason
from imgclf.data.transforms import min_decode_side
from imgclf.evaluation.prediction import decode_thresholds


@dataclass
class Answer:
    """A file's class probabilities (in class order) and the indices of the labels the task
    decodes them to (most probable first: the top class, or the predicted tags, maybe
    none), or why it has none."""

    name: str
    probs: np.ndarray | None = None
    error: str | None = None
    chosen: list[int] | None = None


class FileClassifier:
    """The checkpoint's model with the eval transform of its data module, for single files.

    The model's task (`imgclf.task`) gives the activation and the decoding; a multi-label
    model decodes with the thresholds its checkpoint keeps (0.5 each until validated, as
    `imgclf predict`). Files are classified one at a time, on one thread of its own whatever
    thread asks: torch's threads already use every core, so concurrent calls would only
    compete for them; and done on the web server's changing worker threads, the same work
    grew the server's memory with every round of clients (measured: docs/serve.md).
    """

    def __init__(self, model, transform, classes: list[str], max_pixels=DEFAULT_MAX_PIXELS):
        self.model = model.eval()
        self.task = model.task
        self.thresholds = decode_thresholds(model)
        self.transform = transform
        self.classes = list(classes)
        self.max_pixels = max_pixels
        self.min_side = min_decode_side(transform)
        self._lock = threading.Lock()
        self._runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imgclf-classify")

    @property
    def multi_label(self) -> bool:
        return self.thresholds is not None

    def pixels(self, path: Path) -> torch.Tensor:
        """The uint8 CHW tensor the plain prediction pass feeds the model for `path`
        (what `ImageFileDataset` returns for it)."""
        array = load_rgb(path, self.max_pixels, min_side=self.min_side)
        return self.transform(image=array)["image"]

    def probabilities(self, images: torch.Tensor) -> np.ndarray:
        """The task's probabilities (N x C) of a uint8 NCHW batch, by `predict_step`."""
        with self._lock, torch.inference_mode():
            probs = self.model.predict_step((images, None), 0)
        return probs.float().cpu().numpy()

    def decoded(self, probs: np.ndarray) -> list[int]:
        """The label indices the task decodes one row of probabilities to, most probable
        first: [the top class], or the tags at or above their thresholds (maybe none)."""
        decoded = self.task.decode(probs[None], self.thresholds)[0]
        chosen = np.flatnonzero(decoded) if self.multi_label else [int(decoded)]
        return sorted((int(i) for i in chosen), key=lambda i: -probs[i])

    def classify(self, path: str | Path, name: str | None = None) -> Answer:
        """`path`'s probabilities, or a one-line reason it cannot be classified."""
        return self._runner.submit(self._classify, path, name).result()

    def classify_all(self, paths: list[str | Path]) -> list[Answer]:
        return self._runner.submit(lambda: [self._classify(path) for path in paths]).result()

    def _classify(self, path: str | Path, name: str | None = None) -> Answer:
        path = Path(path)
        name = name or path.name
        reason = unreadable_reason(path, "header", self.max_pixels)
        if reason is not None:
            return Answer(name, error=reason)
        try:
            image = self.pixels(path)
        except Exception as err:  # PIL and the OS raise many types for broken files
            return Answer(name, error=decode_error(err))
        probs = self.probabilities(image[None])[0]
        return Answer(name, probs=probs, chosen=self.decoded(probs))


def decode_error(err: Exception) -> str:
    """A short reason for a decode failure (a truncated JPEG: 'image file is truncated')."""
    text = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
    return f"cannot decode: {text}"


def ranked(probs: np.ndarray, classes: list[str], top_k: int | None = None) -> dict[str, float]:
    """{class: probability}, most likely first, `top_k` of them (all when None)."""
    order = np.argsort(-probs, kind="stable")[: top_k or len(classes)]
    return {classes[i]: float(probs[i]) for i in order}


def label_value(answer: Answer, classes: list[str], top_k: int) -> dict:
    """The value of the page's bars (Gradio's Label data): the heading is the decoded
    labels, space-separated (the top class; the predicted tags, "" when none); the bars
    are those labels, then the most probable others, `top_k` in all (or every decoded
    label, when there are more), at full precision."""
    rest = [int(i) for i in np.argsort(-answer.probs, kind="stable") if i not in answer.chosen]
    shown = [*answer.chosen, *rest][: max(top_k, len(answer.chosen))]
    return {
        "label": " ".join(classes[i] for i in answer.chosen),
        "confidences": [{"label": classes[i], "confidence": float(answer.probs[i])} for i in shown],
    }
