"""Image folders to batches: scan the dogscats layout (or labels from a CSV or file names), decode files, augment, load.

FolderDataModule is the entry point; decoding, transforms, the one-warp augmentation,
the replayable loader and the digits demo each have their own module.
"""

from imgclf.lazy_exports import lazy_exports

# Every name is loaded on first use (PEP 562), so importing one module of this package
# does not import the others (a command that needs no Lightning does not load it).
_EXPORTS = {
    "CsvDataModule": "imgclf.data.csv_labels",
    "UNLABELLED": "imgclf.data.dataset",
    "ImageFileDataset": "imgclf.data.dataset",
    "Item": "imgclf.data.dataset",
    "build_digits_demo": "imgclf.data.demo",
    "FolderDataModule": "imgclf.data.folder",
    "NameDataModule": "imgclf.data.name_labels",
    "stratified_split": "imgclf.data.split",
}

__all__ = [
    "UNLABELLED",
    "CsvDataModule",
    "FolderDataModule",
    "ImageFileDataset",
    "NameDataModule",
    "Item",
    "build_digits_demo",
    "stratified_split",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
