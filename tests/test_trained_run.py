"""After `imgclf train`: evaluate, predict and export given the run directory alone, and an
exported model that a client reproduces from model.json with PIL and numpy only."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import run_cli, run_dir_of, small_run_overrides
from helpers.exported import preprocess
from helpers.folders import extra_images, make_image_folder
from PIL import Image

TRAIN_ARGS = ("recipe=fine_tune", "recipe.stages.1.epochs=1", "logger=wandb")
NOISE = ("litlogger", "LeafSpec", "in eval mode", "FLOPs", "not empty", "anonymous", "Skipping")
# W&B's own end-of-run block (the run keeps the history and summary).
NOISE += ("Run history", "Run summary")


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    """A tiny two-stage run (offline W&B): its CompletedProcess, run directory, image
    folder and working directory."""
    tmp = tmp_path_factory.mktemp("run")
    root = make_image_folder(tmp / "pets", n_train=8, n_valid=4, n_test=3, size=48)
    result = run_cli("train", *small_run_overrides(root, tmp), *TRAIN_ARGS, cwd=tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, run_dir_of(result), root, tmp


@pytest.fixture(scope="module")
def trained_run(training) -> tuple[Path, Path, Path]:
    """(the run directory, the image folder, the working directory)."""
    return training[1:]


def test_the_console_tells_stages_epochs_and_results_without_library_noise(training):
    result, run_dir, _, _ = training
    out = result.stdout
    assert "stage 1/2 frozen: 1 epoch at 32 px; frozen: body_early, body_late; LR " in out
    assert "stage 2/2 unfrozen: 1 epoch at 32 px; frozen: none; LR body_early 1.0e-05" in out
    epochs = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/1 (frozen)", "epoch 2/2 (unfrozen)"]
    assert all("train loss" in line and "valid acc" in line for line in epochs)
    summary = json.loads((run_dir / "summary.json").read_text())
    lines = out.strip().splitlines()
    best = f"best valid accuracy {summary['best_valid_acc']:.4f} at epoch {summary['best_epoch']}"
    assert any(line.startswith(best) for line in lines)
    assert f"  imgclf evaluate ckpt={run_dir}" in lines and lines[-1] == str(run_dir)
    for word in NOISE:
        assert word not in out + result.stderr, word


def test_a_run_writes_history_and_batch_pictures_and_logs_on_one_step_axis(training):
    from helpers.wandb_log import read_wandb_offline_run

    _, run_dir, _, _ = training
    summary = json.loads((run_dir / "summary.json").read_text())
    assert all(h["train/loss_epoch"] > 0 for h in summary["history"])
    with Image.open(run_dir / "history.png") as history, Image.open(run_dir / "batch.png") as b:
        assert history.size[0] > 300 and b.size[0] > 300
    wandb = read_wandb_offline_run(next((run_dir / "wandb").glob("offline-run-*")))
    # Four batches an epoch, fewer than log_every_n_steps: the loss and LRs are logged anyway.
    assert {"train/loss", "train/loss_epoch", "train/acc", "valid/acc"} <= wandb["history"]
    assert {"train/batch/filenames", "train/history/filenames"} <= wandb["history"]
    assert any(key.startswith("lr-") and key.endswith("head") for key in wandb["history"])
    assert wandb["steps"] == sorted(wandb["steps"]) and len(wandb["steps"]) > 4


def read_probabilities(path: Path) -> dict[str, list[float]]:
    with open(path) as f:
        rows = list(csv.reader(f))
    return {row[0]: [float(p) for p in row[1:]] for row in rows[1:]}


def test_export_is_self_contained_and_model_json_and_the_api_reproduce_predict(
    trained_run, tmp_path
):
    """One preprocessing path: `imgclf predict`, the Python API and the exported model fed
    by model.json's steps agree to 1e-5 on every kind of file."""
    import onnxruntime
    import torch

    import imgclf

    run_dir, root, tmp = trained_run
    paths = [*sorted((root / "test").glob("*.jpg")), *extra_images(tmp_path / "new")]
    predicted = run_cli(
        "predict", f"ckpt={run_dir}", f"input=[{','.join(map(str, paths))}]", "tta.n=0",
        "clip=null", cwd=tmp,
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    expected = read_probabilities(run_dir_of(predicted) / "submission.csv")
    assert set(expected) == {p.stem for p in paths}
    want = np.array([expected[p.stem] for p in paths])
    run = imgclf.load(run_dir)
    api = np.array([[run.predict(p).probs[c] for c in run.classes] for p in paths])
    np.testing.assert_allclose(api, want, atol=1e-5)
    for fmt, name in (("onnx", "model.onnx"), ("torchscript", "model.pt")):
        result = run_cli("export", f"ckpt={run_dir}", f"format={fmt}", cwd=tmp)
        assert result.returncode == 0, result.stderr[-2000:]
        out_dir = run_dir_of(result)
        # One self-contained model file: no model.onnx.data beside it.
        written = sorted(p.name for p in out_dir.iterdir() if p.name.startswith("model"))
        assert written == sorted([name, "model.json"])
        assert "initializer" not in result.stdout + result.stderr
        card = json.loads((out_dir / "model.json").read_text())
        assert card["classes"] == ["cats", "dogs"] and card["input"]["height"] == 32
        batch = np.stack([preprocess(p, card) for p in paths])
        if fmt == "onnx":
            session = onnxruntime.InferenceSession(str(out_dir / name))
            got = session.run(None, {"images": batch})[0]
        else:
            got = torch.jit.load(str(out_dir / name))(torch.from_numpy(batch)).detach().numpy()
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_evaluate_and_predict_need_only_the_run_directory(trained_run, tmp_path):
    run_dir, root, tmp = trained_run
    image = sorted((root / "test").glob("*.jpg"))[0]
    (tmp_path / "elsewhere").mkdir()
    result = run_cli("evaluate", f"ckpt={run_dir}", "tta.n=0", cwd=tmp_path / "elsewhere")
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((run_dir_of(result) / "metrics.json").read_text())
    assert metrics["images"] == 8  # the run's own valid/ folder, 4 per class
    assert not (run_dir_of(result) / "wandb").exists()  # no W&B run unless asked for

    result = run_cli(
        "predict", f"ckpt={run_dir / 'checkpoints' / 'last.ckpt'}", f"input={image}", cwd=tmp
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out_dir = run_dir_of(result)
    top = [line for line in result.stdout.splitlines() if line.startswith(f"{image}: ")]
    assert len(top) == 1
    ranked = [part.rsplit(" ", 1) for part in top[0].split(": ", 1)[1].split(", ")]
    assert sorted(name for name, _ in ranked) == ["cats", "dogs"]
    assert sum(float(p) for _, p in ranked) == pytest.approx(1.0, abs=1e-3)
    assert float(ranked[0][1]) >= float(ranked[1][1])
    assert (out_dir / "submission.csv").is_file() and not (tmp / "submission.csv").exists()
    assert not (out_dir / "wandb").exists()  # no W&B run unless asked for

    glob_result = run_cli(
        "predict", f"ckpt={run_dir}", f"input={root}/test/*.jpg", "show=2", cwd=tmp
    )
    assert glob_result.returncode == 0, glob_result.stderr[-2000:]
    record = json.loads((run_dir_of(glob_result) / "predict.json").read_text())
    assert record["images"] == 3
    # A glob prints its first `show` images, then how many more the submission holds.
    shown = [line for line in glob_result.stdout.splitlines() if line.startswith(f"{root}/test/")]
    assert len(shown) == 2 and "... and 1 more in the submission" in glob_result.stdout


def test_a_home_relative_path_works_in_any_override(trained_run, monkeypatch):
    run_dir, root, tmp = trained_run
    monkeypatch.setenv("HOME", str(tmp))
    relative = root.relative_to(tmp)
    for spelling in (f"~/{relative}", f"$HOME/{relative}"):
        result = run_cli(
            "predict", f"ckpt={run_dir}", f"data.root={spelling}", f"input={spelling}/test",
            "tta.n=0", "--cfg", "job", cwd=tmp,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        assert f"root: {root}" in result.stdout and f"input: {root}/test" in result.stdout


def test_the_python_api_loads_a_run_and_predicts_one_image(trained_run):
    import imgclf

    run_dir, root, _ = trained_run
    run = imgclf.load(str(run_dir))
    assert run.classes == ["cats", "dogs"] and run.image_size == 32 and run.run_dir == run_dir
    image = sorted((root / "test").glob("*.jpg"))[0]
    answer = run.predict(str(image))
    assert answer.label == max(answer.probs, key=answer.probs.get)
    assert sum(answer.probs.values()) == pytest.approx(1.0, abs=1e-6)
    # A PIL image, and float pixels in [0, 1]: one rule, the same answer.
    with Image.open(image) as opened:
        pil = opened.convert("RGB")
    assert run.predict(pil).probs == pytest.approx(answer.probs, abs=1e-6)
    assert run.predict(np.asarray(pil) / 255.0).probs == pytest.approx(answer.probs, abs=1e-6)
    figure = run.show_batch(n=4)  # one canvas of 4 images, each under its class name
    labels = [text.get_text() for ax in figure.axes for text in ax.texts]
    assert len(labels) == 4 and set(labels) <= set(answer.probs)
    assert sum(len(ax.images) for ax in figure.axes) == 1


def test_lr_find_on_a_run_takes_its_data_model_and_recipe(trained_run):
    from hydra import compose, initialize_config_dir

    from imgclf.cli import config_dir, hydra_argv

    run_dir, root, _ = trained_run
    argv = hydra_argv("lr-find", [f"ckpt={run_dir}", "lr_find.num_iter=5"])
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("lr_find", overrides=argv)
    assert cfg.data.root == str(root) and cfg.data.image_size == 32
    assert cfg.recipe.name == "fine_tune" and cfg.recipe.stages[1].epochs == 1
    assert cfg.ckpt == str(run_dir) and cfg.lr_find.num_iter == 5


# What a prediction on the CPU must not import (seconds of start-up each); and torch, which
# a prediction from the cached ONNX file does not import either.
LIGHTNING_MODULES = ("lightning", "torchmetrics", "wandb")
HEAVY_MODULES = (*LIGHTNING_MODULES, "torch")
# `imgclf predict` in a subprocess that reports, after the command, which of them it loaded.
REPORT_IMPORTS = (
    "import sys; from imgclf.cli import main; main(sys.argv[1:]); "
    f"print('loaded:', *sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
)


def predict_reporting_imports(*args: str, cwd: Path) -> tuple[Path, list[str]]:
    """Run `imgclf predict <args>`; its run directory and the heavy modules it loaded."""
    import subprocess
    import sys

    from helpers.cli import cli_env

    result = subprocess.run(
        [sys.executable, "-c", REPORT_IMPORTS, "predict", *args],
        cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    *lines, report = result.stdout.strip().splitlines()
    assert report.startswith("loaded:") and lines[-1].startswith("/")
    assert sum("predicting" in line for line in (result.stdout + result.stderr).splitlines()) <= 1
    return Path(lines[-1]), report.split()[1:]


def test_predict_on_the_cpu_runs_without_lightning_and_gives_the_same_probabilities(
    trained_run, tmp_path
):
    """One image through `imgclf predict` loads no Lightning, torchmetrics or W&B; its
    probabilities (TTA x4) equal those of the Trainer's passes (`trainer.devices=auto`
    takes that path) on a large JPEG and a PNG with alpha, and without TTA the Python
    API's."""
    import imgclf

    run_dir, _, tmp = trained_run
    images = [p for p in extra_images(tmp_path / "new") if p.name in ("big.jpg", "alpha.png")]
    listed = f"input=[{','.join(map(str, images))}]"
    plain_dir, loaded = predict_reporting_imports(f"ckpt={run_dir}", listed, "clip=null", cwd=tmp)
    assert loaded == ["torch"]  # TTA (auto: x4 for a list) runs through torch
    trainer_dir, loaded = predict_reporting_imports(
        f"ckpt={run_dir}", listed, "clip=null", "trainer.devices=auto", cwd=tmp
    )
    assert "lightning" in loaded  # the report sees an import when there is one
    plain = read_probabilities(plain_dir / "submission.csv")
    with_trainer = read_probabilities(trainer_dir / "submission.csv")
    assert set(plain) == {"big", "alpha"} and plain.keys() == with_trainer.keys()
    for name in plain:
        np.testing.assert_allclose(plain[name], with_trainer[name], atol=1e-6)

    no_tta_dir, _ = predict_reporting_imports(
        f"ckpt={run_dir}", listed, "clip=null", "tta.n=0", cwd=tmp
    )
    run = imgclf.load(run_dir)
    got = read_probabilities(no_tta_dir / "submission.csv")
    for image in images:
        api = [run.predict(image).probs[c] for c in run.classes]
        np.testing.assert_allclose(got[image.stem], api, atol=1e-6)


def test_predict_clips_at_the_eps_the_run_chose_in_training(trained_run):
    """clip=auto (the default) takes the eps of the run's last validation before its best
    checkpoint, saved in it, instead of predicting the validation set again."""
    import torch

    run_dir, root, tmp = trained_run
    image = sorted((root / "test").glob("*.jpg"))[0]
    out_dir, loaded = predict_reporting_imports(f"ckpt={run_dir}", f"input={image}", cwd=tmp)
    # Training cached best.ckpt's network as ONNX: one image imports no torch, first time.
    assert (run_dir / "checkpoints" / "best.onnx.json").is_file() and loaded == []
    record = json.loads((out_dir / "predict.json").read_text())
    checkpoint = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    chosen = checkpoint["callbacks"]["ClipProbabilities"]["chosen_eps"]
    assert chosen is not None and record["clip_eps"] == chosen
    assert record["clip_chosen_on"] == "the run's validation in training (best.ckpt)"


def test_predict_runs_from_the_checkpoints_cached_onnx_without_torch(trained_run, tmp_path):
    """The first prediction of a checkpoint goes through torch and caches its network as ONNX
    beside it; the next ones without TTA import no torch and give the same probabilities
    (1e-5) on a large JPEG, an upscaled PNG, an EXIF-rotated JPEG, a PNG with alpha and a
    file that fails to decode; a checkpoint written again is not read from the old cache."""
    import shutil

    from helpers.folders import truncated_jpeg

    run_dir, _, tmp = trained_run
    checkpoint = tmp_path / "model.ckpt"
    shutil.copy(run_dir / "checkpoints" / "best.ckpt", checkpoint)
    images = [*extra_images(tmp_path / "new"), truncated_jpeg(tmp_path / "new" / "cut.jpg")]
    listed = f"input=[{','.join(map(str, images))}]"
    args = (f"ckpt={checkpoint}", listed, "tta.n=0", "clip=0.01")
    first_dir, loaded = predict_reporting_imports(*args, cwd=tmp)
    assert loaded == ["torch"]
    card = json.loads((tmp_path / "model.onnx.json").read_text())
    assert card["classes"] == ["cats", "dogs"] and card["image_size"] == 32
    second_dir, loaded = predict_reporting_imports(*args, cwd=tmp)
    assert loaded == []
    first = read_probabilities(first_dir / "submission.csv")
    second = read_probabilities(second_dir / "submission.csv")
    assert set(first) == set(second) == {p.stem for p in images}
    for name in first:
        np.testing.assert_allclose(second[name], first[name], atol=1e-5)
    assert second["cut"] == [0.5, 0.5]  # the uninformed row, as the data loaders give
    assert min(min(row) for row in second.values()) >= 0.01  # clipped
    record = json.loads((second_dir / "predict.json").read_text())
    assert record["decode_failed"] == [str(images[-1])] and record["tta"]["n"] == 0

    # One image: tta.n=auto makes no TTA passes, so it runs from the cache as well.
    one_dir, loaded = predict_reporting_imports(f"ckpt={checkpoint}", f"input={images[0]}", cwd=tmp)
    assert loaded == [] and json.loads((one_dir / "predict.json").read_text())["tta"]["n"] == 0
    assert read_probabilities(one_dir / "submission.csv")["big"] == pytest.approx(
        first["big"], abs=1e-5
    )  # clip=auto: the eps the run chose, from the card; the big JPEG is far from it

    shutil.copy(run_dir / "checkpoints" / "last.ckpt", tmp_path / "other.ckpt")
    (tmp_path / "other.ckpt").replace(checkpoint)  # the checkpoint written again
    _, loaded = predict_reporting_imports(*args, cwd=tmp)
    assert loaded == ["torch"]
