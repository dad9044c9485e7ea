"""SIGTERM under real DDP (two CPU processes, gloo, started by Lightning): every rank stops
after the same batch, one `interrupted.ckpt` is written, no rank outlives the launcher, and
the run resumes to its end.

The signal goes to the launcher alone (`kill <pid>`) or to the whole process group (what
`docker stop`, SLURM pre-emption and a terminal's Ctrl-C do).
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from helpers.cli import run_cli, small_run_overrides, start_cli
from helpers.folders import make_image_folder

from imgclf.training.checkpoints import read_checkpoint

# 2 x 10 training images, 2 per batch on each of the 2 ranks: 5 steps an epoch.
STEPS_PER_EPOCH = 5
STAGES = (
    "recipe.stages=["
    "{name:head,freeze_to:-1,epochs:1,lr:0.01},"
    "{name:finetune,freeze_to:0,epochs:3,lr:1e-3,schedule:constant}]"
)


def ddp_overrides(root: Path, workdir: Path) -> list[str]:
    return [
        *small_run_overrides(root, workdir, batch_size=2),
        STAGES,
        "trainer=ddp_cpu",
        "logger=csv",
        "callbacks.default.step_checkpoint_every=2",
        "callbacks.default.console=false",
        "+trainer.enable_progress_bar=false",
    ]


def wait_for_a_step_in_stage_two(process: subprocess.Popen, run_root: Path) -> Path:
    """The run directory, once last.ckpt holds a training step of the second stage."""
    deadline = time.monotonic() + 480
    seen = None
    while time.monotonic() < deadline and process.poll() is None:
        for last in run_root.glob("*/checkpoints/last.ckpt"):
            stamp = last.stat().st_mtime_ns
            if stamp != seen:
                seen = stamp
                state = read_checkpoint(last)
                stage = state["callbacks"]["RecipeProgress"]["stage_index"]
                if stage == 2 and state["global_step"] > STEPS_PER_EPOCH:
                    return last.parent.parent
        time.sleep(0.02)
    raise AssertionError(f"no stage-2 step checkpoint appeared (exit code {process.returncode})")


def stop_ddp_run(args: list[str], cwd: Path, group: bool):
    """Start a DDP `imgclf train`, send SIGTERM in stage 2 to the launcher or its whole
    process group; return the run directory, the exit status, stderr and the rank PIDs."""
    with open(cwd / "stderr.txt", "w") as stderr:
        # Its own process group, as under a scheduler.
        launcher = start_cli("train", *args, cwd=cwd, stderr=stderr, start_new_session=True)
        try:
            run_dir = wait_for_a_step_in_stage_two(launcher, cwd / "logs" / "train")
            ranks = [p.pid for p in psutil.Process(launcher.pid).children(recursive=True)]
            if group:
                os.killpg(launcher.pid, signal.SIGTERM)
            else:
                launcher.send_signal(signal.SIGTERM)
            launcher.wait(timeout=300)
        finally:
            if launcher.poll() is None:
                os.killpg(launcher.pid, signal.SIGKILL)
                launcher.wait()
    return run_dir, launcher.returncode, (cwd / "stderr.txt").read_text(), ranks


@pytest.mark.parametrize("group", [False, True], ids=["launcher", "process-group"])
def test_sigterm_stops_every_rank_once_and_the_run_resumes(tmp_path, group):
    root = make_image_folder(tmp_path / "pets", n_train=10, n_valid=2, size=32)
    args = ddp_overrides(root, tmp_path)
    run_dir, code, stderr, ranks = stop_ddp_run(args, tmp_path, group)

    assert code == 143, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    # The other rank ran as a child of the launcher, and it is gone with it: no orphan.
    assert len(ranks) == 1, ranks
    assert not [pid for pid in ranks if psutil.pid_exists(pid)]
    saved = run_dir / "checkpoints" / "interrupted.ckpt"
    # Printed once, by rank 0, whichever ranks got the signal.
    assert stderr.count("SIGTERM: stopping after the running batch") == 1, stderr[-3000:]
    assert stderr.count("interrupted: saved") == 1 and stderr.count("resume with:") == 1
    lines = stderr.strip().splitlines()
    assert lines[-2] == f"interrupted: saved {saved}"
    assert lines[-1].startswith("resume with: imgclf train ")
    assert lines[-1].endswith(f"resume={saved}")
    # One checkpoint, written atomically: no temporary file of any rank left beside it.
    names = sorted(p.name for p in saved.parent.iterdir())
    assert [n for n in names if "interrupted" in n or ".tmp-" in n] == ["interrupted.ckpt"]
    state = read_checkpoint(saved)
    assert state["callbacks"]["RecipeProgress"]["stage_index"] == 2
    assert STEPS_PER_EPOCH < state["global_step"] < 4 * STEPS_PER_EPOCH
    assert not (run_dir / "summary.json").exists()
    # Only rank 0 wrote the run's overrides: not those Lightning adds for the other rank.
    saved_overrides = (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert "train_ddp_process" not in saved_overrides and "output_subdir" not in saved_overrides
    if group:
        return  # resuming is the same for both; the launcher case checks it

    result = run_cli("train", *args, f"resume={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 4 * STEPS_PER_EPOCH
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3, 4]
    assert summary["resumed_from"] == str(saved)
