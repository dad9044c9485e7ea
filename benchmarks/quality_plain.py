"""The plain PyTorch baseline of the quality benchmark: a short loop anyone would write.

Same backbone and weights as the template (timm `tf_efficientnet_lite0` with the bundled
ImageNet weights, loaded from a state dict file), same image size: 1 epoch of a new linear
head on the frozen body, then `--epochs` one-cycle AdamW epochs of everything at 2e-3,
random resized crops and flips, label smoothing 0.1. TTA as fastai does it: 4 augmented
passes averaged, blended 0.75 / 0.25 with the plain pass. Prints one JSON line.

    python benchmarks/quality_plain.py --root <set> --size 96 --weights body.pth
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

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


def transforms(size: int):
    tail = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]
    train = v2.Compose(
        [v2.RandomResizedCrop(size, scale=(0.35, 1.0), antialias=True), v2.RandomHorizontalFlip()]
        + tail
    )
    valid = v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)] + tail)
    return train, valid


@torch.no_grad()
def predict(model, loader) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    probs, labels = [], []
    for x, y in loader:
        probs.append(model(x.contiguous(memory_format=torch.channels_last)).softmax(1))
        labels.append(y)
    return torch.cat(probs).numpy(), torch.cat(labels).numpy()


def scores(probs: np.ndarray, labels: np.ndarray) -> dict:
    p = np.clip(probs[np.arange(len(labels)), labels], 1e-15, 1.0)
    return {"acc": float((probs.argmax(1) == labels).mean()), "logloss": float(-np.log(p).mean())}


def one_cycle(optimizer, lr: float, steps: int):
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(1, steps))


def run_epochs(model, loader, optimizer, scheduler, epochs: int, smoothing: float) -> None:
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            loss = F.cross_entropy(
                model(x.contiguous(memory_format=torch.channels_last)), y, label_smoothing=smoothing
            )
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
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    classes = sorted(p.name for p in (args.root / "train").iterdir() if p.is_dir())
    train_tf, valid_tf = transforms(args.size)
    data = {s: Folder(args.root / s, classes, valid_tf) for s in ("train", "valid", "test")}
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
    run_epochs(model, loader, optimizer, one_cycle(optimizer, args.lr, len(loader)), 1, 0.1)
    for p in model.parameters():
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    schedule = one_cycle(optimizer, args.lr, len(loader) * args.epochs)
    run_epochs(model, loader, optimizer, schedule, args.epochs, 0.1)
    train_seconds = time.perf_counter() - started

    def eval_loader(split: str, transform) -> DataLoader:
        data[split].transform = transform
        return DataLoader(data[split], args.batch_size, num_workers=args.workers)

    valid_probs, valid_labels = predict(model, eval_loader("valid", valid_tf))
    plain, labels = predict(model, eval_loader("test", valid_tf))
    augmented = []
    for i in range(args.tta):
        torch.manual_seed(args.seed + 1000 + i)
        augmented.append(predict(model, eval_loader("test", train_tf))[0])
    tta = 0.75 * np.mean(augmented, axis=0) + 0.25 * plain if augmented else plain
    result = {
        "system": "plain",
        "train_seconds": round(train_seconds, 2),
        "valid": scores(valid_probs, valid_labels),
        "test": scores(plain, labels),
        "test_tta": scores(tta, labels),
        "sizes": {s: len(d) for s, d in data.items()},
        "settings": f"1 head epoch + {args.epochs} one-cycle AdamW epochs at {args.lr}, "
        f"label smoothing 0.1, batch {args.batch_size}",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
