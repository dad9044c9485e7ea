"""A messy real-world folder end to end, and files that break after the setup scan.

What the messy folder's files become (see `helpers.folders.make_messy_folder`):
  - used: RGBA, palette, grayscale, CMYK, 16-bit, EXIF-rotated, 1x1, non-ASCII and
    space-containing names;
  - skipped at setup, listed in one warning and in summary.json: zero-byte, text named
    .jpg, above data.max_pixels, file symlink loops;
  - passing the header scan but failing to decode (truncated JPEGs): replaced by another
    image each time a loader meets them, counted in summary.json, one warning at the end;
  - ignored, never candidates: hidden files (.DS_Store, ._foo.jpg), unsupported
    extensions (.gif, .txt), directory symlink loops (not followed).
"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.cli import run_cli, run_dir_of, small_run_overrides
from helpers.folders import MessyFolder, make_image_folder, make_messy_folder

from imgclf.data import FolderDataModule

# fine_tune with one epoch per stage: two epochs, so every train and valid file is loaded twice.
TRAIN_ARGS = ("recipe=fine_tune", "recipe.stages.1.epochs=1", "logger=csv")
EPOCHS = 2


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> MessyFolder:
    return make_messy_folder(tmp_path_factory.mktemp("messy") / "pets")


def messy_overrides(messy: MessyFolder, workdir: Path) -> list[str]:
    """Overrides every command run on the messy folder shares: the tiny data settings and
    the pixel limit that makes its big images too large."""
    return [*small_run_overrides(messy.root, workdir), f"data.max_pixels={messy.max_pixels}"]


def run_on_messy_folder(command: str, messy: MessyFolder, workdir: Path, *args: str):
    """`imgclf <command>` on the messy folder. `train` runs here; `evaluate` and `predict`
    on the same folder (with the trained run's checkpoint) go through this function too."""
    return run_cli(command, *messy_overrides(messy, workdir), *args, cwd=workdir)


@pytest.fixture(scope="module")
def messy_run(messy, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path, dict]:
    """The messy folder trained end to end through the CLI: (result, run dir, summary).
    Evaluate and predict tests reuse its checkpoint: run_dir / "checkpoints" / "best.ckpt"."""
    workdir = tmp_path_factory.mktemp("messy_run")
    result = run_on_messy_folder("train", messy, workdir, *TRAIN_ARGS)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = run_dir_of(result)
    return result, run_dir, json.loads((run_dir / "summary.json").read_text())


def test_training_on_a_messy_folder_uses_every_usable_image(messy, messy_run):
    _, run_dir, summary = messy_run
    usable = [*messy.usable, *messy.corrupt]  # corrupt files pass the header scan
    assert summary["train_images"] == len(messy.in_split(usable, "train")) == 2 * (6 + 10)
    assert summary["valid_images"] == len(messy.in_split(usable, "valid")) == 2 * (3 + 10)
    assert summary["epochs"] == EPOCHS
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()


def test_summary_counts_and_lists_exactly_the_skipped_files(messy, messy_run):
    _, _, summary = messy_run
    # 5 per folder (empty, text, too large, two symlink loops) in 5 folders, test/ included.
    assert summary["skipped_files"] == len(messy.skipped) == 25
    reasons = {Path(entry["path"]): entry["reason"] for entry in summary["skipped"]}
    assert set(reasons) == set(messy.skipped)
    for path, why in messy.skipped.items():
        assert why in reasons[path], (path, reasons[path])
    ignored = {str(p) for p in messy.ignored}
    assert not ignored & {entry["path"] for entry in summary["skipped"]}


def test_one_warning_lists_every_skipped_file(messy, messy_run):
    result, _, _ = messy_run
    lines = [line for line in result.stderr.splitlines() if "unreadable files:" in line]
    assert len(lines) == 1
    assert "skipped 25 unreadable files" in lines[0]
    for path in messy.skipped:
        assert str(path) in lines[0]
    for path in messy.ignored:
        assert f"{path} (" not in lines[0]


def test_truncated_files_are_replaced_counted_and_reported(messy, messy_run):
    result, _, summary = messy_run
    loaded = messy.in_split(messy.corrupt, "train") + messy.in_split(messy.corrupt, "valid")
    assert len(loaded) == 4
    # Each one fails once per epoch (train) and once per validation run (valid).
    assert summary["decode_failed_files"] == {str(p): EPOCHS for p in loaded}
    assert summary["decode_failures"] == 4 * EPOCHS
    warning = [line for line in result.stderr.splitlines() if "failed to decode" in line]
    assert len(warning) == 1 and warning[0].count("truncated.jpg") == 4


def test_verify_full_skips_truncated_files_at_setup(messy, tmp_path):
    with pytest.warns(UserWarning, match="skipped 30 unreadable files"):
        dm = FolderDataModule(messy.root, num_workers=0, verify="full", max_pixels=messy.max_pixels)
        dm.setup("fit")
    reasons = dict(dm.skipped)
    assert all("truncated" in reasons[path] for path in messy.corrupt)


def test_a_file_broken_after_the_scan_is_replaced_inside_workers(tmp_path):
    root = make_image_folder(tmp_path, n_train=6, n_valid=2, size=32)
    dm = FolderDataModule(root, image_size=32, batch_size=4, num_workers=2, seed=0)
    dm.setup("fit")
    broken, deleted = dm.train_items[1][0], dm.train_items[8][0]
    broken.write_bytes(broken.read_bytes()[:100])  # truncated after the scan
    deleted.unlink()

    loader = dm.train_dataloader()
    for _ in range(2):
        batches = [images for images, _ in loader]
        assert sum(len(b) for b in batches) == 12  # every slot filled, the epoch went on
        assert all(torch.isfinite(b).all() for b in batches)
    # Counted in the workers, seen in the main process: twice each (two epochs).
    assert dm.decode_failures() == {broken: 2, deleted: 2}
    with pytest.warns(UserWarning, match="2 files passed the setup scan but failed to decode 4"):
        assert dm.report_decode_failures() == {broken: 2, deleted: 2}


def test_evaluate_and_predict_run_to_the_end_on_the_messy_folder(messy, messy_run, tmp_path):
    _, run_dir, _ = messy_run
    checkpoint = f"ckpt={run_dir / 'checkpoints' / 'best.ckpt'}"
    result = run_on_messy_folder("evaluate", messy, tmp_path, checkpoint, "logger=csv", "tta.n=1")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir_of(result) / "metrics.json").read_text())
    usable = [*messy.usable, *messy.corrupt]
    assert metrics["images"] == len(messy.in_split(usable, "valid"))
    assert sorted(metrics["decode_failed"]) == sorted(
        map(str, messy.in_split(messy.corrupt, "valid"))
    )
    assert np.sum(metrics["confusion_matrix"]) == metrics["images"]

    out = tmp_path / "submission.csv"
    result = run_on_messy_folder(
        "predict",
        messy,
        tmp_path,
        checkpoint,
        f"input={messy.root / 'test'}",
        f"out={out}",
        "logger=csv",
        "tta.n=1",
        "clip=0.05",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((run_dir_of(result) / "predict.json").read_text())
    expected = messy.in_split(usable, "test")
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    # One row per image that passed the scan, odd names included; skipped ones listed.
    assert sorted(r[0] for r in rows) == sorted(p.stem for p in expected)
    assert record["skipped_files"] == len(messy.in_split(list(messy.skipped), "test"))
    # The truncated test file could not be decoded: its row is the uninformed 1/2.
    (broken,) = messy.in_split(messy.corrupt, "test")
    assert record["decode_failed"] == [str(broken)]
    assert [r[1:] for r in rows if r[0] == broken.stem] == [["0.500000", "0.500000"]]
