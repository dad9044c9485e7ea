"""Test-time augmentation the fastai way, for labelled and unlabelled image lists.

The plain pass (eval transform) plus `n` passes with the training augmentation; the
augmented probabilities are averaged and then blended with the plain ones:
`(1 - beta) * mean(augmented) + beta * plain`, i.e. 0.75 / 0.25 for fastai's beta 0.25.
Every augmented pass has its own seed and each image's augmentation is drawn from it
and the image's index, so TTA is reproducible, with any number of workers or ranks. Passes run through
`trainer.predict` (`predict_with_tta`: the Trainer's devices and DDP) or, for one process
on the CPU, a plain loop over the loader (`network_pass`: no Lightning); only an N x C
array of probabilities is ever kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import torch

from imgclf.data.dataset import Item
from imgclf.data.loading import ImageLoading
from imgclf.errors import UserError
from imgclf.evaluation.pass_line import PassLine

if TYPE_CHECKING:
    import lightning as L

# One pass: (loader, item count) -> count x C probabilities in item order.
PassRunner = Callable[[object, int], np.ndarray]


def tta_blend(plain: np.ndarray, augmented_mean: np.ndarray, beta: float) -> np.ndarray:
    """fastai's `torch.lerp(augmented, plain, beta)`."""
    return (1.0 - beta) * augmented_mean + beta * plain


@dataclass
class TTAResult:
    """Probabilities of each item, in item order: the plain pass and, if n > 0, the TTA blend."""

    plain: np.ndarray
    tta: np.ndarray | None
    n: int
    beta: float

    @property
    def best(self) -> np.ndarray:
        return self.plain if self.tta is None else self.tta


def predict_items(trainer: L.Trainer, model, loader, count: int) -> np.ndarray:
    """Probabilities (count x C) of every item of `loader`, gathered from all ranks, in
    item order. The Trainer must have a CollectPredictions callback."""
    from imgclf.evaluation.collect import find_collector

    trainer.predict(model, dataloaders=loader, return_predictions=False)
    predictions = find_collector(trainer).result(trainer)
    if len(predictions) != count or not np.array_equal(predictions.indices, np.arange(count)):
        raise RuntimeError(f"predicted {len(predictions)} of {count} images")
    return predictions.probs


def network_pass(model, loader, count: int) -> np.ndarray:
    """Probabilities (count x C) of every item of `loader` in this process: the model's
    logits through its task's activation, batch by batch, without a Trainer."""
    rows = []
    with torch.inference_mode():
        for images, _ in loader:
            rows.append(model.task.activation(model(images)).float())
    probs = torch.cat(rows).numpy() if rows else np.zeros((0, len(model.class_names)), "float32")
    if len(probs) != count:
        raise RuntimeError(f"predicted {len(probs)} of {count} images")
    return probs


def predict_with_tta(
    trainer: L.Trainer,
    model,
    datamodule: ImageLoading,
    items: list[Item],
    image_size: int | None = None,
    n: int = 4,
    beta: float = 0.25,
    seed: int = 0,
) -> TTAResult:
    """The plain pass and `n` augmented passes over `items` at `image_size` (default: the
    data module's size), blended as fastai does, run by the Trainer."""
    run_pass = partial(predict_items, trainer, model)
    return tta_passes(
        run_pass, datamodule, items, image_size, n, beta, seed, trainer.is_global_zero
    )


def tta_passes(
    run_pass: PassRunner,
    datamodule: ImageLoading,
    items: list[Item],
    image_size: int | None = None,
    n: int = 4,
    beta: float = 0.25,
    seed: int = 0,
    show: bool = True,
) -> TTAResult:
    """The plain pass and `n` augmented passes over `items`, each run by `run_pass` (see
    `predict_with_tta`, `network_pass`), on one progress line when `show`."""
    if n < 0 or not 0.0 <= beta <= 1.0:
        raise UserError(f"tta.n must be >= 0 and tta.beta in [0, 1]; got n={n}, beta={beta}")
    line = PassLine(n + 1, len(items), enabled=show)
    line.step()
    plain_loader = datamodule.loader(items, datamodule.eval_transform(image_size))
    plain = run_pass(plain_loader, len(items))
    total = np.zeros_like(plain, dtype=np.float64)
    for i in range(n):
        line.step()
        pass_seed = seed + 1000 * (i + 1)
        transform = datamodule.train_transform(pass_seed, image_size, auto_augment=False)
        loader = datamodule.loader(items, transform, seed=pass_seed, item_seed=pass_seed)
        total += run_pass(loader, len(items))
    line.done()
    if n == 0:
        return TTAResult(plain, None, 0, beta)
    blended = tta_blend(plain, total / n, beta).astype(np.float32)
    return TTAResult(plain, blended, n, beta)
