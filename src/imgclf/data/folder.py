"""FolderDataModule: the Dogs-vs-Cats folder layout as a LightningDataModule.

root/train/<class>/*.jpg     required, one folder per class
root/valid/<class>/*.jpg     optional; without it a stratified valid_pct split of train
root/test/**/*.jpg           optional, unlabelled (flat or nested)
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader

from imgclf.data.auto_augment import check_auto_augment
from imgclf.data.balance import check_balance, class_weights, imbalance_message
from imgclf.data.dataset import UNLABELLED, Item
from imgclf.data.gpu_augment import check_decode, device_train_loader
from imgclf.data.image_size import median_short_side, sample_paths
from imgclf.data.images import DEFAULT_MAX_PIXELS, list_images, unreadable_reason
from imgclf.data.loading import ImageLoading
from imgclf.data.settings import checked_settings
from imgclf.data.split import cap_per_class, class_folders, sample_split_sizes, split_indices
from imgclf.errors import UserError
from imgclf.task import choose_task


class FolderDataModule(L.LightningDataModule, ImageLoading):
    """Train/valid/test image folders with fastai-like augmentation presets.

    Mean/std, interpolation, crop_pct and (unless `image_size` is given) the input size
    come from the model's timm pretrained config via `set_data_config`. Every loader and
    transform takes an `image_size` argument (a recipe stage's own size, progressive
    resizing); without it they use `image_size`: a number, None (the backbone's pretrained
    size) or "auto" (from the training originals, imgclf.data.image_size). `task`: auto,
    single or multi (imgclf.task); after setup, the one chosen from the labels.
    """

    def __init__(
        self,
        root: str | Path,
        image_size: int | str | None = None,
        batch_size: int = 64,
        num_workers: int | str = "auto",
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
        auto_augment: str = "none",
        balance: str = "none",
        task: str = "auto",
    ) -> None:
        super().__init__()
        max_pixels = checked_settings(verify, augment, max_pixels, valid_pct, min_scale)
        ImageLoading.__init__(
            self,
            image_size=image_size,
            batch_size=batch_size,
            num_workers=num_workers,
            augment=augment,
            min_scale=min_scale,
            do_flip=do_flip,
            seed=seed,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers,
            max_pixels=max_pixels,
            verify=verify,
        )
        self.root = Path(str(root)).expanduser()
        self.valid_pct = valid_pct
        self.per_class = per_class
        self.test_folder = str(test_folder)  # a number in the config names a folder too
        # Where the train images are decoded and augmented: cpu (the workers) or gpu (the
        # model's device, imgclf.gpu_augment). Validation and test always use the CPU.
        self.decode = check_decode(decode)
        # torchvision's TrivialAugment/RandAugment after the crop (train loader only), and
        # the class balance (none, sampler, loss_weights).
        self.auto_augment, self.balance = checked_options(self.decode, auto_augment, balance)
        self.task_setting, self.task = task, "single"
        self.train_items, self.valid_items, self.test_items = [], [], []
        # Unreadable files; files a label source left out (no label, not found).
        self.skipped, self.label_skipped = [], []
        self._scanned = False

    # -- configuration -------------------------------------------------------------------
    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    # -- scanning ------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self._scanned:  # Lightning calls setup again inside fit; scan once
            return
        if not self.root.is_dir():
            raise UserError(f"data.root {self.root} is not a folder")
        test_dir = self.root / self.test_folder
        train_items, valid_items = self.scan_labelled()
        self.task = choose_task(
            self.task_setting, any(isinstance(y, tuple) for _, y in train_items)
        )
        check_task_fits(self.task, self.balance, self.decode, self.per_class)
        test_items = [(p, UNLABELLED) for p in list_images(test_dir)] if test_dir.is_dir() else []

        self.train_items = self._readable(train_items)
        self.valid_items = self._readable(valid_items)
        self.test_items = self._readable(test_items)
        if not self.train_items:
            raise UserError(f"none of the images in {self.train_source} can be read")
        if self.skipped:
            scan_warning(skip_message("unreadable files", self.skipped))
        # Files a label source left out (no label, not found) join the unreadable ones in
        # `skipped` (summary.json lists them all); their warning came from the scan.
        self.skipped = self.label_skipped + self.skipped
        unbalanced = imbalance_message(self.class_counts("train"))
        if unbalanced:
            scan_warning(unbalanced)
        if self.configured_image_size == "auto":
            paths = sample_paths([path for path, _ in self.train_items], seed=self.seed)
            self.median_short_side = median_short_side(paths)
        self._scanned = True

    @property
    def train_source(self) -> Path:
        """Where the labelled training images come from (for messages)."""
        return self.root / "train"

    def scan_labelled(self) -> tuple[list[Item], list[Item]]:
        """(train, valid) labelled items and `self.classes`; label sources other than class
        folders (a CSV, file names) override this."""
        train_dir, valid_dir = self.root / "train", self.root / "valid"
        train_items = self._scan_train(train_dir)
        # data.per_class samples the whole folder before the split, like the course's
        # sample/: per_class=50 and valid_pct 0.2 give 40 train and 10 valid images a class.
        if self.per_class and not valid_dir.is_dir():
            train_items = cap_per_class(train_items, self.per_class, self.seed)
        train_items, valid_items = self._scan_valid(valid_dir, train_items)
        if self.per_class and valid_dir.is_dir():
            return self.sampled_parts(train_items, valid_items)
        return train_items, valid_items

    def sampled_split(self, items: list[Item]) -> tuple[list[Item], list[Item]]:
        """(train, valid) of labelled items by the seeded `valid_pct` split, after the
        `per_class` sample (when set) of all of them."""
        if self.per_class:
            items = cap_per_class(items, self.per_class, self.seed)
        train_idx, valid_idx = split_indices([y for _, y in items], self.valid_pct, self.seed)
        return [items[i] for i in train_idx], [items[i] for i in valid_idx]

    def sampled_parts(self, train: list[Item], valid: list[Item]) -> tuple[list[Item], list[Item]]:
        """A given train/valid division capped to the sizes `sampled_split` would give."""
        if not self.per_class:
            return train, valid
        n_train, n_valid = sample_split_sizes(self.per_class, self.valid_pct)
        return cap_per_class(train, n_train, self.seed), cap_per_class(
            valid, n_valid, self.seed + 1
        )

    def label_text(self, label) -> str:
        """An item's label as people read it: the class name, or the tags space-separated."""
        if isinstance(label, tuple):
            return " ".join(self.classes[i] for i in label)
        return self.classes[label]

    def _scan_train(self, train_dir: Path) -> list[Item]:
        """The class names (from train/'s folders) and the labelled training files."""
        if not train_dir.is_dir():
            raise UserError(
                f"no train/ folder in {self.root}: expected {self.root}/train/<class>/*.jpg"
            )
        train_folders = class_folders(train_dir)
        hidden = sorted(p.name for p in train_dir.iterdir() if p.is_dir() and p.name[0] == ".")
        if hidden:
            scan_warning(
                f"ignored hidden folders in {train_dir} (not classes): {', '.join(hidden)}; "
                "rename them without the leading dot to use them",
                stacklevel=4,
            )
        self.classes = sorted(train_folders)
        if not self.classes:
            raise UserError(f"no class folders in {train_dir}: expected {train_dir}/<class>/*.jpg")
        if len(self.classes) < 2:
            raise UserError(
                f"only one class folder in {train_dir} ({self.classes[0]}): need at least two"
            )
        for name, files in train_folders.items():
            if not files:
                scan_warning(f"class folder {train_dir / name} holds no images", stacklevel=4)
        train_items = self._labelled(train_folders)
        if not train_items:
            raise UserError(f"no images in {train_dir} (extensions: jpg jpeg png bmp webp tif)")
        return train_items

    def _scan_valid(self, valid_dir: Path, train_items: list[Item]):
        """(train, valid) items: valid/'s files, or a stratified split of train's."""
        if not valid_dir.is_dir():
            labels = [y for _, y in train_items]
            train_idx, valid_idx = split_indices(labels, self.valid_pct, self.seed)
            return [train_items[i] for i in train_idx], [train_items[i] for i in valid_idx]
        valid_folders = class_folders(valid_dir)
        if sorted(valid_folders) != self.classes:
            only_valid = sorted(set(valid_folders) - set(self.classes))
            only_train = sorted(set(self.classes) - set(valid_folders))
            raise UserError(
                f"valid/ classes differ from train/: only in valid: {only_valid or '-'}; "
                f"only in train: {only_train or '-'}"
            )
        return train_items, self._labelled(valid_folders)

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

    def class_counts(self, split: str = "train") -> dict[str, int]:
        """Images per class (multi-label: per tag)."""
        labels = [y for _, y in getattr(self, f"{split}_items")]
        counts = Counter(tag for y in labels for tag in (y if isinstance(y, tuple) else (y,)))
        return {name: counts.get(i, 0) for i, name in enumerate(self.classes)}

    @property
    def loss_weights(self) -> list[float] | None:
        """Per-class weights for the training loss with `balance=loss_weights`, else None."""
        if self.balance != "loss_weights":
            return None
        return class_weights([y for _, y in self.train_items], len(self.classes))

    def train_labels(self) -> list[int] | None:
        """The training labels a balanced sampler draws by (`balance=sampler`), else None."""
        return [y for _, y in self.train_items] if self.balance == "sampler" else None

    def train_dataloader(self, image_size: int | None = None) -> DataLoader:
        # Like fastai, training drops the last incomplete batch: a batch of one image
        # cannot go through the head's BatchNorm in training mode.
        drop_last = len(self.train_items) > self.batch_size
        if self.decode == "gpu":
            return device_train_loader(self, drop_last, image_size or self.image_size)
        transform = self.train_transform(image_size=image_size)
        return self.loader(
            self.train_items,
            transform,
            shuffle=True,
            drop_last=drop_last,
            balance_by=self.train_labels(),
        )

    def val_dataloader(self, image_size: int | None = None) -> DataLoader:
        return self.loader(self.valid_items, self.eval_transform(image_size))

    def test_dataloader(self, image_size: int | None = None) -> DataLoader:
        return self.loader(self.test_items, self.eval_transform(image_size))

    def predict_dataloader(self, image_size: int | None = None) -> DataLoader:
        return self.test_dataloader(image_size)


def checked_options(decode: str, auto_augment: str, balance: str) -> tuple[str, str]:
    """(auto_augment, balance) checked, with one-line errors; the GPU decode path has only
    the presets' warp and lighting, so it takes no TrivialAugment/RandAugment."""
    check_auto_augment(auto_augment)
    if decode == "gpu" and auto_augment != "none":
        raise UserError(
            f"data.auto_augment={auto_augment} needs data.decode=cpu: the GPU decode path "
            "has only the warp and lighting of the presets"
        )
    return auto_augment, check_balance(balance)


def check_task_fits(task: str, balance: str, decode: str, per_class) -> None:
    """The data options that assume one label per image: a one-line error for multi-label."""
    if task != "multi":
        return
    used = {
        f"data.balance={balance}": balance != "none",
        "data.decode=gpu": decode == "gpu",
        f"data.per_class={per_class}": bool(per_class),
    }
    on = [name for name, value in used.items() if value]
    if on:
        raise UserError(f"{', '.join(on)}: not available for multi-label data; turn it off")


def scan_warning(message: str, stacklevel: int = 2) -> None:
    """`warnings.warn(message, stacklevel)` on the first process only: under DDP every
    process scans the same files, and one warning says it (rank_zero_warn's own three
    frames and this one are added to the stack level)."""
    rank_zero_warn(message, stacklevel=stacklevel + 4)


def skip_message(what: str, skipped: list[tuple[Path, str]], shown: int = 50) -> str:
    """One warning line: how many were skipped, the first `shown` with their reasons."""
    listing = "; ".join(f"{path} ({why})" for path, why in skipped[:shown])
    more = f" and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return f"skipped {len(skipped)} {what}: {listing}{more}"
