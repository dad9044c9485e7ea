"""CsvDataModule: images in one folder, their labels in a CSV or TSV file (Kaggle's
`labels.csv` with `id,breed`, Planet's `train_v2.csv` with `image_name,tags`).

root/labels.csv          file column, label column (label_delim: several labels per row),
                         optional validation column (true/false)
root/train/<file>        the images the rows name (suffix added to each name)
root/test/**             optional, unlabelled
"""

from __future__ import annotations

from pathlib import Path

from imgclf.data.folder import FolderDataModule, scan_warning, skip_message
from imgclf.data.images import list_images
from imgclf.data.label_table import LabelRow, delimiter_hint, header_columns, read_label_table
from imgclf.errors import UserError


class CsvDataModule(FolderDataModule):
    """FolderDataModule's loaders, transforms and checks, with labels from a table.

    `labels`: the file, relative to root; `folder`: the images, relative to root;
    `file_column`/`label_column`: null for the first/second column; `label_delim`: split
    each label cell (" " for Planet's tags); `suffix`: added to every file name (".jpg");
    `valid_column`: a true/false column marking validation images, else a seeded
    `valid_pct` split (stratified; for multi-label, every tag with two or more images in
    both parts). A row without its file, a row without a label and an image that no row
    names are skipped, counted and reported; a duplicate row is a one-line error.
    """

    def __init__(
        self,
        root: str | Path,
        labels: str = "labels.csv",
        folder: str = "train",
        file_column: str | None = None,
        label_column: str | None = None,
        label_delim: str | None = None,
        suffix: str = "",
        valid_column: str | None = None,
        **settings,
    ) -> None:
        super().__init__(root, **settings)
        self.labels_file = self.root / labels
        self.folder = folder
        self.columns = (file_column, label_column)
        self.label_delim = label_delim or None
        self.suffix = suffix or ""
        self.valid_column = valid_column

    @property
    def train_source(self) -> Path:
        return self.root / self.folder

    def scan_labelled(self):
        rows = self._read_rows()
        folder = self.train_source
        if not folder.is_dir():
            raise UserError(f"image folder {folder} does not exist (data.folder)")
        on_disk = {path.relative_to(folder).as_posix(): path for path in list_images(folder)}
        kept = [row for row in rows if row.labels and row.name in on_disk]
        self._report_skips(rows, on_disk, folder)
        hint = delimiter_hint(kept, self.label_delim)
        if hint:
            scan_warning(hint, stacklevel=4)
        if not kept:
            raise UserError(f"no row of {self.labels_file.name} names an image in {folder}")
        self.classes = sorted({label for row in kept for label in row.labels})
        if len(self.classes) < 2:
            raise UserError(
                f"only one label in {self.labels_file.name} ({self.classes[0]}): need at least two"
            )
        items = labelled_items(kept, on_disk, self.classes)
        if self.valid_column is not None:
            return self.sampled_parts(
                [item for item, row in zip(items, kept, strict=True) if not row.valid],
                [item for item, row in zip(items, kept, strict=True) if row.valid],
            )
        return self.sampled_split(items)

    def _read_rows(self) -> list[LabelRow]:
        file_column, label_column = self.columns
        if file_column is None or label_column is None:
            header = header_columns(self.labels_file)
            file_column = file_column or header[0]
            label_column = label_column or header[1]
        return read_label_table(
            self.labels_file,
            file_column,
            label_column,
            self.label_delim,
            self.suffix,
            self.valid_column,
        )

    def _report_skips(self, rows: list[LabelRow], on_disk: dict[str, Path], folder: Path) -> None:
        source = self.labels_file.name
        named = {row.name for row in rows}
        skipped = [
            (folder / r.name, f"in {source}, no such file") for r in rows if r.name not in on_disk
        ]
        skipped += [
            (on_disk[r.name], f"no label in {source}")
            for r in rows
            if not r.labels and r.name in on_disk
        ]
        skipped += [
            (path, f"not in {source}") for name, path in on_disk.items() if name not in named
        ]
        if skipped:
            scan_warning(skip_message(f"files of {source}", skipped, self.MAX_LISTED), stacklevel=5)
        self.label_skipped = skipped


def labelled_items(rows: list[LabelRow], on_disk: dict[str, Path], classes: list[str]) -> list:
    """(path, label) items: a class index, or a tuple of them when any row has several."""
    index = {name: i for i, name in enumerate(classes)}
    multi = any(len(row.labels) > 1 for row in rows)
    items = []
    for row in rows:
        tags = tuple(sorted(index[label] for label in row.labels))
        items.append((on_disk[row.name], tags if multi else tags[0]))
    return items
