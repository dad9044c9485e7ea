"""Image folders to batches: scan the dogscats layout (or labels from a CSV or file names), decode files, augment, load.

FolderDataModule is the entry point; decoding, transforms, the one-warp augmentation,
the replayable loader and the digits demo each have their own module.
"""

from imgclf.data.csv_labels import CsvDataModule
from imgclf.data.dataset import UNLABELLED, ImageFileDataset, Item
from imgclf.data.demo import build_digits_demo
from imgclf.data.folder import FolderDataModule
from imgclf.data.name_labels import NameDataModule
from imgclf.data.split import stratified_split

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
