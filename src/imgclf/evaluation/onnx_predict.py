"""`imgclf predict` without torch: a checkpoint's network cached as an ONNX file beside it,
run by onnxruntime on the evaluation transform's pixels (`preprocess.eval_pixels`).

Importing torch, torchvision and timm takes about 5 s on a laptop CPU; onnxruntime about
0.2 s. So a training run ends by writing best.ckpt's network as `best.onnx` with its card
`best.onnx.json` (`evaluation/export.py::cache_onnx`), a prediction through torch writes
`<checkpoint stem>.onnx` for a checkpoint that has none, and predictions without TTA, in
one CPU process, read those instead (`read_cached_model`). The card names the checkpoint's size,
modification time and inode: a checkpoint written again (resumed training, a better
epoch) no longer matches, and the next prediction goes through torch and writes the cache
again. This module imports neither torch nor albumentations.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf.data.images import DEFAULT_MAX_PIXELS
from imgclf.data.preprocess import eval_pixels
from imgclf.evaluation.pass_line import PassLine
from imgclf.evaluation.submission import Prediction
from imgclf.task.rules import clip_rule, uninformed

# Images per onnxruntime call: bounds the memory of a large folder.
BATCH = 32
# The card's layout; a card of another version is ignored (and written again).
CARD_VERSION = 2


def cache_paths(checkpoint: Path) -> tuple[Path, Path]:
    """(the ONNX file, its card) cached for `checkpoint`: `best.ckpt` -> `best.onnx`,
    `best.onnx.json`, in the checkpoint's folder."""
    onnx = checkpoint.with_suffix(".onnx")
    return onnx, onnx.with_name(onnx.name + ".json")


def checkpoint_identity(checkpoint: Path) -> dict:
    """What tells a checkpoint file from a later one written at the same path."""
    stat = os.stat(checkpoint)
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}


@dataclass(frozen=True)
class CachedModel:
    """A checkpoint's network as an ONNX file (float32 NCHW pixels in [0, 1] -> the task's
    probabilities) and what predicting with it needs."""

    onnx: Path
    classes: list[str]
    task: str  # "single" or "multi"
    image_size: int
    interpolation: str
    crop_pct: float
    # The eps `clip: auto` chose in training (None: none recorded); the thresholds a
    # multi-label model decodes its tags with (None: single-label).
    recorded_eps: float | None = None
    thresholds: list[float] | None = None

    def card(self, checkpoint: Path) -> dict:
        """The JSON card written beside the ONNX file."""
        return {
            "version": CARD_VERSION,
            "checkpoint": checkpoint_identity(checkpoint),
            "onnx": self.onnx.name,
            "classes": self.classes,
            "task": self.task,
            "image_size": self.image_size,
            "interpolation": self.interpolation,
            "crop_pct": self.crop_pct,
            "recorded_eps": self.recorded_eps,
            "thresholds": self.thresholds,
        }


def read_cached_model(checkpoint: Path) -> CachedModel | None:
    """The cached ONNX model of `checkpoint`, or None: no cache, a cache of an older file at
    that path, or a card that cannot be read."""
    onnx, card_path = cache_paths(checkpoint)
    try:
        card = json.loads(card_path.read_text())
        current = card.get("version") == CARD_VERSION and card.get(
            "checkpoint"
        ) == checkpoint_identity(checkpoint)
        if not current or not onnx.is_file():
            return None
        return CachedModel(
            onnx=onnx,
            classes=list(card["classes"]),
            task=str(card["task"]),
            image_size=int(card["image_size"]),
            interpolation=str(card["interpolation"]),
            crop_pct=float(card["crop_pct"]),
            recorded_eps=card.get("recorded_eps"),
            thresholds=card.get("thresholds"),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def predict_with_onnx(
    model: CachedModel,
    paths: list[Path],
    eps: float | None,
    tta: dict,
    skipped: list[tuple[Path, str]] = (),
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    show: bool = True,
) -> Prediction:
    """The Prediction of readable `paths` (no TTA) through the cached ONNX file: the same
    pixels as the torch path, the same clipping; a file that fails to decode gets the
    task's uninformed row, as in the data loaders. `tta`: recorded as given (its n is 0)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model.onnx), providers=["CPUExecutionProvider"])
    line = PassLine(1, len(paths), enabled=show)
    line.step()
    rows, failed = [], []
    for start in range(0, len(paths), BATCH):
        batch, read, chunk = [], [], paths[start : start + BATCH]
        for i, path in enumerate(chunk, start):
            try:
                pixels = eval_pixels(
                    path, model.image_size, model.interpolation, model.crop_pct, max_pixels
                )
            except Exception:  # PIL, OpenCV and the OS raise many types for broken files
                failed.append(i)
                continue
            batch.append(pixels)
            read.append(i)
        probs = np.full((len(chunk), len(model.classes)), np.nan)
        if batch:
            images = np.stack(batch).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
            probs[np.array(read) - start] = session.run(None, {"images": images})[0]
        rows.append(probs)
    line.done()
    probs = np.concatenate(rows) if rows else np.zeros((0, len(model.classes)))
    probs = clip_rule(model.task)(probs.astype(np.float64), eps or 0.0)
    probs[failed] = uninformed(model.task, len(model.classes))
    return Prediction(
        ids=[path.stem for path in paths],
        paths=list(paths),
        probs=probs,
        classes=list(model.classes),
        clip_eps=eps,
        tta=tta,
        skipped=list(skipped),
        decode_failed=[paths[i] for i in failed],
        thresholds=model.thresholds,
    )
