"""`predict(model, folder_or_paths)`: class probabilities for unlabelled images, with TTA
and clipping, ready to write as a Kaggle submission. Images stream through the DataLoader;
only the probabilities are kept."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from imgclf.data.dataset import UNLABELLED
from imgclf.data.loading import ImageLoading
from imgclf.errors import UserError
from imgclf.evaluation.clip_setting import parse_eps
from imgclf.evaluation.clipping import best_eps, clip_probs
from imgclf.evaluation.inputs import input_images
from imgclf.evaluation.submission import Prediction
from imgclf.evaluation.tta import PassRunner, predict_items, tta_passes

if TYPE_CHECKING:
    import lightning as L

    from imgclf.data.folder import FolderDataModule


def to_tensor(probs: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(probs, dtype=np.float64))


def predict(
    model,
    source,
    datamodule: FolderDataModule | None = None,
    trainer: L.Trainer | None = None,
    tta_n: int = 4,
    tta_beta: float = 0.25,
    clip="auto",
    seed: int | None = None,
    image_size: int | None = None,
) -> Prediction:
    """Class probabilities for unlabelled images, with TTA and clipping.

    source: a folder (searched recursively; unreadable files skipped and listed) or a list
    of image paths. datamodule: gives the transforms, batch size and workers, and with
    `clip="auto"` the validation images on which eps is chosen (lowest log-loss on a grid);
    default a FolderDataModule on the model's settings (then clip must be a number or
    None). trainer: default a quiet one-device Trainer. TTA and image_size as in
    `interpret`. Under DDP every rank must call this.
    """
    from imgclf.evaluation.collect import prediction_trainer

    eps = parse_eps(clip)
    paths, skipped = prediction_inputs(source, datamodule)
    if datamodule is None:
        if eps == "auto":
            raise UserError(
                "clip='auto' chooses eps on validation images: pass datamodule=, or clip=0.05"
            )
        from imgclf.data.folder import FolderDataModule

        datamodule = FolderDataModule(".", num_workers=0)
    datamodule.set_data_config(model.data_config)
    seed = datamodule.seed if seed is None else seed
    trainer = trainer or prediction_trainer()
    size = image_size or model.image_size or datamodule.image_size
    tta = {"n": tta_n, "beta": tta_beta, "seed": seed}
    run_pass = partial(predict_items, trainer, model)
    if eps == "auto":
        eps = validation_eps(run_pass, model, datamodule, size, tta, trainer.is_global_zero)
    return predict_paths(
        run_pass, model, paths, datamodule, size, tta, eps, skipped, trainer.is_global_zero
    )


def predict_paths(
    run_pass: PassRunner,
    model,
    paths: list[Path],
    loading: ImageLoading,
    image_size: int,
    tta: dict,
    eps: float | None,
    skipped: list[tuple[Path, str]] = (),
    show: bool = True,
) -> Prediction:
    """The Prediction of readable `paths`: TTA passes (`tta`: n, beta, seed) at
    `image_size`, each run by `run_pass` (a Trainer's or `network_pass`), clipped at `eps`.
    `model`: an ImageClassifier or a Network (task, class names, thresholds)."""
    items = [(path, UNLABELLED) for path in paths]
    result = tta_passes(run_pass, loading, items, image_size, **tta, show=show)
    probs = clip_probs(to_tensor(result.best), eps or 0.0, model.task).numpy()
    # A file that failed to decode was replaced by another image inside the loader: its
    # row would be that image's answer, so it gets the uninformed 1/C instead.
    probs[failed := loading.decode_failed_rows(items)] = model.task.uninformed(probs.shape[1])
    return Prediction(
        ids=[path.stem for path in paths],
        paths=paths,
        probs=probs,
        classes=model.class_names,
        clip_eps=eps,
        tta=tta,
        skipped=list(skipped),
        decode_failed=[paths[i] for i in failed],
        thresholds=decode_thresholds(model),
    )


def decode_thresholds(model) -> list[float] | None:
    """A multi-label model's thresholds (0.5 each until validated); None for single-label."""
    if model.task.name != "multi":
        return None
    return list(model.thresholds or [0.5] * len(model.class_names))


def prediction_inputs(source, datamodule) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(readable paths, skipped files with reasons) of a folder or a list of paths."""
    if isinstance(source, (str, Path)):
        if datamodule:
            return input_images(source, datamodule.verify, datamodule.max_pixels)
        return input_images(source)
    paths = [Path(p) for p in source]
    if not paths:
        raise UserError("no images to predict")
    return paths, []


def validation_eps(
    run_pass: PassRunner, model, datamodule, image_size: int, tta: dict, show: bool = True
) -> float:
    """clip=auto: the eps with the lowest log-loss on the validation images (their TTA
    passes run by `run_pass`)."""
    datamodule.setup("validate")
    if not datamodule.valid_items:
        raise UserError("clip=auto needs validation images; give data.root or a number, clip=0.05")
    items = datamodule.valid_items
    valid = tta_passes(run_pass, datamodule, items, image_size, **tta, show=show)
    labels = model.task.encode_all([y for _, y in items], len(model.class_names))
    return best_eps(to_tensor(valid.best), to_tensor(labels).long(), task=model.task)
