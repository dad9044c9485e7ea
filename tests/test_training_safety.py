"""Training that goes wrong safely: NaN losses, Ctrl-C, and secrets kept out of run files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from helpers.cli import run_cli, small_run_overrides, start_cli
from helpers.folders import make_image_folder
from helpers.models import small_datamodule_and_model

from imgclf.callbacks import SaveOnInterrupt
from imgclf.callbacks.interrupt import raise_if_interrupted, resume_command
from imgclf.errors import TrainingInterrupted
from imgclf.training.checkpoints import read_checkpoint


def only_run_dir(workdir: Path) -> Path:
    (run_dir,) = (workdir / "logs" / "train").iterdir()
    return run_dir


def test_a_nan_loss_that_no_recovery_mends_ends_the_stage_on_its_start_weights(tmp_path):
    root = make_image_folder(tmp_path / "pets", n_train=6, n_valid=3, size=32)
    # fine_tune's frozen stage trains one sane epoch; the unfrozen stage's LR of 1e30 makes
    # the weights overflow after its first step, so its next loss is NaN; three recoveries
    # (back to the stage's start, LRs x0.1 each) leave it at 1e27, NaN again.
    result = run_cli(
        "train",
        *small_run_overrides(root, tmp_path),
        "recipe=fine_tune",
        "recipe.stages.1.lr=1e30",
        "logger=csv",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stdout.splitlines() if " diverged at step " in line]
    assert len(lines) == 4
    assert lines[0].startswith(
        "stage 'unfrozen' diverged at step 5 (epoch 2): the training loss is nan;"
    )
    assert lines[-1].endswith("3 recoveries used, the stage ends on the stage's start")
    assert "stage 'unfrozen' stopped early after 2 of 4 epochs: it diverged again after 3" in (
        result.stdout
    )
    run_dir = only_run_dir(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    recoveries = summary["stages"][1]["recoveries"]
    assert [r.get("lr_scale") for r in recoveries] == pytest.approx([0.1, 0.01, 0.001, None])
    assert recoveries[-1]["stopped_stage"] is True
    assert summary["best_weights"]["stage"] == "frozen"
    # Every checkpoint holds finite weights: each recovery put the stage's start back before
    # the epoch's end wrote last.ckpt, and the run ends on the frozen stage's weights.
    checkpoints = run_dir / "checkpoints"
    for path in checkpoints.glob("*.ckpt"):
        checkpoint = read_checkpoint(path)  # weights_only=True
        assert all(torch.isfinite(t).all() for t in checkpoint["state_dict"].values()), path
    frozen = read_checkpoint(checkpoints / "stage1-frozen.ckpt")["state_dict"]
    last = read_checkpoint(checkpoints / "stage2-unfrozen.ckpt")["state_dict"]
    assert all(torch.equal(frozen[k], last[k]) for k in frozen)


def test_resume_command_repeats_the_overrides_and_replaces_resume():
    command = resume_command(
        "train", ["data.root=my pets", "resume=old.ckpt", "seed=1"], Path("/r/interrupted.ckpt")
    )
    assert command == "imgclf train 'data.root=my pets' seed=1 resume=/r/interrupted.ckpt"


def test_ctrl_c_saves_a_checkpoint_says_how_to_resume_and_exits_130(tmp_path):
    root = make_image_folder(tmp_path / "pets", n_train=6, n_valid=3, size=32)
    overrides = [
        *small_run_overrides(root, tmp_path),
        "recipe=fine_tune",
        "recipe.stages.0.epochs=100",  # long enough to be interrupted inside the first stage
        "logger=csv",
    ]
    process = start_cli(
        "train", *overrides, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # The marker: last.ckpt, written when the first epoch ends, inside trainer.fit.
        deadline = time.monotonic() + 300
        while not list((tmp_path / "logs").glob("train/*/checkpoints/last.ckpt")):
            assert process.poll() is None, process.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "training never finished its first epoch"
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    saved = only_run_dir(tmp_path) / "checkpoints" / "interrupted.ckpt"
    checkpoint = read_checkpoint(saved)  # weights_only=True
    assert checkpoint["epoch"] >= 1  # the first epoch had finished
    assert checkpoint["state_dict"]["head.8.weight"].shape == (2, 512)
    lines = stderr.strip().splitlines()
    assert lines[-2] == f"interrupted: saved {saved}"
    assert lines[-1] == f"resume with: imgclf train {' '.join(overrides)} resume={saved}"


def test_the_wandb_api_key_reaches_no_file_and_no_output(tmp_path):
    secret = "fake-secret-0123456789abcdef0123456789abcdef"
    root = make_image_folder(tmp_path / "pets", n_train=4, n_valid=2, size=32)
    os.environ["WANDB_API_KEY"] = secret  # run_cli hands os.environ to the subprocess
    try:
        result = run_cli(
            "train",
            *small_run_overrides(root, tmp_path),
            "recipe=fine_tune",
            "recipe.stages.1.epochs=1",
            "logger=wandb",
            cwd=tmp_path,
        )
    finally:
        del os.environ["WANDB_API_KEY"]
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path)
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    wandb_files = [p for p in files if "wandb" in p.parts]
    assert (run_dir / "config.yaml") in files and len(wandb_files) >= 3  # run, logs, metadata
    assert json.loads((run_dir / "summary.json").read_text())["epochs"] == 2
    leaking = [p for p in files if secret.encode() in p.read_bytes()]
    assert leaking == []
    assert secret not in result.stdout and secret not in result.stderr


def test_ctrl_c_between_fits_saves_through_the_trainer(tmp_path):
    """Ctrl-C outside trainer.fit (an LR finder, precompute) reaches train() directly."""
    root = make_image_folder(tmp_path / "pets", n_train=4, n_valid=2, size=32)
    datamodule, model = small_datamodule_and_model(root)
    saver = SaveOnInterrupt(tmp_path / "checkpoints")
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        callbacks=[saver],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    # Before any fit there is nothing to save.
    with pytest.raises(TrainingInterrupted, match="nothing saved"):
        raise_if_interrupted(trainer, [saver], KeyboardInterrupt())
    # Lightning's own sys.exit(1) without our checkpoint is not an interrupt we handle.
    assert raise_if_interrupted(trainer, [saver], SystemExit(1)) is None

    trainer.fit(model, datamodule=datamodule)
    with pytest.raises(TrainingInterrupted) as info:
        raise_if_interrupted(trainer, [saver], KeyboardInterrupt())
    saved = tmp_path / "checkpoints" / "interrupted.ckpt"
    assert info.value.message.splitlines() == [
        f"interrupted: saved {saved}",
        f"resume with: imgclf train resume={saved}",
    ]
    assert read_checkpoint(saved)["epoch"] == 1
