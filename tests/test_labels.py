"""Label sources: a CSV/TSV (single- and multi-label) and file-name regexes, on real image
files, with every bad-label case a one-line error or a counted, reported skip."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers.folders import CLASS_COLOURS, make_image

from imgclf.data import CsvDataModule, NameDataModule
from imgclf.data.split import multilabel_split
from imgclf.errors import UserError


def flat_images(folder: Path, names, size: int = 32) -> Path:
    """Real PNG (or JPEG, by extension) files with these names in one folder."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, name in enumerate(names):
        make_image(CLASS_COLOURS[i % len(CLASS_COLOURS)], size, rng).save(folder / name)
    return folder


def write_table(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def csv_module(root, **kwargs) -> CsvDataModule:
    kwargs.setdefault("num_workers", 0)
    dm = CsvDataModule(root, **kwargs)
    dm.setup("fit")
    return dm


def breeds(tmp_path, n: int = 6) -> Path:
    """Kaggle dog-breeds style: labels.csv with id,breed; train/<id>.jpg."""
    ids = [f"{i:03d}" for i in range(2 * n)]
    flat_images(tmp_path / "train", [f"{i}.jpg" for i in ids])
    rows = [f"{i},{'husky' if k % 2 else 'pug'}" for k, i in enumerate(ids)]
    write_table(tmp_path / "labels.csv", "id,breed", rows)
    return tmp_path


def test_csv_single_label_with_suffix_and_seeded_stratified_split(tmp_path):
    root = breeds(tmp_path)
    dm = csv_module(root, suffix=".jpg", valid_pct=0.34, seed=3)
    assert dm.classes == ["husky", "pug"]
    assert dm.task == "single"
    assert dm.class_counts("valid") == {"husky": 2, "pug": 2}
    assert dm.class_counts("train") == {"husky": 4, "pug": 4}
    assert dm.skipped == []
    by_name = {p.name: y for p, y in dm.train_items + dm.valid_items}
    assert by_name["001.jpg"] == 0 and by_name["000.jpg"] == 1
    again = csv_module(root, suffix=".jpg", valid_pct=0.34, seed=3)
    assert again.valid_items == dm.valid_items
    image, label = dm.train_dataloader().dataset[0]
    assert isinstance(label, int)


def test_tsv_with_named_columns_and_a_validation_column(tmp_path):
    flat_images(tmp_path / "images", [f"{i}.png" for i in range(6)])
    rows = [f"{'a' if i % 2 else 'b'}\t{i}.png\t{'true' if i < 2 else 'false'}" for i in range(6)]
    write_table(tmp_path / "table.tsv", "label\tfile\tis_valid", rows)
    dm = csv_module(
        tmp_path,
        labels="table.tsv",
        folder="images",
        file_column="file",
        label_column="label",
        valid_column="is_valid",
    )
    assert sorted(p.name for p, _ in dm.valid_items) == ["0.png", "1.png"]
    assert len(dm.train_items) == 4


def planet(tmp_path, n: int = 12) -> Path:
    """Planet style: train_v2.csv with image_name,tags (space-separated), bare names."""
    flat_images(tmp_path / "train-jpg", [f"train_{i}.jpg" for i in range(n)])
    tags = ["clear primary", "haze primary water", "clear", "cloudy", "primary water", "clear road"]
    rows = [f"train_{i},{tags[i % len(tags)]}" for i in range(n)]
    write_table(tmp_path / "train_v2.csv", "image_name,tags", rows)
    return tmp_path


def test_csv_multi_label_rows_make_a_multi_label_task(tmp_path):
    root = planet(tmp_path)
    dm = csv_module(
        root,
        labels="train_v2.csv",
        folder="train-jpg",
        label_delim=" ",
        suffix=".jpg",
        valid_pct=0.25,
    )
    assert dm.task == "multi"
    assert dm.classes == ["clear", "cloudy", "haze", "primary", "road", "water"]
    items = dict(dm.train_items + dm.valid_items)
    assert items[root / "train-jpg" / "train_1.jpg"] == (2, 3, 5)  # haze primary water
    assert items[root / "train-jpg" / "train_3.jpg"] == (1,)
    # Every tag with two or more images sits in both parts.
    for part in (dm.train_items, dm.valid_items):
        assert {t for _, tags in part for t in tags} == set(range(6))
    _, label = dm.train_dataloader().dataset[0]
    assert label.shape == (6,) and set(label.tolist()) <= {0.0, 1.0}


def test_multilabel_split_puts_each_tag_in_both_parts():
    labels = [(0,)] * 20 + [(1, 2), (2,), (1,), (3,)]
    train, valid = multilabel_split(labels, valid_pct=0.1, seed=0)
    assert sorted(train + valid) == list(range(len(labels)))
    for tag in (0, 1, 2):  # tag 3 has one image: it can be in one part only
        assert any(tag in labels[i] for i in train) and any(tag in labels[i] for i in valid)
    assert multilabel_split(labels, 0.1, 0) == (train, valid)


def test_task_single_on_multi_label_rows_is_a_one_line_error(tmp_path):
    root = planet(tmp_path)
    with pytest.raises(UserError, match="task=single, but some images have several labels"):
        csv_module(
            root,
            labels="train_v2.csv",
            folder="train-jpg",
            label_delim=" ",
            suffix=".jpg",
            task="single",
        )


def test_labels_with_a_delimiter_but_no_label_delim_are_reported(tmp_path):
    root = planet(tmp_path)
    with pytest.warns(UserWarning, match=r"labels contain ' '.*data.label_delim=' '"):
        dm = csv_module(root, labels="train_v2.csv", folder="train-jpg", suffix=".jpg")
    assert dm.task == "single"
    assert "haze primary water" in dm.classes  # one class each, as the warning says


def test_missing_columns_are_one_line_errors(tmp_path):
    root = breeds(tmp_path)
    with pytest.raises(
        UserError,
        match=r"labels.csv has no column 'file' \(data.file_column\); its columns: id, breed",
    ):
        csv_module(root, file_column="file", suffix=".jpg")
    with pytest.raises(UserError, match=r"no column 'tags' \(data.label_column\)"):
        csv_module(root, label_column="tags", suffix=".jpg")
    (root / "one.csv").write_text("id\n000\n")
    with pytest.raises(UserError, match="needs a file column and a label column"):
        csv_module(root, labels="one.csv")
    with pytest.raises(UserError, match=r"label file .*nope.csv does not exist"):
        csv_module(root, labels="nope.csv")


def test_a_duplicate_row_is_a_one_line_error(tmp_path):
    root = breeds(tmp_path)
    with open(root / "labels.csv", "a") as f:
        f.write("003,pug\n")
    with pytest.raises(UserError, match=r"names 1 files twice: 003.jpg \(lines 5 and 14\)"):
        csv_module(root, suffix=".jpg")


def test_empty_labels_missing_files_and_unlisted_files_are_counted_skips(tmp_path):
    root = breeds(tmp_path)
    with open(root / "labels.csv", "a") as f:
        f.write("ghost,pug\n")  # no such file
    table = (root / "labels.csv").read_text().replace("004,pug", "004,")  # empty label
    (root / "labels.csv").write_text(table)
    flat_images(root / "train", ["stray.jpg"])  # no row names it
    with pytest.warns(UserWarning, match=r"skipped 3 files of labels.csv") as caught:
        dm = csv_module(root, suffix=".jpg")
    message = str(caught[0].message)
    assert "ghost.jpg (in labels.csv, no such file)" in message
    assert "004.jpg (no label in labels.csv)" in message
    assert "stray.jpg (not in labels.csv)" in message
    assert dm.num_skipped == 3
    assert len(dm.train_items) + len(dm.valid_items) == 11
    assert dm.classes == ["husky", "pug"]  # no class from the skipped rows


def test_a_bad_validation_flag_is_a_one_line_error(tmp_path):
    root = breeds(tmp_path)
    table = (root / "labels.csv").read_text().splitlines()
    rows = [f"{line},{'maybe' if i == 2 else 'false'}" for i, line in enumerate(table[1:])]
    write_table(root / "labels.csv", "id,breed,valid", rows)
    with pytest.raises(UserError, match=r"labels.csv line 4: valid='maybe' is not true/false"):
        csv_module(root, suffix=".jpg", valid_column="valid")


# -- labels from file names --------------------------------------------------------------
def dogscats_flat(tmp_path) -> Path:
    names = [f"{kind}.{i}.jpg" for kind in ("cat", "dog") for i in range(5)]
    flat_images(tmp_path / "train", names)
    return tmp_path


def test_labels_from_file_names_on_a_flat_folder(tmp_path):
    root = dogscats_flat(tmp_path)
    flat_images(root / "train", ["readme.png"])
    with pytest.warns(UserWarning, match=r"skipped 1 files: .*readme.png \(name does not match"):
        dm = NameDataModule(root, pattern=r"^(cat|dog)\.", valid_pct=0.2, num_workers=0)
        dm.setup("fit")
    assert dm.classes == ["cat", "dog"]
    assert dm.class_counts("valid") == {"cat": 1, "dog": 1}
    assert all(p.name.startswith(dm.classes[y]) for p, y in dm.train_items)
    assert dm.num_skipped == 1


def test_labels_from_file_names_recursively(tmp_path):
    flat_images(tmp_path / "train" / "batch1", ["cat_1.png", "dog_1.png", "cat_2.png"])
    flat_images(tmp_path / "train" / "batch2", ["dog_2.png", "cat_3.png", "dog_3.png"])
    flat = NameDataModule(tmp_path, pattern=r"^([a-z]+)_", num_workers=0)
    with pytest.raises(UserError, match="no images in"):
        flat.setup("fit")  # not recursive: the files are in sub-folders
    dm = NameDataModule(tmp_path, pattern=r"^([a-z]+)_", recursive=True, num_workers=0)
    dm.setup("fit")
    assert Counter(dm.classes[y] for _, y in dm.train_items + dm.valid_items) == {
        "cat": 3,
        "dog": 3,
    }


def test_bad_patterns_are_one_line_errors(tmp_path):
    root = dogscats_flat(tmp_path)
    with pytest.raises(UserError, match="has 0 groups: it needs exactly one"):
        NameDataModule(root, pattern=r"^cat")
    with pytest.raises(UserError, match="is not a regular expression"):
        NameDataModule(root, pattern=r"^(cat")
    dm = NameDataModule(root, pattern=r"^(cat)\.", num_workers=0)
    error = pytest.raises(UserError, match=r"finds 1 label in .* \(cat\): need at least two")
    with pytest.warns(UserWarning, match="skipped 5 files"), error:
        dm.setup("fit")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.file_column=file"], "labels.csv has no column 'file' (data.file_column)"),
        (["data.pattern='^cat\\.'"], "has 0 groups: it needs exactly one"),
        (["data.task=single", "data.label_delim=' '"], "task=single, but some images have"),
        (["task=single", "data.label_delim=' '"], "task=single, but some images have"),
    ],
)
def test_the_cli_says_what_is_wrong_with_the_labels_in_one_line(
    overrides, message, tmp_path, capsys, monkeypatch
):
    from test_cli_errors import assert_one_line_error, run_main

    root = breeds(tmp_path / "breeds")
    rows = (root / "labels.csv").read_text().replace(",husky\n", ",husky pug\n", 1)
    (root / "labels.csv").write_text(rows)
    source = "data=name_re" if any("pattern" in o for o in overrides) else "data=csv"
    args = ["train", source, f"data.root={root}", "data.suffix=.jpg", *overrides]
    if source == "data=name_re":
        args.remove("data.suffix=.jpg")
    assert_one_line_error(*run_main(args, tmp_path, capsys, monkeypatch), message)
