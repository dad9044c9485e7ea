"""NameDataModule: labels from file names by a regular expression with one group, as
Kaggle's Dogs vs. Cats `train/` (one flat folder of cat.0.jpg, dog.0.jpg: `^(cat|dog)\\.`).

root/train/*.jpg      the images, flat (or in sub-folders with recursive: true)
root/test/**          optional, unlabelled
"""

from __future__ import annotations

import re
from pathlib import Path

from imgclf.data.folder import FolderDataModule, scan_warning, skip_message
from imgclf.data.images import is_image_name, list_images
from imgclf.errors import UserError


def compile_pattern(pattern: str) -> re.Pattern:
    """The label regex, with exactly one group (the label); one-line errors otherwise."""
    try:
        compiled = re.compile(pattern)
    except re.error as err:
        raise UserError(f"data.pattern {pattern!r} is not a regular expression: {err}") from None
    if compiled.groups != 1:
        raise UserError(
            f"data.pattern {pattern!r} has {compiled.groups} groups: it needs exactly one, "
            "the label, e.g. '^(cat|dog)\\.'"
        )
    return compiled


def name_label(pattern: re.Pattern, name: str) -> str | None:
    """The label the pattern finds in a file name (searched anywhere); None without one."""
    found = pattern.search(name)
    return found.group(1) if found and found.group(1) else None


class NameDataModule(FolderDataModule):
    """FolderDataModule's loaders and checks, with each label taken from its file name by
    `pattern` (one group; searched in the name, not the folder path). `folder`: the images,
    relative to root; `recursive`: also in its sub-folders. Files whose name does not match
    are skipped, counted and reported. Validation: a seeded stratified `valid_pct` split."""

    def __init__(
        self,
        root: str | Path,
        pattern: str = r"^(.+?)[._-]",
        folder: str = "train",
        recursive: bool = False,
        **settings,
    ) -> None:
        super().__init__(root, **settings)
        self.pattern = compile_pattern(pattern)
        self.folder = folder
        self.recursive = recursive

    @property
    def train_source(self) -> Path:
        return self.root / self.folder

    def _files(self) -> list[Path]:
        folder = self.train_source
        if not folder.is_dir():
            raise UserError(f"image folder {folder} does not exist (data.folder)")
        if self.recursive:
            return list_images(folder)
        return sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and is_image_name(p) and not p.name.startswith(".")
        )

    def scan_labelled(self):
        files = self._files()
        if not files:
            raise UserError(
                f"no images in {self.train_source} (extensions: jpg jpeg png bmp webp tif)"
            )
        labels = [name_label(self.pattern, path.name) for path in files]
        skipped = [
            (path, f"name does not match {self.pattern.pattern!r}")
            for path, label in zip(files, labels, strict=True)
            if label is None
        ]
        if skipped:
            scan_warning(skip_message("files", skipped, self.MAX_LISTED), stacklevel=4)
        self.label_skipped = skipped
        self.classes = sorted({label for label in labels if label is not None})
        if len(self.classes) < 2:
            found = self.classes[0] if self.classes else "none"
            raise UserError(
                f"data.pattern {self.pattern.pattern!r} finds {len(self.classes)} label in "
                f"{self.train_source} ({found}): need at least two"
            )
        index = {name: i for i, name in enumerate(self.classes)}
        items = [(path, index[label]) for path, label in zip(files, labels, strict=True) if label]
        return self.sampled_split(items)
