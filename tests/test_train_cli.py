"""End to end: `imgclf train` on a tiny generated image folder, as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from imgclf.testing import make_image_folder

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "NO_ALBUMENTATIONS_UPDATE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "imgclf.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    tmp = tmp_path_factory.mktemp("train")
    root = make_image_folder(tmp / "pets", classes=("cats", "dogs"), n_train=12, n_valid=6, size=48)
    result = run_cli(
        "train",
        "data=folder",
        f"data.root={root}",
        "data.image_size=32",
        "data.batch_size=8",
        "data.num_workers=0",
        "trainer.max_epochs=2",
        "logger=many",
        f"paths.log_dir={tmp / 'logs'}",
        cwd=tmp,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result, tmp


def test_last_line_is_the_run_directory(trained_run):
    result, tmp = trained_run
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    assert run_dir.is_dir()
    assert run_dir.parent == tmp / "logs" / "train"


def test_run_directory_holds_checkpoints_config_summary_and_logs(trained_run):
    result, _ = trained_run
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    config = (run_dir / "config.yaml").read_text()
    assert "${" not in config  # resolved, not interpolations
    assert "tf_efficientnet_lite0" in config
    assert (run_dir / "csv" / "metrics.csv").is_file()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))


def test_summary_json_reports_the_run(trained_run):
    result, _ = trained_run
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["backbone"] == "tf_efficientnet_lite0"
    assert summary["image_size"] == 32
    assert summary["epochs"] == 2
    assert summary["classes"] == ["cats", "dogs"]
    assert summary["train_images"] == 24
    assert summary["valid_images"] == 12
    assert summary["skipped_files"] == 0
    assert set(summary["lr"]) == {"decay", "no_decay"}
    assert all(lr > 0 for lr in summary["lr"].values())
    assert 0.0 <= summary["best_valid_acc"] <= 1.0
    assert summary["valid_logloss"] > 0
    assert summary["wall_seconds"] > 0
    assert len(summary["history"]) == 2
    assert summary["best_valid_acc"] == max(h["valid/acc"] for h in summary["history"])
    best = Path(summary["best_checkpoint"])
    assert best.name == "best.ckpt" and best.is_file()
    # The best checkpoint holds the whole model, head sized for the two classes.
    state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    assert state["head.8.weight"].shape == (2, 512)


def test_help_lists_the_config_groups(tmp_path):
    result = run_cli("train", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for group in ("data:", "model:", "trainer:", "logger:", "callbacks:", "experiment:"):
        assert group in result.stdout
    assert "cpu" in result.stdout and "gpu" in result.stdout
    assert "wandb" in result.stdout and "tensorboard" in result.stdout


def test_missing_data_root_is_a_one_line_error(tmp_path):
    result = run_cli("train", "data=folder", f"data.root={tmp_path / 'nowhere'}", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "nowhere" in lines[-1]
    assert "Traceback" not in result.stderr
