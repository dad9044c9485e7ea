"""The embedded digits demo: real scans written as a dogscats-style folder."""

import csv

import numpy as np
from PIL import Image

from imgclf.data import FolderDataModule
from imgclf.data.demo import build_digits_demo


def test_demo_folder_layout_counts_and_labels(tmp_path):
    root = build_digits_demo(tmp_path / "digits")
    train = list((root / "train").rglob("*.png"))
    valid = list((root / "valid").rglob("*.png"))
    test = list((root / "test").glob("*.png"))
    assert len(train) + len(valid) + len(test) == 1797
    assert sorted(p.name for p in (root / "train").iterdir()) == [str(d) for d in range(10)]
    assert 0.18 < len(valid) / 1797 < 0.22 and 0.08 < len(test) / 1797 < 0.12
    with open(root / "test_labels.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["id"] for r in rows) == sorted(p.stem for p in test)
    assert {r["label"] for r in rows} == {str(d) for d in range(10)}
    assert not list((root / "test").glob("*.csv"))  # labels beside test/, not inside
    image = np.asarray(Image.open(train[0]))
    assert image.shape == (64, 64) and image.max() > 200 and image.min() < 100


def test_demo_is_built_once_and_reads_as_a_datamodule(tmp_path):
    root = build_digits_demo(tmp_path / "digits")
    marker = (root / ".complete").stat().st_mtime_ns
    assert build_digits_demo(root) == root
    assert (root / ".complete").stat().st_mtime_ns == marker
    dm = FolderDataModule(root, num_workers=0)
    dm.setup("fit")
    assert len(dm.classes) == 10 and dm.num_skipped == 0
    assert len(dm.test_items) == len(list((root / "test").glob("*.png")))


def test_an_interrupted_build_is_redone_and_the_mosaics_build_once(tmp_path):
    from imgclf.data.mosaic_demo import build_mosaic_demo

    root = tmp_path / "mosaics"
    (tmp_path / "mosaics.partial" / "train").mkdir(parents=True)  # a build killed halfway
    (tmp_path / "mosaics.partial" / "train" / "stale.png").write_bytes(b"")
    assert build_mosaic_demo(root, n_train=12, n_test=3) == root
    assert not (tmp_path / "mosaics.partial").exists()
    assert not (root / "train" / "stale.png").exists()
    with open(root / "labels.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 and all(1 <= len(r["tags"].split()) <= 4 for r in rows)
    assert sorted(p.stem for p in (root / "train").glob("*.png")) == sorted(
        r["image_name"] for r in rows
    )
    assert len(list((root / "test").glob("*.png"))) == 3
    marker = (root / ".complete").stat().st_mtime_ns
    assert build_mosaic_demo(root, n_train=50) == root  # finished: not built again
    assert (root / ".complete").stat().st_mtime_ns == marker
    assert len(list((root / "train").glob("*.png"))) == 12
