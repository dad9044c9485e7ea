"""Multi-label training and evaluation under real DDP: two CPU processes (gloo) started by
Lightning, on a Planet-style CSV. The thresholds and the samples-F2 must come from every
rank's validation predictions, as one process computes them on the whole validation set."""

import csv
import json

import numpy as np
import pytest
from helpers.cli import run_cli, run_dir_of
from helpers.wandb_log import read_wandb_offline_run
from test_multilabel import planet_folder

from imgclf.task import best_threshold
from imgclf.task.fbeta import samples_fbeta

DDP = ("trainer=ddp_cpu",)
CLASSES = ["blue", "green", "red"]


def csv_overrides(root, workdir) -> list[str]:
    return [
        "data=csv",
        f"data.root={root}",
        "data.label_delim=' '",
        "data.suffix=.png",
        "data.image_size=32",
        "data.batch_size=4",
        "data.num_workers=0",
        f"paths.log_dir={workdir / 'logs'}",
        f"paths.cache_dir={workdir / 'cache'}",
    ]


def read_predictions(path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """predictions.csv of a multi-label evaluation: paths, N x C truths, N x C probabilities."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    truth = np.array([[c in r["true"].split() for c in CLASSES] for r in rows])
    probs = np.array([[float(r[c]) for c in CLASSES] for r in rows])
    return [r["path"] for r in rows], truth, probs


def test_multi_label_recipe_and_evaluation_on_two_processes(tmp_path):
    root = planet_folder(tmp_path / "planet", n=25)
    result = run_cli(
        "train",
        *csv_overrides(root, tmp_path),
        "lr_find.num_iter=10",
        "recipe.stages.0.epochs=2",
        "recipe.stages.1.epochs=2",
        "callbacks.default.per_class_thresholds=true",
        "logger=csv",
        *DDP,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in result.stdout + result.stderr
    run_dir = run_dir_of(result)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["task"] == "multi" and summary["classes"] == CLASSES
    assert [s["name"] for s in summary["stages"]] == ["head", "finetune"]
    assert len(summary["thresholds"]) == 3
    assert len(list((tmp_path / "logs" / "train").iterdir())) == 1

    # The best checkpoint evaluated on two processes and on one.
    evaluations = {}
    for name, extra in (("ddp", (*DDP, "logger=wandb")), ("single", ("logger=csv",))):
        result = run_cli(
            "evaluate",
            f"ckpt={run_dir}",
            *csv_overrides(root, tmp_path / name),
            "tta.n=2",
            *extra,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        evaluations[name] = run_dir_of(result)
    ddp_dir, single_dir = evaluations["ddp"], evaluations["single"]
    ddp, single = (json.loads((d / "metrics.json").read_text()) for d in (ddp_dir, single_dir))
    paths, truth, probs = read_predictions(single_dir / "predictions.csv")
    ddp_paths, ddp_truth, ddp_probs = read_predictions(ddp_dir / "predictions.csv")
    n_valid = len(paths)
    assert n_valid % 2 == 1  # DistributedSampler pads rank 1 with a copy of the first image
    assert ddp_paths == paths and len(set(paths)) == n_valid  # each image exactly once
    assert (ddp_truth == truth).all()
    np.testing.assert_allclose(ddp_probs, probs, atol=1e-5)
    for variant in ("plain", "tta"):
        for key in ("fbeta", "exact_match", "accuracy_multi", "logloss"):
            assert ddp[variant][key] == pytest.approx(single[variant][key], abs=1e-5), key
    assert ddp["per_tag"] == single["per_tag"] and set(single["per_tag"]) == set(CLASSES)
    assert ddp["images"] == n_valid
    assert (ddp_dir / "per_tag.csv").read_text() == (single_dir / "per_tag.csv").read_text()
    # Rank 0 alone logs: one W&B run, one per-tag table holding metrics.json's numbers.
    (wandb_dir,) = (ddp_dir / "wandb").glob("offline-run-*")
    assert "evaluate/per_tag/_type" in read_wandb_offline_run(wandb_dir)["history"]
    (table,) = (wandb_dir / "files" / "media" / "table" / "evaluate").glob("per_tag_*.json")
    columns, rows = (json.loads(table.read_text())[k] for k in ("columns", "data"))
    assert {row[0]: dict(zip(columns[1:], row[1:], strict=True)) for row in rows} == ddp["per_tag"]

    # Training chose the thresholds and scored F2 on the whole validation set: the
    # thresholds are the best on one process's plain predictions of the best checkpoint,
    # and the best valid/fbeta is that checkpoint's F2 on them.
    assert single["thresholds"] == dict(zip(CLASSES, summary["thresholds"], strict=True))
    assert summary["best_valid_fbeta"] == pytest.approx(single["plain"]["fbeta"], abs=1e-5)
    # (Evaluate's predictions.csv holds the TTA probabilities: one process's plain pass.)
    plain = run_cli(
        "evaluate",
        f"ckpt={run_dir}",
        *csv_overrides(root, tmp_path / "plain"),
        "tta.n=0",
        "logger=csv",
        cwd=tmp_path,
    )
    assert plain.returncode == 0, plain.stderr[-3000:]
    _, truth, plain_probs = read_predictions(run_dir_of(plain) / "predictions.csv")
    whole = best_threshold(plain_probs, truth, per_class=True)
    assert summary["thresholds"] == whole
    f2 = samples_fbeta(plain_probs >= np.asarray(whole), truth).mean()
    assert summary["best_valid_fbeta"] == pytest.approx(f2, abs=1e-5)
    # One rank's share (DistributedSampler without shuffling: every other image) scores
    # differently, so the numbers above could not come from a single rank.
    half = samples_fbeta(plain_probs[::2] >= np.asarray(whole), truth[::2]).mean()
    assert half != pytest.approx(f2, abs=1e-3)
