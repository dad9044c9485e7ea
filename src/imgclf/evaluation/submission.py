"""Kaggle-style submission files: `id` (the file stem) and one probability column per class,
rows in natural id order; for two classes also the course's `id,label` file; for
multi-label models Planet's `image_name,tags`; `Prediction` holds what they are written from."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def natural_key(text: str) -> list:
    """'img10' after 'img9': digit runs compare as numbers (Kaggle ids are often numbers)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def write_submission(
    ids: list[str], probs: np.ndarray, classes: list[str], out: Path
) -> list[Path]:
    """`out`: id + one probability column per class, rows in natural id order. Two classes:
    also `<out stem>_label.csv` with `id,label` = p(second class). Returns the files written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    order = sorted(range(len(ids)), key=lambda i: natural_key(ids[i]))
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", *classes])
        for i in order:
            writer.writerow([ids[i], *(f"{p:.6f}" for p in probs[i])])
    written = [out]
    if len(classes) == 2:
        label_file = out.with_name(f"{out.stem}_label{out.suffix or '.csv'}")
        with open(label_file, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "label"])
            for i in order:
                writer.writerow([ids[i], f"{probs[i, 1]:.6f}"])
        written.append(label_file)
    return written


def write_tag_submission(
    ids: list[str], probs: np.ndarray, classes: list[str], thresholds, out: Path
) -> list[Path]:
    """Multi-label: `out` as Planet's `image_name,tags` (the tags at or above their
    threshold, space-separated) and `<out stem>_probs.csv` with one probability column per
    tag. Returns the files written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    order = sorted(range(len(ids)), key=lambda i: natural_key(ids[i]))
    chosen = np.asarray(probs) >= np.asarray(thresholds)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["image_name", "tags"])
        for i in order:
            writer.writerow(
                [ids[i], " ".join(c for c, on in zip(classes, chosen[i], strict=True) if on)]
            )
    probs_file = out.with_name(f"{out.stem}_probs{out.suffix or '.csv'}")
    return [out, *write_submission(ids, probs, classes, probs_file)[:1]]


@dataclass
class Prediction:
    """Probabilities of unlabelled images: `ids[i]` (file stem), `paths[i]` and `probs[i]`
    (clipped when clip_eps is set), in input order; `skipped`: unreadable files, reasons."""

    ids: list[str]
    paths: list[Path]
    probs: np.ndarray
    classes: list[str]
    clip_eps: float | None
    tta: dict
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    # Files that failed to decode when loaded: their rows are the task's uninformed answer.
    decode_failed: list[Path] = field(default_factory=list)
    # Multi-label: the per-class thresholds the tag sets are decoded with; else None.
    thresholds: list[float] | None = None

    def write_submission(self, out: str | Path) -> list[Path]:
        """The Kaggle CSV (and for two classes `<out>_label.csv`); see `write_submission`.
        Multi-label: Planet's `image_name,tags` and `<out>_probs.csv` (`write_tag_submission`)."""
        out = Path(out).expanduser()
        if self.thresholds is not None:
            return write_tag_submission(self.ids, self.probs, self.classes, self.thresholds, out)
        return write_submission(self.ids, self.probs, self.classes, out)
