"""A disk that fills up during a real `imgclf train`: the run directory lies on a small tmpfs
(we mount one; skipped where mounting is not allowed), and once the second stage has begun
the test fills the rest of it, so the next checkpoint write fails with the OS's ENOSPC."""

import errno
import subprocess
import time
from pathlib import Path

import pytest
from helpers.cli import small_run_overrides, start_cli
from helpers.folders import make_image_folder

from imgclf.training.checkpoints import read_checkpoint

# 2 x 6 training images in batches of 2: 6 steps an epoch. Stage 2 is long enough that the
# disk is full well before it ends: without loader workers a step of 32 px images takes a few
# milliseconds, and 4 epochs could end before the test had filled the disk.
STEPS_PER_EPOCH = 6
STAGE2_EPOCHS = 40
STAGES = (
    "recipe.stages=["
    "{name:head,freeze_to:-1,epochs:1,lr:0.01},"
    f"{{name:finetune,freeze_to:0,epochs:{STAGE2_EPOCHS},lr:1e-3,schedule:constant}}]"
)


@pytest.fixture
def small_disk(tmp_path):
    """A 400 MB tmpfs at tmp_path/disk, unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=400m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(folder: Path) -> Path:
    """Write zeros to folder/filler until the file system has no space left."""
    filler = folder / "filler"
    chunk = bytes(1 << 20)
    with open(filler, "wb", buffering=0) as stream:
        try:
            while True:
                stream.write(chunk)
        except OSError as err:
            assert err.errno == errno.ENOSPC, err
    return filler


def wait_for_stage_two(process: subprocess.Popen, last: Path) -> dict:
    """last.ckpt once it holds a training step of the second stage."""
    deadline = time.monotonic() + 480
    seen = None
    while time.monotonic() < deadline and process.poll() is None:
        if last.is_file() and last.stat().st_mtime_ns != seen:
            seen = last.stat().st_mtime_ns
            state = read_checkpoint(last)
            if state["callbacks"]["RecipeProgress"]["stage_index"] == 2:
                return state
        time.sleep(0.02)
    raise AssertionError(f"no stage-2 checkpoint appeared (exit code {process.returncode})")


def test_a_disk_filling_up_in_training_is_one_line_and_keeps_the_finished_stage(
    tmp_path, small_disk
):
    root = make_image_folder(tmp_path / "pets", n_train=6, n_valid=2, size=32)
    run_dir = small_disk / "run"
    args = [
        *small_run_overrides(root, tmp_path, batch_size=2),
        STAGES,
        f"hydra.run.dir={run_dir}",
        "logger=csv",
        f"logger.csv.save_dir={tmp_path / 'csv'}",  # only checkpoints are written in stage 2
        "callbacks.default.step_checkpoint_every=2",
        "callbacks.default.console=false",
        "+trainer.enable_progress_bar=false",
    ]
    with open(tmp_path / "stderr.txt", "w") as stderr:
        process = start_cli("train", *args, cwd=tmp_path, stderr=stderr)
        try:
            wait_for_stage_two(process, run_dir / "checkpoints" / "last.ckpt")
            fill(small_disk)
            process.wait(timeout=300)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    stderr = (tmp_path / "stderr.txt").read_text()

    assert process.returncode == 2, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and stderr.strip().splitlines()[-1] == errors[0], stderr[-3000:]
    checkpoints = run_dir / "checkpoints"
    assert errors[0].startswith(f"error: no space left on device writing {checkpoints}/")
    assert errors[0].endswith(", if any, is kept); free some space and resume")
    # No temporary file left; the finished stage and the checkpoints before the failed write
    # are whole and load.
    names = sorted(p.name for p in checkpoints.iterdir())
    assert names == ["best.ckpt", "last.ckpt", "stage1-head.ckpt"]
    stage1 = read_checkpoint(checkpoints / "stage1-head.ckpt")
    assert stage1["callbacks"]["RecipeProgress"]["stages_done"] == 1
    assert stage1["global_step"] == STEPS_PER_EPOCH
    last = read_checkpoint(checkpoints / "last.ckpt")
    assert last["callbacks"]["RecipeProgress"]["stage_index"] == 2
    assert STEPS_PER_EPOCH < last["global_step"] < (1 + STAGE2_EPOCHS) * STEPS_PER_EPOCH
    read_checkpoint(checkpoints / "best.ckpt")
    assert not (run_dir / "summary.json").exists()
