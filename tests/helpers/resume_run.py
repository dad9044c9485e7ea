"""A two-stage recipe run small enough for kill-and-resume tests, and the moment to stop it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from helpers.cli import run_dir_of, small_run_overrides

# Two stages: the head on precomputed features (2 augmented views), then everything unfrozen
# with its LR from the finder and SGDR. 10 training images in batches of 2: 5 steps an epoch.
STAGES = (
    "recipe.stages=["
    "{name:head,freeze_to:-1,epochs:1,lr:0.01,precompute:true,precompute_aug:2},"
    "{name:finetune,freeze_to:0,epochs:2,lr:auto,lr_mult:10,schedule:sgdr,n_cycles:2}]"
)
STEPS_PER_EPOCH = 5


def overrides(root: Path, workdir: Path, log_dir: str) -> list[str]:
    return [
        *small_run_overrides(root, workdir, batch_size=2),
        f"paths.log_dir={workdir / log_dir}",
        STAGES,
        "lr_find.num_iter=6",
        "logger=csv",
        "seed=7",
        "trainer.deterministic=true",
        "callbacks.default.step_checkpoint_every=2",
        "callbacks.default.console=false",
        "+trainer.enable_progress_bar=false",
    ]


def last_line(result: subprocess.CompletedProcess) -> Path:
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir_of(result)


def wait_for_a_step_in_stage_two(process: subprocess.Popen, run_root: Path) -> Path:
    """The run directory, once last.ckpt has been written by a training step of stage 2:
    after the stage's LR finder plot, last.ckpt changes again (a step checkpoint)."""
    deadline = time.monotonic() + 300
    seen: int | None = None
    while time.monotonic() < deadline and process.poll() is None:
        for plot in run_root.glob("*/lr_find_finetune.png"):
            last = plot.parent / "checkpoints" / "last.ckpt"
            if seen is None:
                seen = last.stat().st_mtime_ns
            elif last.stat().st_mtime_ns > seen:
                return plot.parent
        time.sleep(0.02)
    raise AssertionError(f"no stage-2 step checkpoint appeared (exit code {process.returncode})")
