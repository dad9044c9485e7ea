"""ImageLoading: from image paths to batches of model input, as every command feeds a
model: the evaluation and training transforms at a size, the seeded DataLoader around an
ImageFileDataset, and the count of files that failed to decode in a loader.

FolderDataModule adds scanning the folders and Lightning's hooks to it; `imgclf predict`
uses it alone (it needs no Lightning).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from imgclf.data.balance import balanced_sampler
from imgclf.data.dataset import ImageFileDataset, Item
from imgclf.data.image_size import auto_image_size, check_image_size_setting
from imgclf.data.images import DEFAULT_MAX_PIXELS
from imgclf.data.preprocess import model_transform
from imgclf.data.replay_loader import ReplayDataLoader
from imgclf.data.transforms import seed_worker, train_transform
from imgclf.data.workers import check_num_workers, loader_workers
from imgclf.task import task_named

# Until `set_data_config` gives the backbone's own (timm's defaults for a 224 px model).
DEFAULT_DATA_CONFIG = {
    "input_size": 224,
    "mean": (0.5, 0.5, 0.5),
    "std": (0.5, 0.5, 0.5),
    "interpolation": "bicubic",
    "crop_pct": 0.875,
}


class ImageLoading:
    """Transforms and loaders of a data configuration (`data.*`: image_size, batch_size,
    num_workers, augment, min_scale, do_flip, seed, pin_memory, persistent_workers,
    max_pixels, auto_augment), for the model's input config (`set_data_config`). `task`
    and `classes` say how labels are encoded (single-label by default)."""

    # Files named in the one warning about unreadable files (summary.json lists all).
    MAX_LISTED = 50
    # image_size=auto: the training originals' median shorter side, measured at setup.
    median_short_side: float | None = None

    def __init__(
        self,
        image_size: int | str | None = None,
        batch_size: int = 64,
        num_workers: int | str = "auto",
        augment: str = "side_on",
        min_scale: float = 0.35,
        do_flip: bool = True,
        seed: int = 42,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        auto_augment: str = "none",
        verify: str = "header",
    ) -> None:
        # The configured input size; None: the backbone's pretrained size; auto: measured.
        self.configured_image_size = check_image_size_setting(image_size)
        self.batch_size = batch_size
        # A number, or auto: per loader, by its size (imgclf.data.workers).
        self.num_workers = check_num_workers(num_workers)
        self.augment = augment
        self.min_scale = min_scale
        self.do_flip = do_flip
        self.seed = seed
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.max_pixels = max_pixels
        self.auto_augment = auto_augment
        self.verify = verify
        self.data_config = dict(DEFAULT_DATA_CONFIG)
        self.task = "single"
        self.classes: list[str] = []
        # Per-file decode-failure counters in shared memory, one per item list.
        self._failure_counters: list[tuple[list[Item], torch.Tensor]] = []

    # -- configuration -------------------------------------------------------------------
    def set_data_config(self, data_config: dict) -> None:
        """Take size, interpolation and crop_pct from the backbone's timm config (the model
        applies its mean/std itself)."""
        self.data_config = dict(data_config)

    @property
    def image_size(self) -> int:
        """The input size of every loader and transform not given its own: the configured
        one, else (null, or auto before setup measured the originals) the backbone's."""
        pretrained = int(self.data_config["input_size"])
        if self.configured_image_size == "auto":
            if self.median_short_side is None:
                return pretrained
            return auto_image_size(self.median_short_side, pretrained)
        return int(self.configured_image_size or pretrained)

    @property
    def image_size_auto(self) -> dict | None:
        """With `image_size=auto` after setup: the size chosen and the training originals'
        median shorter side it came from (summary.json); else None."""
        if self.configured_image_size != "auto" or self.median_short_side is None:
            return None
        return {"chosen": self.image_size, "median_short_side": self.median_short_side}

    def image_size_line(self) -> str | None:
        """The console line saying which size `auto` chose; None without auto."""
        auto = self.image_size_auto
        if auto is None:
            return None
        capped = auto["chosen"] < auto["median_short_side"]
        return (
            f"image size auto: {auto['chosen']} px from the originals' median shorter side "
            f"{auto['median_short_side']:g} px"
            + (f" (capped at the backbone's {auto['chosen']} px)" if capped else "")
        )

    def encode_label(self, label):
        """An item's label as batches carry it: the class index, or (multi-label) a
        multi-hot row of the classes."""
        return task_named(self.task).encode(label, len(self.classes))

    # -- decode failures ---------------------------------------------------------------
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

    def decode_failed_rows(self, items: list[Item]) -> list[int]:
        """Row indices of `items` whose file failed to decode in a loader (and was replaced)."""
        failed = self.decode_failures()
        return [i for i, (path, _) in enumerate(items) if path in failed]

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

    # -- transforms and loaders ----------------------------------------------------------
    def train_transform(
        self, seed: int | None = None, image_size: int | None = None, auto_augment: bool = True
    ):
        """The training augmentation; `auto_augment=False` leaves out TrivialAugment or
        RandAugment (test-time augmentation keeps to the preset's mild changes)."""
        return train_transform(
            self.augment,
            image_size or self.image_size,
            self.data_config["interpolation"],
            min_scale=self.min_scale,
            do_flip=self.do_flip,
            seed=self.seed if seed is None else seed,
            auto_augment=self.auto_augment if auto_augment else "none",
        )

    def eval_transform(self, image_size: int | None = None):
        return model_transform(self.data_config, image_size or self.image_size)

    def loader(
        self,
        items: list[Item],
        transform,
        shuffle: bool = False,
        seed: int | None = None,
        item_seed: int | None = None,
        drop_last: bool = False,
        balance_by: list[int] | None = None,
    ) -> DataLoader:
        """A DataLoader over `items`, seeded: shuffling and the workers' augmentation seeds
        follow `seed` (default: the data seed), and each new epoch's workers draw fresh
        seeds from the generator. `item_seed` instead fixes each item's augmentation.
        Mid-epoch checkpoints resume the loader exactly (ReplayDataLoader). `balance_by`:
        see `loader_for`."""
        encode = self.encode_label if self.task != "single" else None
        dataset = ImageFileDataset(
            items, transform, self.max_pixels, self.failure_counter(items), item_seed, encode
        )
        return self.loader_for(dataset, shuffle, seed, drop_last, balance_by=balance_by)

    def loader_for(
        self,
        dataset,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
        loader_class=ReplayDataLoader,
        worker_init_fn=seed_worker,
        balance_by: list[int] | None = None,
        **extra,
    ) -> DataLoader:
        """The data module's batch size, workers and seeding around any dataset.
        `balance_by`: the dataset's labels, drawn by a class-balanced sampler instead of
        shuffling (its generator is the loader's, so a resume replays it too)."""
        generator = torch.Generator().manual_seed(self.seed if seed is None else seed)
        workers = loader_workers(self.num_workers, len(dataset))
        sampler = None
        if balance_by is not None:
            sampler = balanced_sampler(balance_by, len(self.classes), generator)
        return loader_class(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and workers > 0,
            worker_init_fn=worker_init_fn,
            generator=generator,
            **extra,
        )
