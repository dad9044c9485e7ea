"""Multi-label end to end on a tiny Planet-style folder: train (the task chosen from the
labels), then evaluate, predict, the Python API and an ONNX export checked with
onnxruntime; and the options that do not fit multi-label are one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.cli import run_cli, run_dir_of
from helpers.exported import preprocess
from PIL import Image

from imgclf.data import CsvDataModule
from imgclf.errors import UserError
from imgclf.model.loss import check_task_options

TAG_COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}


def tagged_image(tags: list[str], rng, size: int = 40) -> Image.Image:
    """A grey image with one horizontal band per tag, in the tag's colour."""
    pixels = np.full((size, size, 3), 128.0) + rng.normal(0, 10, (size, size, 3))
    for band, name in enumerate(TAG_COLOURS):
        if name in tags:
            pixels[band * size // 3 : (band + 1) * size // 3] = TAG_COLOURS[name]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def planet_folder(root: Path, n: int = 30) -> Path:
    """root/train/<name>.png, root/labels.csv (image_name,tags) and root/test/*.png."""
    rng = np.random.default_rng(0)
    sets = [["red"], ["green", "blue"], ["red", "blue"], ["blue"], ["red", "green", "blue"]]
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    rows = []
    for i in range(n):
        tags = sets[i % len(sets)]
        tagged_image(tags, rng).save(root / "train" / f"img_{i}.png")
        rows.append(f"img_{i},{' '.join(tags)}")
    (root / "labels.csv").write_text("\n".join(["image_name,tags", *rows]) + "\n")
    for i in range(3):
        tagged_image(sets[i], rng).save(root / "test" / f"t{i}.png")
    return root


@pytest.fixture(scope="module")
def multi_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multi")
    root = planet_folder(tmp / "planet")
    result = run_cli(
        "train", "data=csv", f"data.root={root}", "data.label_delim=' '", "data.suffix=.png",
        "data.image_size=32", "data.batch_size=8", "data.num_workers=0",
        # lesson1: LR finder, precomputed augmented views, then unfrozen at 64 px
        "recipe.stages.0.epochs=2", "recipe.stages.1.epochs=1", "recipe.finetune_image_size=64",
        "logger=csv",
        f"paths.log_dir={tmp / 'logs'}", f"paths.cache_dir={tmp / 'cache'}", cwd=tmp,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir_of(result), root, tmp


@pytest.mark.slow
def test_training_chooses_multi_label_and_keeps_a_validated_threshold(multi_run):
    run_dir, _, _ = multi_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["task"] == "multi"
    assert summary["classes"] == ["blue", "green", "red"]
    assert 0.0 <= summary["best_valid_fbeta"] <= 1.0
    assert len(summary["thresholds"]) == 3 and len(set(summary["thresholds"])) == 1
    assert 0.05 <= summary["thresholds"][0] <= 0.95
    head, finetune = summary["stages"]
    assert head["lr_find"]["suggestion"] > 0 and not head["precompute"]["reused"]
    assert finetune["image_size"] == 64 and len(set(finetune["lr"].values())) == 3
    history = summary["history"]
    assert all(
        {"valid/fbeta", "valid/threshold", "valid/ap", "valid/acc"} <= set(h) for h in history
    )
    best = torch.load(run_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    assert best["hyper_parameters"]["task"] == "multi"
    assert best["imgclf"]["thresholds"] == summary["thresholds"]


@pytest.mark.slow
def test_summary_json_records_each_stage_size_and_the_best_weights_size(multi_run):
    run_dir, _, _ = multi_run
    summary = json.loads((run_dir / "summary.json").read_text())
    sizes = {stage["name"]: stage["image_size"] for stage in summary["stages"]}
    assert sizes == {"head": 32, "finetune": 64}
    best = summary["best_weights"]
    assert best["image_size"] == sizes[best["stage"]] == summary["image_size"]
    # What evaluate, predict and export take: best.ckpt, at that size.
    checkpoint = torch.load(
        run_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True
    )
    assert checkpoint["imgclf"]["image_size"] == summary["image_size"]


@pytest.mark.slow
def test_evaluate_writes_per_tag_scores_and_top_losses_with_tag_sets(multi_run):
    run_dir, _, tmp = multi_run
    result = run_cli("evaluate", f"ckpt={run_dir}", "tta.n=0", cwd=tmp)
    assert result.returncode == 0, result.stderr[-2000:]
    out = run_dir_of(result)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "multi" and set(metrics["per_tag"]) == {"blue", "green", "red"}
    blue = metrics["per_tag"]["blue"]
    assert blue["images"] >= 1 and 0.0 <= blue["recall"] <= 1.0
    assert {"fbeta", "exact_match", "accuracy_multi", "logloss"} <= set(metrics["plain"])
    with open(out / "views" / "top_losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(set(r["true"].split()) <= {"blue", "green", "red"} for r in rows)
    losses = [float(r["loss"]) for r in rows]
    assert losses == sorted(losses, reverse=True)
    assert (out / "views" / "top_losses.png").is_file() and (out / "per_tag.csv").is_file()
    report = result.stdout.splitlines()
    assert any(line.split()[:1] == ["blue"] for line in report)  # a per-tag line
    assert any("F2" in line and "exact match" in line for line in report)


@pytest.mark.slow
def test_predict_writes_planet_tags_and_onnx_gives_the_same_sigmoid_probabilities(multi_run):
    import onnxruntime

    run_dir, root, tmp = multi_run
    result = run_cli(
        "predict", f"ckpt={run_dir}", f"input={root / 'test'}", "tta.n=0", "clip=null", cwd=tmp
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = run_dir_of(result)
    with open(out / "submission.csv") as f:
        tags = {row["image_name"]: row["tags"] for row in csv.DictReader(f)}
    with open(out / "submission_probs.csv") as f:
        probs = {row[0]: [float(p) for p in row[1:]] for row in list(csv.reader(f))[1:]}
    assert set(tags) == set(probs) == {"t0", "t1", "t2"}
    thresholds = json.loads((run_dir / "summary.json").read_text())["thresholds"]
    classes = ["blue", "green", "red"]
    for name, row in probs.items():
        expected = [c for c, p, t in zip(classes, row, thresholds, strict=True) if p >= t]
        assert tags[name].split() == expected

    exported = run_cli("export", f"ckpt={run_dir}", "format=onnx", cwd=tmp)
    assert exported.returncode == 0, exported.stderr[-2000:]
    card = json.loads((run_dir_of(exported) / "model.json").read_text())
    assert card["task"] == "multi" and "sigmoid" in card["output"]["meaning"]
    assert card["thresholds"] == dict(zip(classes, thresholds, strict=True))
    session = onnxruntime.InferenceSession(str(run_dir_of(exported) / "model.onnx"))
    batch = np.stack([preprocess(root / "test" / f"t{i}.png", card) for i in range(3)])
    got = session.run(None, {"images": batch})[0]
    assert got.shape == (3, 3) and ((got > 0) & (got < 1)).all()
    np.testing.assert_allclose(got, [probs[f"t{i}"] for i in range(3)], atol=1e-3)
    assert not np.allclose(got.sum(axis=1), 1.0)  # independent sigmoids, not a softmax
    import imgclf

    run = imgclf.load(run_dir)
    answer = run.predict(root / "test" / "t1.png")
    assert set(answer.tags) <= set(classes) and answer.label == " ".join(answer.tags)
    assert answer.probs["blue"] == pytest.approx(probs["t1"][0], abs=1e-4)


def test_single_label_options_are_one_line_errors_for_multi_label(tmp_path):
    root = planet_folder(tmp_path / "planet", n=10)
    for option in ({"balance": "sampler"}, {"per_class": 2}):
        dm = CsvDataModule(root, label_delim=" ", suffix=".png", num_workers=0, **option)
        with pytest.raises(UserError, match="not available for multi-label data"):
            dm.setup("fit")
    with pytest.raises(UserError, match=r"model.label_smoothing, model.mixup_alpha: not available"):
        check_task_options("multi", 0.1, 0.2, 0.0, None)
    check_task_options("single", 0.1, 0.2, 0.0, None)  # single-label takes them


def test_a_multi_label_model_trains_on_multi_hot_rows_and_checkpoints_its_thresholds():
    from imgclf.model import ImageClassifier

    torch.manual_seed(0)
    model = ImageClassifier(num_classes=3, weights="none", task="multi", n_groups=2)
    images = torch.randint(0, 255, (4, 3, 32, 32), dtype=torch.uint8)
    targets = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=torch.float32)
    logits = model(images)
    loss = model.task.training_loss(logits, targets)
    expected = torch.nn.functional.binary_cross_entropy(torch.sigmoid(logits), targets)
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    model.set_thresholds([0.2, 0.35, 0.5])
    checkpoint: dict = {}
    model.on_save_checkpoint(checkpoint)
    again = ImageClassifier(num_classes=3, weights="none", task="multi", n_groups=2)
    assert again.thresholds is None
    again.on_load_checkpoint(checkpoint)
    assert again.thresholds == [0.2, 0.35, 0.5]
    with pytest.raises(UserError, match="model.label_smoothing: not available for multi-label"):
        ImageClassifier(num_classes=3, weights="none", task="multi", label_smoothing=0.1)


def multi_overrides(root: Path, workdir: Path, log_dir: str) -> list[str]:
    """The kill-and-resume run of test_resume on a Planet-style folder."""
    from helpers.resume_run import overrides

    args = [a for a in overrides(root, workdir, log_dir) if a != "data=folder"]
    return ["data=csv", "data.label_delim=' '", "data.suffix=.png", *args]


@pytest.mark.slow
def test_a_killed_multi_label_run_resumes_to_the_same_weights_metrics_and_thresholds(tmp_path):
    from helpers.resume_run import last_line
    from test_resume import kill_in_second_stage

    from imgclf.training.checkpoints import read_checkpoint

    root = planet_folder(tmp_path / "planet", n=12)
    whole = last_line(run_cli("train", *multi_overrides(root, tmp_path, "whole"), cwd=tmp_path))
    args = multi_overrides(root, tmp_path, "killed")
    run_dir = kill_in_second_stage(args, tmp_path, tmp_path / "killed" / "train")
    assert not (run_dir / "summary.json").exists()
    resumed = run_cli("train", *args, f"resume={run_dir}", cwd=tmp_path)
    assert last_line(resumed) == run_dir
    expected = read_checkpoint(whole / "checkpoints" / "stage2-finetune.ckpt")
    got = read_checkpoint(run_dir / "checkpoints" / "stage2-finetune.ckpt")
    torch.testing.assert_close(got["state_dict"], expected["state_dict"], rtol=1e-6, atol=1e-7)
    assert got["imgclf"]["thresholds"] == expected["imgclf"]["thresholds"]
    want = json.loads((whole / "summary.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["task"] == "multi" and summary["thresholds"] == want["thresholds"]
    for got_epoch, want_epoch in zip(summary["history"], want["history"], strict=True):
        assert got_epoch["valid/fbeta"] == pytest.approx(want_epoch["valid/fbeta"], abs=1e-6)
