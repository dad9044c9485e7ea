"""The plain PyTorch baseline of the quality benchmark: a short loop anyone would write.

Same backbone and weights as the template (timm `tf_efficientnet_lite0` with the bundled
ImageNet weights, loaded from a state dict file), same image size: 1 epoch of a new linear
head on the frozen body, then `--epochs` one-cycle AdamW epochs of everything at 2e-3,
random resized crops and flips, label smoothing 0.1. TTA as fastai does it: 4 augmented
passes averaged, blended 0.75 / 0.25 with the plain pass. Prints one JSON line.

`--multi`: a multi-label set with Planet-style CSV labels (quality_data.py's LABELS): one
sigmoid per tag, binary cross-entropy on logits (no smoothing), tags predicted at p >= 0.5;
test scores are samples-F2 and exact match of the tag sets (imgclf's `tag_variant_metrics`).
`--csv`: a single-label set whose labels come in a CSV (`id,label`, quality_data.py's
LABELS), trained and scored as the folder sets are.

    python benchmarks/quality_plain.py --root <set> --size 96 --weights body.pth
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.quality_data import CSV_LAYOUT, TEST_LABELS, read_tags  # noqa: E402

MEAN = STD = (0.5, 0.5, 0.5)  # tf_efficientnet_lite0's pretrained config


class Folder(Dataset):
    def __init__(self, root: Path, classes: list[str], transform) -> None:
        self.items = [
            (path, i) for i, name in enumerate(classes) for path in sorted((root / name).glob("*"))
        ]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        path, label = self.items[index]
        with Image.open(path) as image:
            return self.transform(image.convert("RGB")), label


class Tagged(Folder):
    """A LABELS set's images from its CSV rows: multi-hot float targets (`multi`), or the
    class index of each row's one label."""

    def __init__(self, folder: Path, rows: list, classes: list[str], transform, multi: bool):
        index = {name: i for i, name in enumerate(classes)}
        self.items = []
        for name, tags, _ in rows:
            if multi:
                target = torch.zeros(len(classes))
                target[[index[t] for t in tags]] = 1.0
            else:
                target = index[tags[0]]
            self.items.append((folder / f"{name}{CSV_LAYOUT['suffix']}", target))
        self.transform = transform


def tagged_sets(root: Path, transform, multi: bool = True) -> tuple[dict, list[str]]:
    """train/valid/test Tagged sets of a LABELS set and its sorted labels (tags)."""
    rows = read_tags(root / CSV_LAYOUT["labels"])
    classes = sorted({t for _, tags, _ in rows for t in tags})
    folder = root / CSV_LAYOUT["folder"]
    parts = {
        "train": [r for r in rows if not r[2]],
        "valid": [r for r in rows if r[2]],
    }
    data = {split: Tagged(folder, part, classes, transform, multi) for split, part in parts.items()}
    test = read_tags(root / TEST_LABELS)
    data["test"] = Tagged(root / "test", test, classes, transform, multi)
    return data, classes


def tag_scores(probs: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict:
    """Samples-F2, exact match and BCE log-loss of tag probabilities at one threshold."""
    from imgclf.evaluation.tags import tag_variant_metrics

    m = tag_variant_metrics(probs, labels, [threshold] * probs.shape[1], 2.0)
    return {
        "acc": m["exact_match"],
        "exact": m["exact_match"],
        "f2": m["fbeta"],
        "logloss": m["logloss"],
    }


def transforms(size: int):
    tail = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]
    train = v2.Compose(
        [v2.RandomResizedCrop(size, scale=(0.35, 1.0), antialias=True), v2.RandomHorizontalFlip()]
        + tail
    )
    valid = v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)] + tail)
    return train, valid


@torch.no_grad()
def predict(model, loader, multi: bool = False) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    probs, labels = [], []
    for x, y in loader:
        logits = model(x.contiguous(memory_format=torch.channels_last))
        probs.append(logits.sigmoid() if multi else logits.softmax(1))
        labels.append(y)
    return torch.cat(probs).numpy(), torch.cat(labels).numpy()


def scores(probs: np.ndarray, labels: np.ndarray) -> dict:
    p = np.clip(probs[np.arange(len(labels)), labels], 1e-15, 1.0)
    return {"acc": float((probs.argmax(1) == labels).mean()), "logloss": float(-np.log(p).mean())}


def one_cycle(optimizer, lr: float, steps: int):
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(1, steps))


def run_epochs(model, loader, optimizer, scheduler, epochs: int, smoothing: float) -> None:
    """smoothing None: multi-label, binary cross-entropy on logits."""
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            logits = model(x.contiguous(memory_format=torch.channels_last))
            if smoothing is None:
                loss = F.binary_cross_entropy_with_logits(logits, y)
            else:
                loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--weights", type=Path, required=True, help="timm body state dict")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tta", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--multi", action="store_true", help="multi-label CSV set, BCE")
    parser.add_argument("--csv", action="store_true", help="single-label set, labels in a CSV")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    train_tf, valid_tf = transforms(args.size)
    if args.multi or args.csv:
        data, classes = tagged_sets(args.root, valid_tf, multi=args.multi)
    else:
        classes = sorted(p.name for p in (args.root / "train").iterdir() if p.is_dir())
        data = {s: Folder(args.root / s, classes, valid_tf) for s in ("train", "valid", "test")}
    smoothing = None if args.multi else 0.1
    scores_of = tag_scores if args.multi else scores
    data["train"].transform = train_tf
    loader = DataLoader(
        data["train"], args.batch_size, shuffle=True, drop_last=True, num_workers=args.workers
    )

    started = time.perf_counter()
    model = timm.create_model("tf_efficientnet_lite0", num_classes=len(classes))
    missing, unexpected = model.load_state_dict(torch.load(args.weights), strict=False)
    assert set(missing) == {"classifier.weight", "classifier.bias"} and not unexpected
    model = model.to(memory_format=torch.channels_last)
    head = model.get_classifier()
    for p in model.parameters():
        p.requires_grad_(False)
    for p in head.parameters():
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(head.parameters(), lr=args.lr)
    run_epochs(model, loader, optimizer, one_cycle(optimizer, args.lr, len(loader)), 1, smoothing)
    for p in model.parameters():
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    schedule = one_cycle(optimizer, args.lr, len(loader) * args.epochs)
    run_epochs(model, loader, optimizer, schedule, args.epochs, smoothing)
    train_seconds = time.perf_counter() - started

    def eval_loader(split: str, transform) -> DataLoader:
        data[split].transform = transform
        return DataLoader(data[split], args.batch_size, num_workers=args.workers)

    valid_probs, valid_labels = predict(model, eval_loader("valid", valid_tf), args.multi)
    plain, labels = predict(model, eval_loader("test", valid_tf), args.multi)
    augmented = []
    for i in range(args.tta):
        torch.manual_seed(args.seed + 1000 + i)
        augmented.append(predict(model, eval_loader("test", train_tf), args.multi)[0])
    tta = 0.75 * np.mean(augmented, axis=0) + 0.25 * plain if augmented else plain
    result = {
        "system": "plain",
        "train_seconds": round(train_seconds, 2),
        "valid": scores_of(valid_probs, valid_labels),
        "test": scores_of(plain, labels),
        "test_tta": scores_of(tta, labels),
        "sizes": {s: len(d) for s, d in data.items()},
        "settings": f"1 head epoch + {args.epochs} one-cycle AdamW epochs at {args.lr}, "
        + ("BCE, threshold 0.5" if args.multi else "label smoothing 0.1")
        + f", batch {args.batch_size}",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
