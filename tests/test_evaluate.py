"""Evaluation end to end on real image files: the callbacks in a Trainer, TTA, and the
`evaluate`, `predict` and `export` commands on a trained checkpoint."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from helpers.cli import run_cli, run_dir_of, small_run_overrides
from helpers.folders import make_image_folder
from helpers.models import small_datamodule_and_model

from imgclf.callbacks import ClipProbabilities, MisclassificationViews
from imgclf.evaluation import CollectPredictions
from imgclf.evaluation.clipping import EPS_GRID
from imgclf.evaluation.tta import predict_with_tta
from imgclf.evaluation.views import VIEWS, misclassification_views


def quiet_trainer(**kwargs) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        **{"logger": False, **kwargs},
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two classes, a test folder with a nested sub-folder, and a briefly trained checkpoint."""
    root = make_image_folder(tmp_path_factory.mktemp("data"), n_train=8, n_valid=5, n_test=5)
    (root / "test" / "more").mkdir()
    (root / "test" / "0.jpg").rename(root / "test" / "more" / "10.jpg")
    datamodule, model = small_datamodule_and_model(root)
    trainer = quiet_trainer(max_epochs=2, enable_checkpointing=False)
    trainer.fit(model, datamodule=datamodule)
    model.image_size = 32
    checkpoint = root.parent / "model.ckpt"
    trainer.save_checkpoint(checkpoint)
    return root, checkpoint, datamodule, model


def test_callbacks_log_clipping_views_and_confusion(trained, tmp_path):
    root, _, datamodule, model = trained
    views_dir = tmp_path / "interpret"
    wandb_logger = L.pytorch.loggers.WandbLogger(save_dir=str(tmp_path), offline=True, project="t")
    trainer = quiet_trainer(
        callbacks=[
            CollectPredictions(),
            ClipProbabilities("auto"),
            MisclassificationViews(views_dir, k=4),
        ],
        logger=[wandb_logger],
    )
    trainer.validate(model, datamodule=datamodule)
    metrics = trainer.callback_metrics
    assert float(metrics["valid/clip_eps"]) in EPS_GRID
    assert float(metrics["valid/logloss_clipped"]) <= float(metrics["valid/logloss"]) + 1e-6

    collected = trainer.callbacks[0].result(trainer)
    assert collected.indices.tolist() == list(range(len(datamodule.valid_items)))
    assert collected.labels.tolist() == [y for _, y in datamodule.valid_items]
    expected = misclassification_views(collected.probs, collected.labels, k=4, seed=0)
    for name in VIEWS:
        assert (views_dir / "views" / f"{name}.png").stat().st_size > 1000
        with open(views_dir / "views" / f"{name}.csv") as f:
            rows = list(csv.DictReader(f))
        assert [int(r["index"]) for r in rows] == expected[name].tolist()
        for row in rows:
            index = int(row["index"])
            assert row["path"] == str(datamodule.valid_items[index][0])
            assert row["true"] == datamodule.classes[datamodule.valid_items[index][1]]
    with open(views_dir / "confusion.csv") as f:
        counts = [[int(c) for c in row[1:]] for row in list(csv.reader(f))[1:]]
    assert np.sum(counts) == len(datamodule.valid_items)
    wandb_logger.experiment.finish()
    tables = list(Path(tmp_path).rglob("*views/top_losses_table*.table.json"))
    assert tables, "the W&B run holds the top-losses table"
    table = json.loads(tables[0].read_text())
    assert table["columns"] == ["image", "true", "predicted", "probability", "loss", "path"]
    assert len(table["data"]) == len(expected["top_losses"])

    # In test runs too (on labelled data), under test/.
    tester = quiet_trainer(callbacks=[CollectPredictions(), ClipProbabilities(0.05)])
    tester.test(model, dataloaders=datamodule.val_dataloader())
    assert float(tester.callback_metrics["test/clip_eps"]) == pytest.approx(0.05)
    assert float(tester.callback_metrics["test/logloss"]) == pytest.approx(
        float(metrics["valid/logloss"])
    )
    assert "test/logloss_clipped" in tester.callback_metrics

    # At predict time the callback clips the returned probabilities in place.
    clip = ClipProbabilities(0.2)
    out = quiet_trainer(callbacks=[clip]).predict(model, datamodule.val_dataloader())
    probs = torch.cat(out)
    assert probs.min() >= 0.2 - 1e-6 and probs.max() <= 0.8 + 1e-6


def test_tta_is_seeded_and_works_on_unlabelled_images(trained):
    _, _, datamodule, model = trained
    trainer = quiet_trainer(callbacks=[CollectPredictions()])
    items = datamodule.test_items
    assert items and all(label == -1 for _, label in items)
    first = predict_with_tta(trainer, model, datamodule, items, n=2, beta=0.25, seed=3)
    again = predict_with_tta(trainer, model, datamodule, items, n=2, beta=0.25, seed=3)
    other = predict_with_tta(trainer, model, datamodule, items, n=2, beta=0.25, seed=4)
    np.testing.assert_array_equal(first.tta, again.tta)
    assert not np.allclose(first.tta, other.tta)
    assert not np.allclose(first.tta, first.plain)
    np.testing.assert_allclose(first.tta.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(first.plain, again.plain)


def test_evaluate_command_writes_metrics_views_and_confusion(trained, tmp_path):
    root, checkpoint, datamodule, _ = trained
    result = run_cli(
        "evaluate",
        f"ckpt={checkpoint}",
        *small_run_overrides(root, tmp_path),
        "logger=csv",
        "tta.n=2",
        "interpret.k=3",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = run_dir_of(result)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["images"] == len(datamodule.valid_items) == 10
    assert metrics["tta_settings"] == {"n": 2, "beta": 0.25}
    for variant in ("plain", "tta"):
        m = metrics[variant]
        assert 0.0 <= m["accuracy"] <= 1.0 and m["logloss"] > 0
        assert m["clip_eps"] in EPS_GRID and m["logloss_clipped"] <= m["logloss"] + 1e-9
    assert set(metrics["per_class"]) == {"cats", "dogs"}
    assert sum(c["images"] for c in metrics["per_class"].values()) == 10
    assert np.sum(metrics["confusion_matrix"]) == 10
    assert set(metrics["views"]) == set(VIEWS) and max(metrics["views"].values()) <= 3
    for name in VIEWS:
        assert (run_dir / "views" / f"{name}.png").exists()
    assert (run_dir / "confusion.png").exists() and (run_dir / "confusion.csv").exists()
    assert "TTA x2" in result.stdout and "precision" in result.stdout


def read_csv(path: Path) -> list[list[str]]:
    with open(path) as f:
        return list(csv.reader(f))


def test_predict_command_writes_a_kaggle_submission(trained, tmp_path):
    root, checkpoint, _, _ = trained
    common = [f"ckpt={checkpoint}", *small_run_overrides(root, tmp_path), "logger=csv"]
    out = tmp_path / "sub" / "submission.csv"
    result = run_cli(
        "predict",
        *common,
        f"input={root / 'test'}",
        f"out={out}",
        "tta.n=2",
        "clip=0.05",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = read_csv(out)
    assert rows[0] == ["id", "cats", "dogs"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "3", "4", "10"]  # natural order, nested file too
    probs = np.array([[float(p) for p in r[1:]] for r in rows[1:]])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert probs.min() >= 0.05 - 1e-6 and probs.max() <= 0.95 + 1e-6
    labels = read_csv(out.with_name("submission_label.csv"))
    assert labels[0] == ["id", "label"]
    assert [float(r[1]) for r in labels[1:]] == pytest.approx(probs[:, 1].tolist(), abs=1e-6)

    # clip=auto chooses eps on the validation set and records it.
    result = run_cli("predict", *common, f"input={root / 'test'}", "tta.n=0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((run_dir_of(result) / "predict.json").read_text())
    assert record["clip_eps"] in EPS_GRID and record["images"] == 5
    assert len(read_csv(Path(record["files"][0]))) == 6


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_predict_on_a_missing_or_empty_folder_is_a_one_line_error(trained, tmp_path, folder):
    root, checkpoint, _, _ = trained
    if folder == "empty":
        (tmp_path / "empty").mkdir()
    result = run_cli(
        "predict",
        f"ckpt={checkpoint}",
        *small_run_overrides(root, tmp_path),
        f"input={tmp_path / folder}",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(tmp_path / folder) in errors[0]
    assert "Traceback" not in result.stderr


def checkpoint_probabilities(checkpoint: Path, images: torch.Tensor) -> np.ndarray:
    from imgclf.training.checkpoints import load_classifier

    model = load_classifier(checkpoint)
    with torch.no_grad():  # float pixels in [0, 1], as the exported model takes them
        return model(images).softmax(dim=1).numpy()


def test_export_onnx_and_torchscript_match_the_checkpoint(trained, tmp_path):
    import onnxruntime

    root, checkpoint, _, _ = trained
    images = torch.rand(3, 3, 32, 32)
    expected = checkpoint_probabilities(checkpoint, images)
    for fmt, name in (("onnx", "model.onnx"), ("torchscript", "model.pt")):
        out = tmp_path / name
        result = run_cli(
            "export",
            f"ckpt={checkpoint}",
            f"format={fmt}",
            f"out={out}",
            *small_run_overrides(root, tmp_path),
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        card = json.loads(out.with_suffix(".json").read_text())
        assert card["classes"] == ["cats", "dogs"]
        assert card["input"]["height"] == 32 and card["input"]["range"] == [0.0, 1.0]
        if fmt == "onnx":
            session = onnxruntime.InferenceSession(str(out))
            got = session.run(None, {"images": images.numpy()})[0]
        else:
            got = torch.jit.load(str(out))(images).detach().numpy()
        np.testing.assert_allclose(got, expected, atol=1e-4)
