"""The fastai baseline of the quality benchmark (runs in its own virtualenv, fastai 2.8).

fastai's own recipe as its docs teach it: `vision_learner(dls, "tf_efficientnet_lite0")`
with `aug_transforms()`, then `learn.fine_tune(epochs)` (1 frozen epoch, then `epochs`
unfrozen at base_lr 2e-3 with lr_mult 100). The body gets the same bundled ImageNet
weights as the template (a timm state dict file, checked key by key), and the input is
normalised with the backbone's own mean/std (0.5), as vision_learner does for a
pretrained timm model. TTA is fastai's `learn.tta()` (4 augmented passes, beta 0.25).
Prints one JSON line.

`--multi`: a multi-label set with Planet-style CSV labels (quality_data.py's LABELS), as
fastai's Planet lesson reads it: `ImageDataLoaders.from_csv(label_delim=" ",
valid_col="is_valid")` (MultiCategoryBlock, BCEWithLogitsLossFlat), metrics
`accuracy_multi` and `FBetaMulti(2, average="samples")`, the same `fine_tune`; test tags at
p >= 0.5 (accuracy_multi's default), scored by samples-F2 (scikit-learn's `fbeta_score`,
which fastai's FBetaMulti wraps) and exact match.

`--csv`: a single-label set whose labels come in a CSV (`id,label`, as Kaggle's dog-breeds
competition): `ImageDataLoaders.from_csv(valid_col="is_valid")` (CategoryBlock), the same
`fine_tune`, scored as the folder sets are on the test CSV's labels.

    .venv-fastai/bin/python benchmarks/quality_fastai.py --root <set> --size 96 --weights body.pth
"""

from __future__ import annotations

import argparse
import csv
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from fastai.vision.all import (
    FBetaMulti,
    ImageDataLoaders,
    Normalize,
    Resize,
    accuracy,
    accuracy_multi,
    aug_transforms,
    get_image_files,
    set_seed,
    vision_learner,
)
from sklearn.metrics import fbeta_score

warnings.filterwarnings("ignore")

# quality_data.py's CSV_LAYOUT and TEST_LABELS (this virtualenv has no imgclf to import).
LABELS, FOLDER, SUFFIX, VALID_COLUMN, TEST_LABELS = (
    "labels.csv",
    "train",
    ".png",
    "is_valid",
    "test_labels.csv",
)


def scores(probs: np.ndarray, labels: np.ndarray) -> dict:
    p = np.clip(probs[np.arange(len(labels)), labels], 1e-15, 1.0)
    return {"acc": float((probs.argmax(1) == labels).mean()), "logloss": float(-np.log(p).mean())}


def tag_scores(probs: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict:
    """Samples-F2, exact match and BCE log-loss of N x C tag probabilities at one threshold."""
    predicted = probs >= threshold
    p = np.clip(probs, 1e-15, 1 - 1e-15)
    exact = float((predicted == labels.astype(bool)).all(axis=1).mean())
    return {
        "acc": exact,
        "exact": exact,
        "f2": float(fbeta_score(labels, predicted, beta=2, average="samples", zero_division=1)),
        "logloss": float(-(labels * np.log(p) + (1 - labels) * np.log(1 - p)).mean()),
    }


def test_rows(root: Path) -> list[tuple[str, list[str]]]:
    """(id, labels) of the test CSV: the id in the first column, the label or tags next."""
    with open(root / TEST_LABELS, newline="") as handle:
        return [(r[0], r[1].split()) for r in list(csv.reader(handle))[1:]]


def multi_hot(rows: list, vocab: list[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(vocab)}
    labels = np.zeros((len(rows), len(vocab)), np.float32)
    for row, (_, tags) in enumerate(rows):
        labels[row, [index[t] for t in tags]] = 1.0
    return labels


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--weights", type=Path, required=True, help="timm body state dict")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--multi", action="store_true", help="multi-label CSV set")
    parser.add_argument("--csv", action="store_true", help="single-label set, labels in a CSV")
    args = parser.parse_args()
    set_seed(args.seed, reproducible=True)
    common = {
        "item_tfms": Resize(args.size),
        "batch_tfms": [*aug_transforms(), Normalize.from_stats([0.5] * 3, [0.5] * 3)],
        "bs": args.batch_size,
        "num_workers": args.workers,
    }
    if args.multi or args.csv:
        dls = ImageDataLoaders.from_csv(
            args.root,
            csv_fname=LABELS,
            folder=FOLDER,
            suff=SUFFIX,
            label_delim=" " if args.multi else None,
            valid_col=VALID_COLUMN,
            **common,
        )
        metrics = [accuracy_multi, FBetaMulti(2.0, average="samples")] if args.multi else accuracy
    else:
        dls = ImageDataLoaders.from_folder(args.root, train="train", valid="valid", **common)
        metrics = accuracy
    started = time.perf_counter()
    learn = vision_learner(
        dls, "tf_efficientnet_lite0", pretrained=False, normalize=False, metrics=metrics
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

    if args.multi:  # test images by the CSV's rows, labels from it in the vocab's order
        rows = test_rows(args.root)
        test_files = [args.root / "test" / f"{name}{SUFFIX}" for name, _ in rows]
        labels = multi_hot(rows, list(dls.vocab))
        with learn.no_bar():
            valid_probs, valid_labels = learn.get_preds(dl=dls.valid)
            plain, _ = learn.get_preds(dl=dls.test_dl(test_files))
            tta, _ = learn.tta(dl=dls.test_dl(test_files))
        valid = tag_scores(valid_probs.numpy(), valid_labels.numpy())
        test, test_tta = tag_scores(plain.numpy(), labels), tag_scores(tta.numpy(), labels)
    elif args.csv:  # test images by the CSV's rows, their labels as vocab indices
        rows = test_rows(args.root)
        test_files = [args.root / "test" / f"{name}{SUFFIX}" for name, _ in rows]
        labels = np.array([list(dls.vocab).index(tags[0]) for _, tags in rows])
        with learn.no_bar():
            valid_probs, valid_labels = learn.get_preds(dl=dls.valid)
            plain, _ = learn.get_preds(dl=dls.test_dl(test_files))
            tta, _ = learn.tta(dl=dls.test_dl(test_files))
        valid = scores(valid_probs.numpy(), valid_labels.numpy())
        test, test_tta = scores(plain.numpy(), labels), scores(tta.numpy(), labels)
    else:
        test_files = get_image_files(args.root / "test")
        test_dl = dls.test_dl(test_files, with_labels=True)
        with learn.no_bar():
            valid_probs, valid_labels = learn.get_preds(dl=dls.valid)
            plain, labels = learn.get_preds(dl=test_dl)
            tta, _ = learn.tta(dl=dls.test_dl(test_files, with_labels=True))
        valid = scores(valid_probs.numpy(), valid_labels.numpy())
        test = scores(plain.numpy(), labels.numpy())
        test_tta = scores(tta.numpy(), labels.numpy())
    loader = "from_folder"
    if args.multi or args.csv:
        loader = f"from_csv, {'MultiCategoryBlock' if args.multi else 'CategoryBlock'}"
    result = {
        "system": "fastai",
        "train_seconds": round(train_seconds, 2),
        "valid": valid,
        "test": test,
        "test_tta": test_tta,
        "sizes": {"train": len(dls.train_ds), "valid": len(dls.valid_ds), "test": len(test_files)},
        "settings": f"{loader}, vision_learner + fine_tune({args.epochs}), aug_transforms(), "
        f"batch {args.batch_size}",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
