"""The fastai baseline of the quality benchmark (runs in its own virtualenv, fastai 2.8).

fastai's own recipe as its docs teach it: `vision_learner(dls, "tf_efficientnet_lite0")`
with `aug_transforms()`, then `learn.fine_tune(epochs)` (1 frozen epoch, then `epochs`
unfrozen at base_lr 2e-3 with lr_mult 100). The body gets the same bundled ImageNet
weights as the template (a timm state dict file, checked key by key), and the input is
normalised with the backbone's own mean/std (0.5), as vision_learner does for a
pretrained timm model. TTA is fastai's `learn.tta()` (4 augmented passes, beta 0.25).
Prints one JSON line.

    .venv-fastai/bin/python benchmarks/quality_fastai.py --root <set> --size 96 --weights body.pth
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from fastai.vision.all import (
    ImageDataLoaders,
    Normalize,
    Resize,
    accuracy,
    aug_transforms,
    get_image_files,
    set_seed,
    vision_learner,
)

warnings.filterwarnings("ignore")


def scores(probs: np.ndarray, labels: np.ndarray) -> dict:
    p = np.clip(probs[np.arange(len(labels)), labels], 1e-15, 1.0)
    return {"acc": float((probs.argmax(1) == labels).mean()), "logloss": float(-np.log(p).mean())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--weights", type=Path, required=True, help="timm body state dict")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    set_seed(args.seed, reproducible=True)
    dls = ImageDataLoaders.from_folder(
        args.root,
        train="train",
        valid="valid",
        item_tfms=Resize(args.size),
        batch_tfms=[*aug_transforms(), Normalize.from_stats([0.5] * 3, [0.5] * 3)],
        bs=args.batch_size,
        num_workers=args.workers,
    )
    started = time.perf_counter()
    learn = vision_learner(
        dls, "tf_efficientnet_lite0", pretrained=False, normalize=False, metrics=accuracy
    )
    body = learn.model[0].model
    missing, unexpected = body.load_state_dict(torch.load(args.weights), strict=False)
    assert not missing and set(unexpected) <= {"classifier.weight", "classifier.bias"}, (
        missing,
        unexpected,
    )
    with learn.no_bar(), learn.no_logging():
        learn.fine_tune(args.epochs)
    train_seconds = time.perf_counter() - started

    test_files = get_image_files(args.root / "test")
    test_dl = dls.test_dl(test_files, with_labels=True)
    with learn.no_bar():
        valid_probs, valid_labels = learn.get_preds(dl=dls.valid)
        plain, labels = learn.get_preds(dl=test_dl)
        tta, _ = learn.tta(dl=dls.test_dl(test_files, with_labels=True))
    result = {
        "system": "fastai",
        "train_seconds": round(train_seconds, 2),
        "valid": scores(valid_probs.numpy(), valid_labels.numpy()),
        "test": scores(plain.numpy(), labels.numpy()),
        "test_tta": scores(tta.numpy(), labels.numpy()),
        "sizes": {"train": len(dls.train_ds), "valid": len(dls.valid_ds), "test": len(test_files)},
        "settings": f"vision_learner + fine_tune({args.epochs}), aug_transforms(), "
        f"batch {args.batch_size}",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
