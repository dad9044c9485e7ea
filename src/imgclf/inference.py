"""What evaluate, predict and export share: the checkpoint, its data settings, a Trainer
that collects predictions, and the metrics of a probability matrix."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from imgclf.callbacks.clip import clipped_report, parse_eps
from imgclf.callbacks.predictions import CollectPredictions
from imgclf.checkpoint import load_classifier
from imgclf.errors import UserError
from imgclf.interpret import confusion_matrix, most_confused, per_class_precision_recall


def checkpoint_path(ckpt) -> Path:
    """`ckpt=` is a .ckpt file or a run directory (its best checkpoint, else its last)."""
    if not ckpt:
        raise UserError("no checkpoint given: add ckpt=PATH (a .ckpt file or a run directory)")
    path = Path(str(ckpt)).expanduser()
    if path.is_dir():
        for name in ("best.ckpt", "last.ckpt"):
            if (path / "checkpoints" / name).is_file():
                return path / "checkpoints" / name
        raise UserError(f"no checkpoints/best.ckpt or checkpoints/last.ckpt in {path}")
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    return path


def load_model_and_data(cfg: DictConfig, scan: bool = True):
    """The checkpoint's model and the configured data module, set to the model's input
    (mean/std from the backbone, the size it last trained at unless `image_size` is set).
    `scan` reads the train/valid folders (needed for validation images and class checks)."""
    model = load_classifier(checkpoint_path(cfg.get("ckpt")))
    from imgclf.train import instantiate_user

    datamodule = instantiate_user(cfg.data)
    datamodule.set_data_config(model.data_config)
    size = cfg.get("image_size") or model.image_size
    if size:
        datamodule.requested_image_size = int(size)
    if scan:
        datamodule.setup("validate")
        trained = list(model.hparams.class_names or [])
        if trained and trained != datamodule.classes:
            raise UserError(
                f"the checkpoint was trained on classes {trained[:10]}, but {datamodule.root} "
                f"has {datamodule.classes[:10]}: pass the training data (data=..., data.root=...)"
            )
    return model, datamodule


def class_names(model) -> list[str]:
    names = model.hparams.class_names
    return list(names) if names else [str(i) for i in range(model.hparams.num_classes)]


def inference_trainer(cfg: DictConfig, loggers: list) -> L.Trainer:
    """The configured Trainer (devices, precision, DDP) with the prediction collector."""
    return instantiate(
        cfg.trainer,
        callbacks=[CollectPredictions()],
        logger=loggers or False,
        enable_model_summary=False,
    )


def variant_metrics(probs: np.ndarray, labels: np.ndarray, clip) -> dict:
    """Accuracy, raw log-loss and (with clip) clipped log-loss with its eps."""
    eps = parse_eps(clip)
    report = clipped_report(probs, labels, eps if eps is not None else 0.0)
    metrics = {
        "accuracy": float((probs.argmax(axis=1) == labels).mean()),
        "logloss": report["logloss"],
    }
    if eps is not None:
        metrics.update(logloss_clipped=report["logloss_clipped"], clip_eps=report["clip_eps"])
    return metrics


def class_metrics(probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """Per-class precision/recall, the confusion matrix and the most confused pairs."""
    matrix = confusion_matrix(labels, probs.argmax(axis=1), len(classes))
    return {
        "per_class": per_class_precision_recall(matrix, classes),
        "confusion_matrix": matrix.tolist(),
        "most_confused": [
            {"actual": a, "predicted": p, "count": n} for a, p, n in most_confused(matrix, classes)
        ],
    }


def to_tensor(probs: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(probs, dtype=np.float64))


def decode_failures_of(datamodule, items: list) -> list[int]:
    """Row indices of `items` whose file failed to decode in a loader (and was replaced)."""
    failed = datamodule.decode_failures()
    return [i for i, (path, _) in enumerate(items) if path in failed]


@contextmanager
def input_size(datamodule, size: int | None):
    """Feed `size` px images while inside (None: the data module's own size), then restore."""
    before = datamodule.requested_image_size
    if size:
        datamodule.requested_image_size = int(size)
    try:
        yield
    finally:
        datamodule.requested_image_size = before
