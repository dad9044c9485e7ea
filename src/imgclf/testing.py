"""Small real image folders for tests and benchmarks (PNG/JPEG files written to disk)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

# One colour per class so a model can learn the folders apart quickly.
CLASS_COLOURS = ((220, 60, 40), (40, 90, 220), (40, 180, 70), (230, 200, 40), (150, 60, 200))


def make_image(colour: Sequence[int], size: int, rng: np.random.Generator) -> Image.Image:
    """A noisy image of one colour with a random darker square: real pixels, easy labels."""
    pixels = np.clip(np.array(colour) + rng.normal(0, 25, (size, size, 3)), 0, 255)
    top, left = rng.integers(0, size // 2, 2)
    pixels[top : top + size // 3, left : left + size // 3] *= 0.4
    return Image.fromarray(pixels.astype(np.uint8))


def make_image_folder(
    root: str | Path,
    classes: Sequence[str] = ("cats", "dogs"),
    n_train: int = 8,
    n_valid: int = 4,
    n_test: int = 0,
    size: int = 48,
    ext: str = "jpg",
    seed: int = 0,
) -> Path:
    """root/train/<class>/*, root/valid/<class>/* (when n_valid) and root/test/* (when n_test)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("valid", n_valid)):
        for index, name in enumerate(classes):
            folder = root / split / name
            for i in range(count):
                folder.mkdir(parents=True, exist_ok=True)
                colour = CLASS_COLOURS[index % len(CLASS_COLOURS)]
                make_image(colour, size, rng).save(folder / f"{name}.{i}.{ext}")
    for i in range(n_test):
        (root / "test").mkdir(parents=True, exist_ok=True)
        colour = CLASS_COLOURS[i % len(classes) % len(CLASS_COLOURS)]
        make_image(colour, size, rng).save(root / "test" / f"{i}.{ext}")
    return root


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`imgclf <args>` in a subprocess, offline, as a user runs it."""
    env = {**os.environ, "WANDB_MODE": "offline", "NO_ALBUMENTATIONS_UPDATE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "imgclf.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def small_run_overrides(root: Path, workdir: Path, batch_size: int = 4) -> list[str]:
    """Hydra overrides for a quick run on a generated folder: 32 px, no workers, and logs
    and feature caches kept under `workdir`."""
    return [
        "data=folder",
        f"data.root={root}",
        "data.image_size=32",
        f"data.batch_size={batch_size}",
        "data.num_workers=0",
        f"paths.log_dir={workdir / 'logs'}",
        f"paths.cache_dir={workdir / 'cache'}",
    ]


def small_datamodule_and_model(root: Path, image_size: int = 32):
    """A scanned FolderDataModule (batch 4, no workers) and the default ImageClassifier
    for its classes, with the model's data config applied."""
    from imgclf.data import FolderDataModule
    from imgclf.model import ImageClassifier

    datamodule = FolderDataModule(root, image_size=image_size, batch_size=4, num_workers=0)
    datamodule.setup("fit")
    torch.manual_seed(0)
    model = ImageClassifier(num_classes=len(datamodule.classes), class_names=datamodule.classes)
    datamodule.set_data_config(model.data_config)
    return datamodule, model


def read_wandb_offline_run(run_dir: Path) -> dict:
    """What an offline W&B run recorded, read from its transaction log (run-*.wandb):
    config keys, history keys, summary keys, and artifacts as (type, name, files).

    The log is a sequence of 32 KiB blocks holding checksummed chunks (header: crc32,
    length, kind 1 full / 2 first / 3 middle / 4 last), each record a protobuf `Record`.
    """
    import struct

    from wandb.proto import wandb_internal_pb2

    def key(item) -> str:
        return item.key or "/".join(item.nested_key)

    data = next(Path(run_dir).glob("run-*.wandb")).read_bytes()
    assert data[:4] == b":W&B", "not a W&B transaction log"
    block, header = 32768, 7
    position, pending, records = 7, b"", []
    while position + header <= len(data):
        if block - position % block < header:  # block trailer too short for a header
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + header])
        if kind == 0:  # zero padding up to the next block
            position += block - position % block
            continue
        chunk = data[position + header : position + header + length]
        position += header + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            records.append(pending)
    run = {"config": set(), "history": set(), "summary": set(), "artifacts": []}
    for raw in records:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run["config"].update(key(item) for item in record.run.config.update)
        elif kind == "config":
            run["config"].update(key(item) for item in record.config.update)
        elif kind == "history":
            run["history"].update(key(item) for item in record.history.item)
        elif kind == "summary":
            run["summary"].update(key(item) for item in record.summary.update)
        elif kind == "artifact":
            files = [entry.path for entry in record.artifact.manifest.contents]
            run["artifacts"].append((record.artifact.type, record.artifact.name, files))
    return run
