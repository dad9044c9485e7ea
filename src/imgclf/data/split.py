"""Scanning the dogscats layout into labelled items: class folders, the seeded validation
split and the per-class cap (the course's sample/ folder)."""

from __future__ import annotations

import random
from pathlib import Path

from imgclf.data.dataset import Item
from imgclf.data.images import list_images


def class_folders(split_dir: Path) -> dict[str, list[Path]]:
    """class name -> its image files, for every non-hidden sub-folder of `split_dir`."""
    folders = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    return {folder.name: list_images(folder) for folder in folders}


def stratified_split(labels: list[int], valid_pct: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, valid): each class gives round(valid_pct * n) of its images (at least
    one when it has two or more) to valid, chosen by a seeded shuffle."""
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    train, valid = [], []
    for label in sorted(by_class):
        indices = by_class[label][:]
        rng.shuffle(indices)
        n_valid = round(valid_pct * len(indices))
        if len(indices) > 1:
            n_valid = min(max(n_valid, 1), len(indices) - 1)
        valid += indices[:n_valid]
        train += indices[n_valid:]
    return sorted(train), sorted(valid)


def split_indices(labels: list, valid_pct: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, valid) indices: stratified for class indices, `multilabel_split` for tag
    tuples (multi-label items)."""
    if any(isinstance(label, tuple) for label in labels):
        tags = [label if isinstance(label, tuple) else (label,) for label in labels]
        return multilabel_split(tags, valid_pct, seed)
    return stratified_split(labels, valid_pct, seed)


def multilabel_split(
    labels: list[tuple[int, ...]], valid_pct: float, seed: int
) -> tuple[list[int], list[int]]:
    """Indices (train, valid) of multi-label items: a seeded random round(valid_pct * n)
    to valid, then, rarest tag first, each tag with two or more images gets one into the
    part that lacks it (a tag seen only in training cannot be validated, one seen only in
    validation is never learnt)."""
    order = list(range(len(labels)))
    random.Random(seed).shuffle(order)
    n_valid = min(max(round(valid_pct * len(order)), 1), len(order) - 1) if len(order) > 1 else 0
    in_valid = {i: rank < n_valid for rank, i in enumerate(order)}
    holders: dict[int, list[int]] = {}
    for i in order:
        for tag in labels[i]:
            holders.setdefault(tag, []).append(i)
    for tag in sorted(holders, key=lambda t: (len(holders[t]), t)):
        images = holders[tag]
        if len(images) < 2:
            continue
        for side in (True, False):  # no image of the tag in valid, then none in train
            if not any(in_valid[i] == side for i in images):
                # Move the image carrying the fewest other tags: it disturbs the least.
                moved = min(images, key=lambda i: len(labels[i]))
                in_valid[moved] = side
    valid = sorted(i for i, v in in_valid.items() if v)
    train = sorted(i for i, v in in_valid.items() if not v)
    return train, valid


def sample_split_sizes(per_class: int, valid_pct: float) -> tuple[int, int]:
    """(train, valid) images per class of a `per_class` sample, as `stratified_split`
    divides a class of `per_class` images: with a valid/ folder the sample has the same
    sizes as without one."""
    n_valid = round(valid_pct * per_class)
    if per_class > 1:
        n_valid = min(max(n_valid, 1), per_class - 1)
    return per_class - n_valid, n_valid


def cap_per_class(items: list[Item], per_class: int, seed: int) -> list[Item]:
    """At most `per_class` items of each class, a seeded random choice, original order kept."""
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for index, (_, label) in enumerate(items):
        by_class.setdefault(label, []).append(index)
    keep = set()
    for indices in by_class.values():
        keep.update(rng.sample(indices, min(per_class, len(indices))))
    return [item for index, item in enumerate(items) if index in keep]
