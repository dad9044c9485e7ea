"""FolderDataModule: layouts, splits, class checks, extensions, caps, unreadable files."""

import shutil
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.folders import make_image_folder
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from PIL import Image

from imgclf.data import FolderDataModule, stratified_split
from imgclf.errors import UserError


def datamodule(root, **kwargs) -> FolderDataModule:
    kwargs.setdefault("num_workers", 0)
    dm = FolderDataModule(root, **kwargs)
    dm.setup("fit")
    return dm


def test_dogscats_layout_with_valid_and_nested_test(tmp_path):
    root = make_image_folder(tmp_path, classes=("dogs", "cats"), n_train=5, n_valid=3, n_test=4)
    (root / "test" / "batch2").mkdir()
    shutil.copy(root / "test" / "0.jpg", root / "test" / "batch2" / "x.jpg")
    dm = datamodule(root)
    assert dm.classes == ["cats", "dogs"]  # sorted folder names
    assert dm.class_counts("train") == {"cats": 5, "dogs": 5}
    assert dm.class_counts("valid") == {"cats": 3, "dogs": 3}
    assert len(dm.test_items) == 5
    assert all(label == -1 for _, label in dm.test_items)
    assert all(path.parent.name == "dogs" for path, label in dm.train_items if label == 1)


def test_without_valid_folder_a_stratified_seeded_split(tmp_path):
    root = make_image_folder(tmp_path, classes=("a", "b", "c"), n_train=10, n_valid=0)
    dm = datamodule(root, valid_pct=0.3, seed=1)
    assert dm.class_counts("valid") == {"a": 3, "b": 3, "c": 3}
    assert dm.class_counts("train") == {"a": 7, "b": 7, "c": 7}
    assert not {p for p, _ in dm.train_items} & {p for p, _ in dm.valid_items}
    again = datamodule(root, valid_pct=0.3, seed=1)
    other = datamodule(root, valid_pct=0.3, seed=2)
    assert again.valid_items == dm.valid_items
    assert other.valid_items != dm.valid_items


def test_stratified_split_keeps_one_of_each_side():
    train, valid = stratified_split([0, 0, 1, 1, 1, 1, 1, 1, 1, 1], valid_pct=0.1, seed=0)
    labels = [0, 0] + [1] * 8
    assert Counter(labels[i] for i in valid) == {0: 1, 1: 1}
    assert sorted(train + valid) == list(range(10))


def test_valid_classes_must_match_train(tmp_path):
    root = make_image_folder(tmp_path, classes=("cats", "dogs"), n_train=2, n_valid=2)
    (root / "valid" / "dogs").rename(root / "valid" / "wolves")
    with pytest.raises(UserError, match=r"only in valid: \['wolves'\]; only in train: \['dogs'\]"):
        datamodule(root)


def test_extensions_are_case_insensitive_and_others_ignored(tmp_path):
    root = make_image_folder(tmp_path, n_train=1, n_valid=1)
    image = Image.new("RGB", (20, 20), (255, 0, 0))
    folder = root / "train" / "cats"
    for name in ("a.JPG", "b.Jpeg", "c.PNG", "d.bmp", "e.webp", "f.TIF"):
        image.save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    (folder / ".DS_Store").write_bytes(b"\0\0")
    dm = datamodule(root)
    assert dm.class_counts("train") == {"cats": 7, "dogs": 1}


def test_per_class_cap_is_seeded(tmp_path):
    root = make_image_folder(tmp_path, n_train=10, n_valid=6)
    dm = datamodule(root, per_class=5, seed=3)
    # With valid/: the sizes a split of 5 images a class would give (valid_pct 0.2).
    assert dm.class_counts("train") == {"cats": 4, "dogs": 4}
    assert dm.class_counts("valid") == {"cats": 1, "dogs": 1}
    assert datamodule(root, per_class=5, seed=3).train_items == dm.train_items
    assert datamodule(root, per_class=5, seed=4).train_items != dm.train_items


def test_per_class_samples_the_whole_folder_before_the_split(tmp_path):
    """Like the course's sample/: 10 images a class in all, 8 to train and 2 to valid,
    not 10 to train beside a validation split of the whole folder."""
    root = make_image_folder(tmp_path, n_train=30, n_valid=0)
    dm = datamodule(root, per_class=10, valid_pct=0.2, seed=0)
    assert dm.class_counts("train") == {"cats": 8, "dogs": 8}
    assert dm.class_counts("valid") == {"cats": 2, "dogs": 2}
    assert not {p for p, _ in dm.train_items} & {p for p, _ in dm.valid_items}


def test_unreadable_files_are_skipped_counted_and_reported(tmp_path):
    root = make_image_folder(tmp_path, n_train=3, n_valid=2)
    (root / "train" / "cats" / "empty.jpg").write_bytes(b"")
    (root / "train" / "dogs" / "text.jpg").write_text("this is not a jpeg")
    with pytest.warns(
        UserWarning, match=r"skipped 2 unreadable files: .*empty\.jpg \(empty file\)"
    ):
        dm = datamodule(root)
    assert dm.num_skipped == 2
    assert len(dm.train_items) == 6


def test_only_the_first_process_warns_about_the_scan(tmp_path, monkeypatch):
    """Under DDP every process scans the same files: rank 0 says what was skipped, the
    others count the same files without a second copy of the warnings."""
    root = make_image_folder(tmp_path, n_train=3, n_valid=2)
    (root / "train" / "cats" / "text.jpg").write_text("this is not a jpeg")
    (root / "train" / ".hidden").mkdir()
    (root / "train" / "birds").mkdir()  # an empty class folder
    (root / "valid" / "birds").mkdir()
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm = datamodule(root)
    assert [str(w.message) for w in caught] == []
    assert dm.num_skipped == 1
    monkeypatch.setattr(rank_zero_only, "rank", 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        datamodule(root)
    said = [str(w.message) for w in caught]
    assert any(m.startswith("skipped 1 unreadable files") for m in said), said
    assert any("ignored hidden folders" in m for m in said), said
    assert any("birds holds no images" in m for m in said), said
    # The warning points at the caller of setup, not at Lightning's wrapper.
    assert {Path(w.filename).name for w in caught} == {"test_data.py"}


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: None, "is not a folder"),
        (lambda root: root.mkdir(), "no train/ folder"),
        (lambda root: (root / "train").mkdir(parents=True), "no class folders"),
        (lambda root: (root / "train" / "cats").mkdir(parents=True), "only one class folder"),
    ],
)
def test_folder_mistakes_are_one_line_user_errors(tmp_path, make, message):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(UserError, match=message) as info:
        datamodule(root)
    assert "\n" not in str(info.value)


def test_no_images_at_all(tmp_path):
    for name in ("cats", "dogs"):
        (tmp_path / "train" / name).mkdir(parents=True)
    with (
        pytest.warns(UserWarning, match="holds no images"),
        pytest.raises(UserError, match="no images"),
    ):
        datamodule(tmp_path)


def test_batches_have_the_configured_size_as_uint8_pixels(tmp_path):
    root = make_image_folder(tmp_path, n_train=4, n_valid=2, size=60)
    white = Image.new("RGB", (50, 80), (255, 255, 255))
    white.save(root / "valid" / "cats" / "white.png")
    dm = datamodule(root, image_size=40, batch_size=8, augment="side_on")
    dm.set_data_config(
        {
            "input_size": 224,
            "mean": (0.5,) * 3,
            "std": (0.25,) * 3,
            "interpolation": "bilinear",
            "crop_pct": 0.875,
        }
    )
    images, labels = next(iter(dm.train_dataloader()))
    # Pixels travel as uint8; the model normalises them on its device.
    assert images.shape == (8, 3, 40, 40) and images.dtype == torch.uint8
    assert labels.tolist().count(0) == 4
    valid = dm.val_dataloader().dataset
    index = [p.name for p, _ in valid.items].index("white.png")
    white_tensor, _ = valid[index]
    assert torch.equal(white_tensor, torch.full((3, 40, 40), 255, dtype=torch.uint8))


def test_image_size_defaults_to_the_backbone_input_size(tmp_path):
    dm = datamodule(make_image_folder(tmp_path, n_train=1, n_valid=1))
    dm.set_data_config(
        {
            "input_size": 96,
            "mean": (0,) * 3,
            "std": (1,) * 3,
            "interpolation": "bicubic",
            "crop_pct": 1.0,
        }
    )
    assert dm.image_size == 96
    assert dm.val_dataloader().dataset[0][0].shape == (3, 96, 96)


def identical_image_folder(root: Path, n: int = 8) -> Path:
    """Every image the same, so any difference between samples is augmentation."""
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    for name in ("a", "b"):
        (root / "train" / name).mkdir(parents=True)
        for i in range(n // 2):
            image.save(root / "train" / name / f"{i}.png")
    return root


def epoch_samples(loader, epochs: int = 2) -> list[list[torch.Tensor]]:
    return [[images[0] for images, _ in loader] for _ in range(epochs)]


def distinct(tensors: list[torch.Tensor]) -> int:
    return len({t.numpy().tobytes() for t in tensors})


def test_workers_and_epochs_get_different_augmentations_and_a_seed_repeats_them(tmp_path):
    root = identical_image_folder(tmp_path)

    def loader(seed: int):
        dm = FolderDataModule(
            root, image_size=32, batch_size=1, num_workers=2, valid_pct=0.25, seed=seed
        )
        dm.setup("fit")
        return dm.train_dataloader()

    first, second = epoch_samples(loader(seed=7))
    # Batches alternate between the two workers: all 6 samples of an epoch differ...
    assert distinct(first) == len(first) == 6
    # ...and the next epoch (fresh workers) does not repeat the first.
    assert distinct(first + second) == 12
    # The same seed reproduces both epochs exactly; another seed does not.
    again = epoch_samples(loader(seed=7))
    assert all(torch.equal(a, b) for a, b in zip(first + second, again[0] + again[1], strict=True))
    other = epoch_samples(loader(seed=8))
    assert not torch.equal(first[0], other[0][0])


def test_without_worker_seeding_albumentations_repeats_itself(tmp_path):
    """The trap our worker_init_fn fixes: each worker copies the same Compose RNG."""
    root = identical_image_folder(tmp_path)
    dm = FolderDataModule(root, image_size=32, batch_size=1, num_workers=2, valid_pct=0.25)
    dm.setup("fit")
    plain = torch.utils.data.DataLoader(dm.train_dataloader().dataset, batch_size=1, num_workers=2)
    first, second = epoch_samples(plain)
    assert torch.equal(first[0], first[1])  # worker 0 and worker 1 draw the same crop
    assert torch.equal(first[0], second[0])  # and the next epoch repeats it


def test_unknown_augmentation_preset_is_rejected_up_front(tmp_path):
    with pytest.raises(UserError, match="unknown data.augment 'sideways': choose one of side_on"):
        FolderDataModule(tmp_path, augment="sideways")


def test_auto_workers_follow_the_size_of_each_loader():
    from imgclf.data.workers import loader_workers

    assert loader_workers("auto", 999, cpus=2) == 0
    assert loader_workers("auto", 1000, cpus=2) == 2
    assert loader_workers("auto", 50_000, cpus=32) == 8
    assert loader_workers(3, 10, cpus=2) == 3  # a number is taken as it is
    assert loader_workers(0, 50_000, cpus=2) == 0


def test_auto_workers_in_the_data_module(tmp_path, monkeypatch):
    import imgclf.data.workers as workers

    root = make_image_folder(tmp_path, classes=("a", "b"), n_train=6, n_valid=2)
    dm = datamodule(root, image_size=32, batch_size=2, num_workers="auto", persistent_workers=True)
    small = dm.train_dataloader()
    assert (small.num_workers, small.persistent_workers) == (0, False)
    monkeypatch.setattr(workers, "AUTO_MIN_IMAGES", 10)  # 12 training images, 4 valid
    monkeypatch.setattr(workers, "available_cpus", lambda: 2)
    assert dm.train_dataloader().num_workers == 2
    assert dm.train_dataloader().persistent_workers
    assert dm.val_dataloader().num_workers == 0
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (2, 3, 32, 32) and labels.shape == (2,)


@pytest.mark.parametrize("setting", ["many", -1, 1.5, True])
def test_num_workers_is_a_count_or_auto(tmp_path, setting):
    root = make_image_folder(tmp_path, classes=("a", "b"), n_train=2, n_valid=1)
    with pytest.raises(
        UserError, match=r"data.num_workers=.*: must be a whole number >= 0 or auto"
    ):
        FolderDataModule(root, num_workers=setting)


@pytest.mark.parametrize(
    ("median", "chosen"),
    [
        (72, 96),  # sprites: rounded up to a multiple of 32, the only upscaling
        (375, 224),  # 500x375 photos: never above the backbone's pretrained size
        (8, 32),  # glyphs: at least 32 px (the backbone's total stride)
        (64, 64),  # a multiple of 32 stays as it is
        (64.5, 96),  # the median of an even count can be a half
        (224, 224),
    ],
)
def test_auto_image_size_rounds_the_median_short_side_up_within_the_backbone(median, chosen):
    from imgclf.data.image_size import auto_image_size

    assert auto_image_size(median, largest=224) == chosen


def test_auto_image_size_reads_the_training_originals_median_short_side(tmp_path):
    from imgclf.data.image_size import median_short_side, sample_paths

    # Mixed sizes: shorter sides 40, 50 (a 50x120 strip), 100, 30 (120x30) -> median 45.
    sizes = [(40, 40), (50, 120), (100, 200), (120, 30)]
    paths = []
    for i, size in enumerate(sizes):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", size).save(paths[-1])
    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert median_short_side([*paths, tmp_path / "broken.png"]) == 45.0
    assert median_short_side([tmp_path / "broken.png"]) is None
    many = [Path(f"{i}.png") for i in range(50)]
    assert sample_paths(many, limit=10, seed=1) == sample_paths(many, limit=10, seed=1)
    assert len(set(sample_paths(many, limit=10, seed=1))) == 10
    assert sample_paths(many[:5], limit=10) == many[:5]


def test_image_size_auto_in_the_data_module(tmp_path):
    root = make_image_folder(tmp_path / "small", n_train=3, n_valid=1, size=40)
    # Validation originals do not count: only the training split's.
    for path in (root / "valid").rglob("*.jpg"):
        Image.new("RGB", (300, 300)).save(path)
    dm = FolderDataModule(root, image_size="auto", num_workers=0)
    assert dm.image_size == 224 and dm.image_size_auto is None  # before setup: the backbone's
    dm.setup("fit")
    assert dm.image_size == 64
    assert dm.image_size_auto == {"chosen": 64, "median_short_side": 40.0}
    line = "image size auto: 64 px from the originals' median shorter side 40 px"
    assert dm.image_size_line() == line
    assert dm.val_dataloader().dataset[0][0].shape == (3, 64, 64)
    assert dm.val_dataloader(image_size=96).dataset[0][0].shape == (3, 96, 96)  # a stage's own
    dm.set_data_config({**dm.data_config, "input_size": 32})  # a backbone trained at 32 px
    assert dm.image_size == 32 and dm.image_size_line().endswith("(capped at the backbone's 32 px)")
    fixed = datamodule(root, image_size=48)
    assert fixed.image_size == 48 and fixed.image_size_auto is None and not fixed.image_size_line()


@pytest.mark.parametrize("setting", ["big", "AUTO", 0, 1.5, True])
def test_image_size_is_a_size_null_or_auto(tmp_path, setting):
    with pytest.raises(
        UserError, match=r"data.image_size=.*: must be a whole number >= 1, null or auto"
    ):
        FolderDataModule(tmp_path, image_size=setting)
