"""The quality benchmark's data set builders (on tiny slices) and the run's account of its
stages: a later stage that ends worse is reported, and summary.json names the stage and
epoch of the best weights."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import quality, quality_data, quality_large  # noqa: E402
from imgclf.training.progress import best_weights, stage_of_epoch, stage_regression  # noqa: E402

STAGES = [
    {"name": "head", "epochs": 2, "valid_acc": 0.808, "image_size": 64},
    {"name": "finetune", "epochs": 7, "valid_acc": 0.782, "image_size": 96},
]


def test_stage_regression_names_both_stages_and_scores():
    message = stage_regression(STAGES)
    assert "'finetune'" in message and "'head'" in message
    assert "0.7820" in message and "0.8080" in message


def test_no_warning_when_the_last_stage_is_at_least_as_good():
    assert stage_regression([STAGES[0], {**STAGES[1], "valid_acc": 0.808}]) is None
    assert stage_regression([STAGES[0], {**STAGES[1], "valid_acc": 0.9}]) is None
    assert stage_regression(STAGES[:1]) is None
    assert stage_regression([STAGES[0], {"name": "x", "epochs": 1, "valid_acc": None}]) is None


def test_best_weights_maps_the_best_epoch_to_its_stage():
    # Epochs counted from 1 across the stages: 1-2 head, 3-9 finetune.
    history = [
        {"epoch": 1, "valid/acc": 0.7},
        {"epoch": 2, "valid/acc": 0.808},
        {"epoch": 3, "valid/acc": 0.75},
        {"epoch": 9, "valid/acc": 0.808},  # a tie, no log-loss to break it: the first kept
    ]
    assert best_weights(history, STAGES) == {
        "stage": "head",
        "epoch": 2,
        "image_size": 64,
        "valid/acc": 0.808,
    }
    history.append({"epoch": 3, "valid/acc": 0.9})  # the first epoch of the second stage
    assert best_weights(history, STAGES)["stage"] == "finetune"
    assert best_weights(history, STAGES)["image_size"] == 96  # the size best.ckpt holds
    assert [stage_of_epoch(e, STAGES).get("name") for e in (1, 2, 3, 9)] == [
        "head",
        "head",
        "finetune",
        "finetune",
    ]
    assert stage_of_epoch(10, STAGES) == {} and stage_of_epoch(0, STAGES)["name"] == "head"
    assert best_weights([], STAGES) == {}


def test_split_is_stratified_disjoint_and_seeded():
    items = [(f"{c}{i}", c) for c in "ab" for i in range(10)]
    splits = quality_data.split_of(items)
    assert sorted(sum(splits.values(), [])) == sorted(items)
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [12, 4, 4]
    assert sum(1 for _, c in splits["test"] if c == "a") == 2
    assert quality_data.split_of(items) == splits


def test_builders_write_dogscats_folders_with_a_labelled_test_split(tmp_path):
    digits = quality_data.build("digits", tmp_path, limit=40)
    faces = quality_data.build("faces", tmp_path, limit=20)
    icons_src = tmp_path / "oxygen"
    for label in quality_data.ICON_CLASSES:
        (icons_src / label).mkdir(parents=True)
        for i in range(5):
            rgba = np.zeros((48, 48, 4), np.uint8)
            rgba[..., i % 3] = 200
            rgba[8:40, 8:40, 3] = 255 - 40 * i  # transparent border, semi-opaque centre
            Image.fromarray(rgba, "RGBA").save(icons_src / label / f"{label}-{i}.png")
    icons = quality_data.build("icons", tmp_path, limit=5, folder=icons_src)
    for root in (digits, faces, icons):
        assert (root / ".complete").exists()
        counts = quality_data.counts(root)
        assert counts["train"] > counts["test"] > 0 and counts["valid"] > 0
        assert sorted(p.name for p in (root / "test").iterdir()) == sorted(
            p.name for p in (root / "train").iterdir()
        )
    assert sorted(p.name for p in (faces / "train").iterdir()) == ["face", "nonface"]
    icon = Image.open(next((icons / "train" / "apps").glob("*.png")))
    assert icon.mode == "RGB" and icon.getpixel((0, 0)) == (255, 255, 255)  # on white
    before = sorted(p.stat().st_mtime_ns for p in digits.rglob("*.png"))
    quality_data.build("digits", tmp_path, limit=40)  # built once
    assert sorted(p.stat().st_mtime_ns for p in digits.rglob("*.png")) == before


def test_goal_needs_accuracy_and_time():
    def r(acc, seconds):
        return {"test": {"acc": acc}, "train_seconds": seconds}

    systems = {"imgclf": r(0.9, 50), "fastai": r(0.85, 60), "plain": r(0.88, 40)}
    assert quality.goal(systems)["met"]
    systems["imgclf"] = r(0.87, 50)
    assert not quality.goal(systems)["accuracy_met"]
    systems["imgclf"] = r(0.9, 70)
    assert quality.goal(systems) == {
        "score": "acc",
        "best_other_test_acc": 0.88,
        "accuracy_met": True,
        "time_met": False,
        "met": False,
    }
    assert quality.goal({"imgclf": r(0.9, 1)}) is None


def run_result(system, acc, seconds, stages=None):
    return {
        "system": system,
        "train_seconds": seconds,
        "test": {"acc": acc, "logloss": 0.3},
        "test_tta": {"acc": acc, "logloss": 0.3},
        "sizes": {"train": 6, "valid": 2, "test": 2},
        "load_average": [1.0, 1.0],
        "stages": stages or [{"name": "head", "epochs": 1, "seconds": 1.0, "valid_acc": 0.5}],
        "best": {"stage": "head", "epoch": 1},
    }


def test_merge_puts_runs_of_separate_processes_together_and_averages_the_seeds(tmp_path):
    common = {
        "date": "d",
        "epochs": 5,
        "machine": {"cpu": "c", "cores": 2, "torch": "t", "load_average_at_end": [1.0, 1.0, 1.0]},
    }
    paths = []
    runs = (
        ("imgclf", 0, 0.9, 10),
        ("imgclf", 1, 0.8, 12),
        ("fastai", 0, 0.8, 20),
        ("plain", 0, 0.85, 5),
    )
    for k, (system, seed, acc, seconds) in enumerate(runs):
        path = tmp_path / str(k) / "results-quality.json"
        path.parent.mkdir()
        entry = {"runs": {system: {str(seed): run_result(system, acc, seconds)}}}
        path.write_text(json.dumps({**common, "sets": {"digits": entry}}))
        paths.append(path)
    merged = quality.merge(paths, tmp_path)
    ours = merged["sets"]["digits"]["systems"]["imgclf"]
    assert ours["seeds"] == ["0", "1"]
    assert ours["test_acc"]["mean"] == pytest.approx(0.85)
    assert ours["test_acc"]["sd"] == pytest.approx(0.0707107, rel=1e-5)
    assert ours["train_seconds"] == pytest.approx(11)
    # Mean 0.85 equals plain's 0.85: met; 11 s against fastai's 20 s: met.
    assert merged["sets"]["digits"]["goal"]["met"]
    report = (tmp_path / "results-quality.md").read_text()
    assert "## Half 'choose': defaults chosen here" in report
    assert "| digits | 6/2/2 | imgclf | 2 | 0.850 ± 0.071 |" in report
    assert "- digits: accuracy met (best other 0.850), time met" in report


def test_the_unfrozen_gain_is_the_last_stage_against_the_head():
    stages = [{"name": "head", "valid_acc": 0.829}, {"name": "finetune", "valid_acc": 0.8}]
    assert quality.unfrozen_gain({"stages": stages}) == pytest.approx(-0.029)
    assert quality.unfrozen_gain({"stages": stages[:1]}) is None


def test_the_halves_split_the_six_sets_each_with_small_and_large_ones():
    assert set(quality.HALVES["choose"]).isdisjoint(quality.HALVES["confirm"])
    assert {*quality.HALVES["choose"], *quality.HALVES["confirm"]} == set(quality_data.SETS) - set(
        quality_data.LABELS
    )
    for names in quality.HALVES.values():
        assert any(n in quality_data.LARGE for n in names)
        assert any(n not in quality_data.LARGE for n in names)
        assert all(n in quality_data.IMAGE_SIZE for n in names)


def test_a_large_set_split_keeps_each_group_in_one_part():
    image = Image.new("RGB", (4, 4))
    samples = [(f"f{font}-{c}", c, f"f{font}", image) for font in range(300) for c in "abcd"]
    parts = quality_large.split_groups(samples)
    groups = {name: {s[2] for s in members} for name, members in parts.items()}
    assert groups["train"].isdisjoint(groups["valid"]) and groups["valid"].isdisjoint(
        groups["test"]
    )
    assert groups["train"].isdisjoint(groups["test"])
    # 300 fonts: 45 (15 %) each for valid and test, 4 samples each; the rest trains.
    assert [len(parts[n]) for n in ("train", "valid", "test")] == [840, 180, 180]
    assert parts == quality_large.split_groups(samples)  # seeded


def test_the_options_table_compares_each_option_with_the_default_row():
    def run(acc, overrides=""):
        return {
            "test": {"acc": acc, "logloss": 0.4},
            "test_tta": {"acc": acc, "logloss": 0.4},
            "train_seconds": 30.0,
            "stages": [{"valid_acc": 0.8}, {"valid_acc": 0.85}],
            "load_average": [1.0, 2.0],
            "overrides": overrides,
            "measured": "2026-12-02 11:00 UTC",
        }

    machine = {"cpu": "c", "cores": 2, "torch": "t", "load_average_at_end": [1.0, 1.0, 1.0]}
    options = {"toy": {"default": run(0.9), "ema": run(0.925, "callbacks.default.ema_decay=0.998")}}
    lines = quality.options_markdown(options, machine)
    assert "## Options" in lines
    assert (
        "| toy | ema | `callbacks.default.ema_decay=0.998` | 0.925 | +0.025 | 0.925 | 0.400 "
        "| 0.850 | 30 | 1.0, 2.0 | 2026-12-02 11:00 UTC |"
    ) in lines
    assert any(line.startswith("| toy | default | `-` | 0.900 | +0.000 |") for line in lines)
    assert quality.options_markdown({}) == []


def test_the_mosaics_set_is_a_planet_style_csv_with_a_labelled_test_split(tmp_path):
    from imgclf.data.csv_labels import CsvDataModule

    root = quality_data.build("mosaics", tmp_path, limit=6)
    assert quality_data.counts(root) == {"train": 6, "valid": 6, "test": 6}
    rows = quality_data.read_tags(root / "labels.csv")
    assert (root / "labels.csv").read_text().splitlines()[0] == "image_name,tags,is_valid"
    assert [valid for *_, valid in rows] == [False] * 6 + [True] * 6
    tables = {"train": rows, "test": quality_data.read_tags(root / quality_data.TEST_LABELS)}
    for folder, table in tables.items():
        for name, tags, _ in table:
            assert (root / folder / f"{name}.png").is_file()
            assert 1 <= len(tags) <= 4 and set(tags) <= set("0123456789")
    with Image.open(root / "test" / f"{tables['test'][0][0]}.png") as image:
        assert image.size == (64, 64)
    # imgclf reads it with the overrides quality.py passes: the same train/valid parts.
    args = quality_data.imgclf_data_args("mosaics", root)
    assert args[:2] == ["data=csv", f"data.root={root}"] and "data.label_delim=' '" in args
    data = CsvDataModule(root, **quality_data.csv_layout(multi=True))
    data.setup("fit")
    assert len(data.train_items) == 6 and len(data.valid_items) == 6
    assert quality_data.imgclf_data_args("digits", root)[0] == "data=folder"
    assert "mosaics" in quality.planned_sets(quality.parse_args([]))
    assert "mosaics" not in quality.planned_sets(quality.parse_args(["--half", "choose"]))


def test_the_typefaces_set_is_a_kaggle_style_labels_csv_with_a_labelled_test_split(tmp_path):
    import csv

    import matplotlib

    from imgclf.data.csv_labels import CsvDataModule

    # matplotlib's DejaVu fonts stand in for fonts-urw-base35: three typefaces.
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = {
        name: sorted(str(p) for p in ttf.glob(f"{stem}*.ttf"))
        for name, stem in (
            ("mono", "DejaVuSansMono"),
            ("sans", "DejaVuSans-"),
            ("serif", "DejaVuSerif"),
        )
    }
    assert all(fonts.values())
    root = quality_data.build("typefaces", tmp_path, limit=10, fonts=fonts)
    # 10 a class, 60/20/20 % stratified: 6/2/2 of each of the three.
    assert quality_data.counts(root) == {"train": 18, "valid": 6, "test": 6}
    with open(root / "labels.csv", newline="") as f:
        header, *rows = list(csv.reader(f))
    with open(root / quality_data.TEST_LABELS, newline="") as f:
        test_header, *test_rows = list(csv.reader(f))
    assert header == ["id", "label", "is_valid"] and test_header == ["id", "label"]
    ids = [r[0] for r in rows] + [r[0] for r in test_rows]
    assert len(set(ids)) == len(ids) == 30  # train, valid and test are disjoint
    assert not any(name in i for i in ids for name in fonts)  # an id names no class
    for part in ([r for r in rows if r[2] == "False"], [r for r in rows if r[2] == "True"]):
        assert {r[1] for r in part} == set(fonts)
    assert sorted(r[1] for r in test_rows) == sorted(list(fonts) * 2)
    assert sorted(p.stem for p in (root / "train").iterdir()) == sorted(r[0] for r in rows)
    assert sorted(p.stem for p in (root / "test").iterdir()) == sorted(r[0] for r in test_rows)
    with Image.open(root / "test" / f"{test_rows[0][0]}.png") as image:
        assert image.size == (64, 64) and image.mode == "RGB"
    # imgclf reads it as quality.py passes it (data=csv, one label a row), fastai and the
    # plain loop with --csv.
    args = quality_data.imgclf_data_args("typefaces", root)
    assert args[:2] == ["data=csv", f"data.root={root}"]
    assert "data.valid_column='is_valid'" in args and not any("label_delim" in a for a in args)
    data = CsvDataModule(root, **quality_data.csv_layout(multi=False))
    data.setup("fit")
    assert len(data.train_items) == 18 and len(data.valid_items) == 6
    assert data.classes == sorted(fonts) and data.task == "single"
    assert quality_data.baseline_data_args("typefaces") == ["--csv"]
    assert quality_data.baseline_data_args("mosaics") == ["--multi"]
    assert quality_data.baseline_data_args("digits") == []
    assert "typefaces" in quality.planned_sets(quality.parse_args([]))


def test_the_labels_section_reports_a_single_label_csv_set_by_test_accuracy():
    runs = {
        "imgclf": {"0": run_result("imgclf", 0.9, 50), "1": run_result("imgclf", 0.84, 50)},
        "fastai": {"0": run_result("fastai", 0.8, 60)},
        "plain": {"0": run_result("plain", 0.86, 40)},
    }
    entry = {"runs": runs}
    quality.refresh(entry)
    assert entry["goal"]["score"] == "acc" and entry["goal"]["met"]  # 0.87 >= 0.86, 50 <= 60
    lines = quality.labels_markdown({"sets": {"typefaces": entry}})
    assert "## Labels from a CSV" in lines
    row = next(line for line in lines if line.startswith("| typefaces | 6/2/2 | imgclf"))
    assert (
        row
        == "| typefaces | 6/2/2 | imgclf | 2 | 0.870 ± 0.042 | 0.870 ± 0.042 | 0.300 | 50 | n/a |"
    )
    assert "- typefaces: accuracy met (best other 0.860), time met" in lines
    assert not any("test F2" in line for line in lines)  # no multi-label table


def test_tag_scores_are_samples_f2_and_exact_match_at_one_half():
    from sklearn.metrics import fbeta_score

    from benchmarks.quality_plain import tag_scores
    from imgclf.task import samples_fbeta

    labels = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]], np.float32)
    probs = np.array([[0.9, 0.2, 0.6], [0.7, 0.8, 0.1], [0.4, 0.9, 0.3]])
    scores = tag_scores(probs, labels)
    # Row 1 exact (F2 1); row 2 one added (F2 5/6); row 3 one missed (F2 5/9).
    assert scores["exact"] == scores["acc"] == pytest.approx(1 / 3)
    assert scores["f2"] == pytest.approx((1 + 5 / 6 + 5 / 9) / 3)
    # fastai's side scores with scikit-learn's samples F-beta: the same numbers.
    predicted = probs >= 0.5
    assert fbeta_score(labels, predicted, beta=2, average="samples") == pytest.approx(
        samples_fbeta(predicted, labels).mean()
    )


def test_the_multi_label_table_reports_f2_and_exact_match_and_its_goal_uses_f2():
    def tagged(system, f2, exact, seconds):
        result = run_result(system, exact, seconds)
        for split in ("test", "test_tta"):
            result[split].update(f2=f2, exact=exact)
        return result

    runs = {
        "imgclf": {"0": tagged("imgclf", 0.9, 0.6, 50), "1": tagged("imgclf", 0.84, 0.5, 50)},
        "fastai": {"0": tagged("fastai", 0.84, 0.7, 60)},
        "plain": {"0": tagged("plain", 0.86, 0.4, 40)},
    }
    entry = {"runs": runs}
    quality.refresh(entry)
    assert entry["goal"]["score"] == "f2" and entry["goal"]["accuracy_met"]
    assert entry["goal"]["best_other_test_acc"] == pytest.approx(0.86)
    results = {"sets": {"mosaics": entry}}
    lines = quality.labels_markdown(results)
    row = next(line for line in lines if line.startswith("| mosaics | 6/2/2 | imgclf"))
    assert "| 0.870 ± 0.042 | 0.550 |" in row
    assert any(line.startswith("- mosaics: F2 met (best other 0.860)") for line in lines)
    assert quality.labels_markdown({"sets": {}}) == []


def test_the_default_plan_runs_imgclf_with_three_seeds_and_the_references_once():
    from benchmarks.quality import REFERENCE_SEEDS, SEEDS, SYSTEMS, run_plan

    plan = run_plan(["digits", "glyphs"], list(SYSTEMS), list(SEEDS), list(REFERENCE_SEEDS))
    assert plan[:4] == [
        ("digits", "imgclf", 0),
        ("digits", "fastai", 0),
        ("digits", "plain", 0),
        ("digits", "imgclf", 1),
    ]
    assert len(plan) == 2 * (3 + 1 + 1)
    assert {seed for _, system, seed in plan if system != "imgclf"} == {0}
    everything = run_plan(["faces"], ["imgclf", "fastai"], [0, 1, 2], [1, 2])
    assert [(system, seed) for _, system, seed in everything] == [
        ("imgclf", 0),
        ("imgclf", 1),
        ("fastai", 1),
        ("imgclf", 2),
        ("fastai", 2),
    ]


def test_every_imgclf_run_starts_with_a_cold_feature_cache(tmp_path):
    command = quality.imgclf_train_command(tmp_path / "faces", 64, tmp_path / "s0", [], seed=1)
    assert f"paths.cache_dir={tmp_path / 's0' / 'feature-cache'}" in command
    assert "seed=1" in command and "data.image_size=64" in command
    other = quality.imgclf_train_command(tmp_path / "faces", 64, tmp_path / "s1", [], seed=1)
    assert {c for c in command if "cache_dir" in c}.isdisjoint(other)
