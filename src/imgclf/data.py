"""FolderDataModule: the Dogs-vs-Cats folder layout as a LightningDataModule.

root/train/<class>/*.jpg     required, one folder per class
root/valid/<class>/*.jpg     optional; without it a stratified valid_pct split of train
root/test/**/*.jpg           optional, unlabelled (flat or nested)
"""

from __future__ import annotations

import random
import warnings
import zlib
from collections import Counter
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from imgclf.errors import UserError
from imgclf.gpu_augment import check_decode, device_train_loader
from imgclf.images import (
    DEFAULT_MAX_PIXELS,
    VERIFY_MODES,
    list_images,
    load_rgb,
    unreadable_reason,
)
from imgclf.replay_loader import ReplayDataLoader
from imgclf.rng_state import set_transform_rng_state, transform_rng_state
from imgclf.transforms import (
    PRESETS,
    eval_transform,
    min_decode_side,
    seed_worker,
    train_transform,
)

Item = tuple[Path, int]
UNLABELLED = -1


class ImageFileDataset(Dataset):
    """(path, label) items decoded with PIL and transformed with albumentations.

    JPEGs decode at a reduced scale when the transform's smallest useful input side
    allows it (`min_decode_side`): the same pixels reach the crop, for less decoding work.

    A file that passed the setup scan but fails to decode now (truncated data, changed or
    deleted since) does not end the epoch: another item of the dataset takes its place
    and `failures[index]` counts it. `failures` lives in shared memory, created in the
    main process, so counts made inside DataLoader worker processes reach the main one.
    Within an epoch each index goes to one worker, so the increments never race.
    """

    # How many other items to try before giving up on a batch slot.
    MAX_REPLACEMENTS = 16

    def __init__(
        self,
        items: list[Item],
        transform,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        failures: torch.Tensor | None = None,
        item_seed: int | None = None,
    ) -> None:
        self.items = items
        self.transform = transform
        self.max_pixels = max_pixels
        # With a seed, item i's augmentation is drawn from seed + i: the same whichever
        # worker or DDP rank loads it (test-time augmentation must not depend on sharding).
        self.item_seed = item_seed
        if failures is None:
            failures = torch.zeros(len(items), dtype=torch.int32).share_memory_()
        self.failures = failures
        self.min_side = min_decode_side(transform)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        for attempt in range(self.MAX_REPLACEMENTS + 1):
            # The replacement is a seeded pseudo-random other item, so a run of broken
            # neighbouring files does not all fall back onto the same image.
            candidate = index if attempt == 0 else replacement_index(index, attempt, len(self))
            path, label = self.items[candidate]
            try:
                pixels = load_rgb(path, self.max_pixels, min_side=self.min_side)
            except Exception:  # PIL and the OS raise many types for broken files
                self.failures[candidate] += 1
                continue
            if self.item_seed is not None:
                self.transform.set_random_seed(self.item_seed + index)
            return self.transform(image=pixels)["image"], label
        raise UserError(
            f"{self.MAX_REPLACEMENTS + 1} images in a row failed to decode (last: {path}); "
            "are the files still there?"
        )

    # The augmentation's random state, for an exact mid-epoch resume (ReplayDataLoader).
    def rng_state(self) -> list:
        return transform_rng_state(self.transform)

    def set_rng_state(self, state: list) -> None:
        set_transform_rng_state(self.transform, state)


def replacement_index(index: int, attempt: int, length: int) -> int:
    """A deterministic other index for a failed one (crc32 hash: the same in every process)."""
    if length < 2:
        return index
    step = 1 + zlib.crc32(f"{index}:{attempt}".encode()) % (length - 1)
    return (index + step) % length


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


class FolderDataModule(L.LightningDataModule):
    """Train/valid/test image folders with fastai-like augmentation presets.

    Mean/std, interpolation, crop_pct and (unless `image_size` is given) the input size
    come from the model's timm pretrained config via `set_data_config`.
    """

    # Files named in the one warning about unreadable files (summary.json lists all).
    MAX_LISTED = 50

    def __init__(
        self,
        root: str | Path,
        image_size: int | None = None,
        batch_size: int = 64,
        num_workers: int = 2,
        valid_pct: float = 0.2,
        per_class: int | None = None,
        augment: str = "side_on",
        min_scale: float = 0.35,
        do_flip: bool = True,
        seed: int = 42,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        verify: str = "header",
        test_folder: str = "test",
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        decode: str = "cpu",
    ) -> None:
        super().__init__()
        if verify not in VERIFY_MODES:
            raise UserError(
                f"unknown data.verify {verify!r}: choose one of {', '.join(VERIFY_MODES)}"
            )
        if augment not in PRESETS:
            raise UserError(f"unknown data.augment {augment!r}: choose one of {', '.join(PRESETS)}")
        if isinstance(max_pixels, float) and max_pixels.is_integer():
            max_pixels = int(max_pixels)  # data.max_pixels=1e8 on the command line
        if max_pixels is not None and not (
            isinstance(max_pixels, int) and not isinstance(max_pixels, bool) and max_pixels > 0
        ):
            raise UserError(
                f"data.max_pixels must be a positive integer or null, got {max_pixels!r}"
            )
        if not 0.0 < valid_pct < 1.0:
            raise UserError(f"data.valid_pct must be between 0 and 1, got {valid_pct}")
        self.root = Path(root).expanduser()
        self.requested_image_size = image_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.valid_pct = valid_pct
        self.per_class = per_class
        self.augment = augment
        self.min_scale = min_scale
        self.do_flip = do_flip
        self.seed = seed
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.verify = verify
        self.test_folder = test_folder
        self.max_pixels = max_pixels
        # Where the train images are decoded and augmented: cpu (the workers) or gpu (the
        # model's device, imgclf.gpu_augment). Validation and test always use the CPU.
        self.decode = check_decode(decode)
        self.data_config = {
            "input_size": 224,
            "mean": (0.5, 0.5, 0.5),
            "std": (0.5, 0.5, 0.5),
            "interpolation": "bicubic",
            "crop_pct": 0.875,
        }
        self.classes: list[str] = []
        self.train_items: list[Item] = []
        self.valid_items: list[Item] = []
        self.test_items: list[Item] = []
        self.skipped: list[tuple[Path, str]] = []
        # Per-file decode failure counters in shared memory, one tensor per item list.
        self._failure_counters: list[tuple[list[Item], torch.Tensor]] = []
        self._scanned = False

    # -- configuration -------------------------------------------------------------------
    def set_data_config(self, data_config: dict) -> None:
        """Take size, interpolation and crop_pct from the backbone's timm config (the model
        applies its mean/std itself)."""
        self.data_config = dict(data_config)

    @property
    def image_size(self) -> int:
        return int(self.requested_image_size or self.data_config["input_size"])

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    # -- scanning ------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self._scanned:  # Lightning calls setup again inside fit; scan once
            return
        if not self.root.is_dir():
            raise UserError(f"data.root {self.root} is not a folder")
        train_dir, valid_dir, test_dir = (
            self.root / name for name in ("train", "valid", self.test_folder)
        )
        if not train_dir.is_dir():
            raise UserError(
                f"no train/ folder in {self.root}: expected {self.root}/train/<class>/*.jpg"
            )
        train_folders = class_folders(train_dir)
        self.classes = sorted(train_folders)
        if not self.classes:
            raise UserError(f"no class folders in {train_dir}: expected {train_dir}/<class>/*.jpg")
        if len(self.classes) < 2:
            raise UserError(
                f"only one class folder in {train_dir} ({self.classes[0]}): need at least two"
            )
        for name, files in train_folders.items():
            if not files:
                warnings.warn(f"class folder {train_dir / name} holds no images", stacklevel=2)
        train_items = self._labelled(train_folders)
        if not train_items:
            raise UserError(f"no images in {train_dir} (extensions: jpg jpeg png bmp webp tif)")

        if valid_dir.is_dir():
            valid_folders = class_folders(valid_dir)
            if sorted(valid_folders) != self.classes:
                only_valid = sorted(set(valid_folders) - set(self.classes))
                only_train = sorted(set(self.classes) - set(valid_folders))
                raise UserError(
                    f"valid/ classes differ from train/: only in valid: {only_valid or '-'}; "
                    f"only in train: {only_train or '-'}"
                )
            valid_items = self._labelled(valid_folders)
        else:
            train_idx, valid_idx = stratified_split(
                [y for _, y in train_items], self.valid_pct, self.seed
            )
            train_items, valid_items = (
                [train_items[i] for i in train_idx],
                [train_items[i] for i in valid_idx],
            )

        if self.per_class:
            train_items = cap_per_class(train_items, self.per_class, self.seed)
            valid_items = cap_per_class(valid_items, self.per_class, self.seed + 1)
        test_items = [(p, UNLABELLED) for p in list_images(test_dir)] if test_dir.is_dir() else []

        self.train_items = self._readable(train_items)
        self.valid_items = self._readable(valid_items)
        self.test_items = self._readable(test_items)
        if not self.train_items:
            raise UserError(f"none of the images in {train_dir} can be read")
        if self.skipped:
            shown = self.MAX_LISTED
            listing = "; ".join(f"{path} ({why})" for path, why in self.skipped[:shown])
            more = f" and {len(self.skipped) - shown} more" if len(self.skipped) > shown else ""
            warnings.warn(
                f"skipped {len(self.skipped)} unreadable files: {listing}{more}", stacklevel=2
            )
        self._scanned = True

    def _labelled(self, folders: dict[str, list[Path]]) -> list[Item]:
        index = {name: i for i, name in enumerate(self.classes)}
        return [(path, index[name]) for name in sorted(folders) for path in folders[name]]

    def _readable(self, items: list[Item]) -> list[Item]:
        kept = []
        for path, label in items:
            reason = unreadable_reason(path, self.verify, self.max_pixels)
            if reason is None:
                kept.append((path, label))
            else:
                self.skipped.append((path, reason))
        return kept

    def failure_counter(self, items: list[Item]) -> torch.Tensor:
        """The shared decode-failure counter of an item list (one per list, kept across
        epochs and stages, so every loader over `train_items` adds to the same counts)."""
        for known, counter in self._failure_counters:
            if known is items:
                return counter
        counter = torch.zeros(len(items), dtype=torch.int32).share_memory_()
        self._failure_counters.append((items, counter))
        return counter

    def decode_failures(self) -> dict[Path, int]:
        """Files that failed to decode inside a loader since setup -> how many times."""
        failed: dict[Path, int] = {}
        for items, counter in self._failure_counters:
            for index in torch.nonzero(counter).flatten().tolist():
                path = items[index][0]
                failed[path] = failed.get(path, 0) + int(counter[index])
        return failed

    def report_decode_failures(self) -> dict[Path, int]:
        """Warn once about files replaced because they failed to decode; return them."""
        failed = self.decode_failures()
        if failed:
            shown = list(failed.items())[: self.MAX_LISTED]
            listing = "; ".join(f"{path} ({n}x)" for path, n in shown)
            more = f" and {len(failed) - len(shown)} more" if len(failed) > len(shown) else ""
            warnings.warn(
                f"{len(failed)} files passed the setup scan but failed to decode "
                f"{sum(failed.values())} times, each time replaced by another image: "
                f"{listing}{more} (data.verify=full finds them at setup)",
                stacklevel=2,
            )
        return failed

    def class_counts(self, split: str = "train") -> dict[str, int]:
        counts = Counter(label for _, label in getattr(self, f"{split}_items"))
        return {name: counts.get(i, 0) for i, name in enumerate(self.classes)}

    # -- transforms and loaders ----------------------------------------------------------
    def train_transform(self, seed: int | None = None):
        cfg = self.data_config
        return train_transform(
            self.augment,
            self.image_size,
            cfg["interpolation"],
            min_scale=self.min_scale,
            do_flip=self.do_flip,
            seed=self.seed if seed is None else seed,
        )

    def eval_transform(self):
        cfg = self.data_config
        return eval_transform(self.image_size, cfg["interpolation"], cfg["crop_pct"])

    def loader(
        self,
        items: list[Item],
        transform,
        shuffle: bool = False,
        seed: int | None = None,
        item_seed: int | None = None,
        drop_last: bool = False,
    ) -> DataLoader:
        """A DataLoader over `items`, seeded: shuffling and the workers' augmentation seeds
        follow `seed` (default: the data seed), and each new epoch's workers draw fresh
        seeds from the generator. `item_seed` instead fixes each item's augmentation. Mid-epoch checkpoints resume the loader exactly (ReplayDataLoader)."""
        dataset = ImageFileDataset(
            items, transform, self.max_pixels, self.failure_counter(items), item_seed
        )
        return ReplayDataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            worker_init_fn=seed_worker,
            generator=torch.Generator().manual_seed(self.seed if seed is None else seed),
        )

    def train_dataloader(self) -> DataLoader:
        # Like fastai, training drops the last incomplete batch: a batch of one image
        # cannot go through the head's BatchNorm in training mode.
        drop_last = len(self.train_items) > self.batch_size
        if self.decode == "gpu":
            return device_train_loader(self, drop_last)
        return self.loader(
            self.train_items, self.train_transform(), shuffle=True, drop_last=drop_last
        )

    def val_dataloader(self) -> DataLoader:
        return self.loader(self.valid_items, self.eval_transform())

    def test_dataloader(self) -> DataLoader:
        return self.loader(self.test_items, self.eval_transform())

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()
