"""Resume: a run SIGKILLed in the middle of an epoch continues to the same weights and metrics."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.cli import run_cli, start_cli
from helpers.folders import make_image_folder
from helpers.resume_run import STEPS_PER_EPOCH, last_line, overrides, wait_for_a_step_in_stage_two

from imgclf.training.checkpoints import (
    AtomicCheckpointIO,
    atomic_link,
    atomic_torch_save,
    read_checkpoint,
)
from imgclf.training.resume import resume_argv, resume_checkpoint


def kill_in_second_stage(args: list[str], cwd: Path, run_root: Path) -> Path:
    """Start `imgclf train`, SIGKILL it as soon as it has saved a checkpoint in stage 2."""
    process = start_cli("train", *args, cwd=cwd)
    try:
        run_dir = wait_for_a_step_in_stage_two(process, run_root)
        process.send_signal(signal.SIGKILL)
        process.wait()
        return run_dir
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_killed_run_resumes_to_the_same_weights_and_metrics(tmp_path):
    root = make_image_folder(tmp_path / "pets", n_train=5, n_valid=3, size=40)
    whole = last_line(run_cli("train", *overrides(root, tmp_path, "whole"), cwd=tmp_path))

    run_dir = kill_in_second_stage(
        overrides(root, tmp_path, "killed"), tmp_path, tmp_path / "killed" / "train"
    )
    assert not (run_dir / "summary.json").exists()
    # The kill came in the middle of an epoch of the second stage.
    saved = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert saved["callbacks"]["RecipeProgress"]["stage_index"] == 2
    assert saved["imgclf"]["stage"] == "finetune"
    # Saved at the end of a training batch, before Lightning counts it as completed.
    progress = saved["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
    assert 1 <= progress["completed"] + 1 < STEPS_PER_EPOCH, progress
    assert STEPS_PER_EPOCH < saved["global_step"] < 3 * STEPS_PER_EPOCH

    result = run_cli(
        "train", *overrides(root, tmp_path, "killed"), f"resume={run_dir}", cwd=tmp_path
    )
    assert last_line(result) == run_dir  # the resumed run continues in its own directory
    assert "LR finder (finetune)" not in result.stdout  # its LRs came from the checkpoint

    expected = read_checkpoint(whole / "checkpoints" / "stage2-finetune.ckpt")
    got = read_checkpoint(run_dir / "checkpoints" / "stage2-finetune.ckpt")
    assert got["global_step"] == expected["global_step"] == 3 * STEPS_PER_EPOCH
    torch.testing.assert_close(got["state_dict"], expected["state_dict"], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(
        got["optimizer_states"][0]["state"],
        expected["optimizer_states"][0]["state"],
        rtol=1e-6,
        atol=1e-7,
    )

    whole_summary = json.loads((whole / "summary.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed_from"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert [s["name"] for s in summary["stages"]] == ["head", "finetune"]
    assert summary["stages"][1]["lr"] == whole_summary["stages"][1]["lr"]
    assert summary["epochs"] == whole_summary["epochs"] == 3
    # The summary covers the whole run: every epoch's validation metrics, as uninterrupted.
    assert len(summary["history"]) == 3
    for got_epoch, expected_epoch in zip(summary["history"], whole_summary["history"], strict=True):
        assert got_epoch.pop("stage", None) == expected_epoch.pop("stage", None)
        assert got_epoch == pytest.approx(expected_epoch, rel=1e-6, abs=1e-7)
    assert summary["final_valid_acc"] == whole_summary["final_valid_acc"]
    assert summary["valid_logloss"] == pytest.approx(whole_summary["valid_logloss"], rel=1e-6)


KILL_WHILE_SAVING = """
import os, signal, sys, torch
from imgclf.training.checkpoints import AtomicCheckpointIO

real_save = torch.save


def save_half_then_die(obj, handle):
    real_save(obj, handle)
    handle.truncate(handle.tell() // 2)  # half the bytes are on disk when the kill comes
    handle.flush()
    os.kill(os.getpid(), signal.SIGKILL)


torch.save = save_half_then_die
AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(1000)}}, sys.argv[1])
"""


def test_a_kill_while_saving_leaves_the_last_checkpoint_whole(tmp_path):
    last = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(1000)}}, last)
    before = last.read_bytes()
    result = subprocess.run(
        [sys.executable, "-c", KILL_WHILE_SAVING, str(last)], capture_output=True, text=True
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    # The half-written temporary file is there; last.ckpt is untouched and still loads.
    leftovers = list(last.parent.glob(".last.ckpt.tmp-*"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0
    assert last.read_bytes() == before
    torch.testing.assert_close(read_checkpoint(last)["state_dict"]["w"], torch.ones(1000))
    # resume= on the run directory picks last.ckpt, never the temporary file.
    assert resume_checkpoint(tmp_path) == last


def test_a_failed_save_removes_its_temporary_file_and_keeps_the_old_checkpoint(tmp_path):
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"w": torch.ones(3)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        atomic_torch_save({"w": torch.zeros(3), "bad": Unpicklable()}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    torch.testing.assert_close(torch.load(path, weights_only=True)["w"], torch.ones(3))


@pytest.mark.parametrize("hard_links", [True, False])
def test_a_stage_end_link_is_last_ckpt_and_a_later_save_leaves_the_stage_file(
    tmp_path, monkeypatch, hard_links
):
    stage, last = tmp_path / "stage1-head.ckpt", tmp_path / "last.ckpt"
    atomic_torch_save({"w": torch.ones(3)}, stage)
    atomic_torch_save({"w": torch.zeros(3)}, last)  # the epoch's own, replaced by the link
    if not hard_links:  # a file system without them: an atomic copy

        def no_link(*args):
            raise OSError(1, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_link)
    atomic_link(stage, last)
    assert last.read_bytes() == stage.read_bytes()
    assert (stage.stat().st_nlink == 2) is hard_links
    atomic_torch_save({"w": torch.full((3,), 7.0)}, last)  # the next stage's first epoch
    torch.testing.assert_close(read_checkpoint(stage)["w"], torch.ones(3))
    torch.testing.assert_close(read_checkpoint(last)["w"], torch.full((3,), 7.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", "stage1-head.ckpt"]


def test_resume_reuses_the_run_directory_and_its_overrides(tmp_path):
    run_dir = tmp_path / "logs" / "train" / "2026-01-01_00-00-00"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "checkpoints").mkdir()
    (run_dir / "config.yaml").write_text("seed: 1\n")
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (run_dir / ".hydra" / "overrides.yaml").write_text(
        "- data=folder\n- data.root=/data/pets\n- seed=1\n- +trainer.max_time=null\n"
    )
    argv = resume_argv(["seed=2", f"resume={run_dir}"])
    assert argv == [
        "data=folder",
        "data.root=/data/pets",
        "+trainer.max_time=null",
        "seed=2",  # given now: replaces the saved one
        f"resume={run_dir}",
        f'hydra.run.dir="{run_dir}"',
    ]
    # A checkpoint file of the run resumes the same run; no resume= leaves argv alone.
    assert resume_argv([f"resume={run_dir / 'checkpoints' / 'last.ckpt'}"])[-1] == argv[-1]
    assert resume_argv(["seed=2"]) == ["seed=2"]


def test_resume_from_nothing_is_a_one_line_error(tmp_path):
    result = run_cli("train", f"resume={tmp_path / 'gone'}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: resume: ")
    assert "gone" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "empty_run").mkdir()
    result = run_cli("train", f"resume={tmp_path / 'empty_run'}", cwd=tmp_path)
    assert (
        result.returncode == 2
        and "no checkpoints/last.ckpt or checkpoints/interrupted.ckpt in" in result.stderr
    )
