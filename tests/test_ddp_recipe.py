"""The lesson1 recipe and its evaluation under real DDP: two CPU processes (gloo)
started by Lightning, checked against a single-process evaluation of the same checkpoint."""

import csv
import json
import re
from pathlib import Path

import pytest
from helpers.cli import run_cli, run_dir_of, small_run_overrides
from helpers.folders import make_image_folder

DDP = ("trainer=ddp_cpu",)


def test_lesson1_recipe_and_evaluation_on_two_processes(tmp_path):
    # 9 validation images: DistributedSampler pads rank 1 with a copy of the first one.
    classes = ("cats", "dogs", "birds")
    root = make_image_folder(tmp_path / "pets", classes=classes, n_train=6, n_valid=3, size=40)
    (root / "train" / "cats" / "notes.jpg").write_text("not a jpeg")  # skipped, said once
    result = run_cli(
        "train",
        *small_run_overrides(root, tmp_path),
        "lr_find.num_iter=10",
        "recipe.stages.1.lr=auto",  # the LR finder in both stages
        "logger=many",
        "data.image_size=auto",  # 40 px originals: 64 px, said once, not by every rank
        *DDP,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in result.stdout + result.stderr
    assert result.stdout.count("image size auto: 64 px") == 1
    assert (result.stdout + result.stderr).count("skipped 1 unreadable files") == 1
    # Both ranks print their LR finder lines; every rank must train with the same LRs.
    found = re.findall(r"LR finder \((\w+)\): valley suggests (\S+);", result.stdout)
    assert sorted(stage for stage, _ in found) == ["finetune", "finetune", "head", "head"]
    agreed = dict(found)
    assert all(agreed[stage] == lr for stage, lr in found)
    run_dir = run_dir_of(result)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [s["name"] for s in summary["stages"]] == ["head", "finetune"]
    assert summary["epochs"] == 15
    for stage in summary["stages"]:
        assert f"{stage['lr_find']['suggestion']:.2e}" == agreed[stage["name"]]
        assert Path(stage["checkpoint"]).is_file()
    assert 0.0 <= summary["best_valid_acc"] <= 1.0
    assert summary["skipped_files"] == 1
    # Only rank 0 writes the plots (one per stage) and logs: one W&B run, one run directory.
    assert sorted(p.name for p in run_dir.glob("lr_find_*.png")) == [
        "lr_find_finetune.png",
        "lr_find_head.png",
    ]
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1
    assert len(list((tmp_path / "logs" / "train").iterdir())) == 1
    # The views gathered every rank's predictions and dropped the padded copy.
    with open(run_dir / "interpret" / "confusion.csv") as f:
        assert sum(int(c) for row in list(csv.reader(f))[1:] for c in row[1:]) == 9

    # Evaluating the best checkpoint on two processes gives what one process gives.
    evaluations = {}
    for name, extra in (("ddp", DDP), ("single", ())):
        result = run_cli(
            "evaluate",
            f"ckpt={run_dir}",
            *small_run_overrides(root, tmp_path / name),
            "logger=csv",
            "tta.n=2",
            *extra,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        eval_dir = run_dir_of(result)
        with open(eval_dir / "predictions.csv") as f:
            rows = list(csv.DictReader(f))
        evaluations[name] = json.loads((eval_dir / "metrics.json").read_text()), rows
    (ddp, ddp_rows), (single, single_rows) = evaluations["ddp"], evaluations["single"]
    valid_files = sorted(str(p) for p in (root / "valid").rglob("*.jpg"))
    assert sorted(row["path"] for row in ddp_rows) == valid_files  # each image exactly once
    for variant in ("plain", "tta"):
        assert ddp[variant]["accuracy"] == single[variant]["accuracy"]
        assert ddp[variant]["logloss"] == pytest.approx(single[variant]["logloss"], abs=1e-5)
    assert ddp["confusion_matrix"] == single["confusion_matrix"]
    for ddp_row, single_row in zip(ddp_rows, single_rows, strict=True):
        for name in classes:
            assert float(ddp_row[name]) == pytest.approx(float(single_row[name]), abs=1e-5)
