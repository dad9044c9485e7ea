"""The Python API on real image files: lr_find, fit_recipe, interpret, predict, and that
`imgclf evaluate` reports what `interpret` computes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.cli import run_cli, run_dir_of
from helpers.folders import make_image_folder
from helpers.models import small_datamodule_and_model

import imgclf
from imgclf import Stage, fit_recipe, interpret, lr_find, predict
from imgclf.errors import UserError
from imgclf.evaluation.clipping import EPS_GRID, clip_probs
from imgclf.evaluation.views import VIEWS


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Three classes, an unlabelled test folder, a model trained one head epoch on
    precomputed features and one unfrozen epoch, through the API."""
    work = tmp_path_factory.mktemp("api")
    root = make_image_folder(
        work / "data", classes=("a", "b", "c"), n_train=6, n_valid=4, n_test=11
    )
    datamodule, model = small_datamodule_and_model(root)
    head = Stage("head", freeze_to=-1, epochs=1, lr=1e-2, precompute=True, precompute_aug=1)
    unfrozen = {"name": "all", "freeze_to": 0, "lr": 1e-3, "lr_mult": 10, "schedule": "sgdr"}
    records = fit_recipe(
        model, datamodule, [head, unfrozen], run_dir=work / "run", cache_dir=work / "cache"
    )
    return work, root, datamodule, model, records


def test_the_package_imports_lazily_and_names_the_api_functions():
    code = (
        "import sys, imgclf; light = 'torch' not in sys.modules; "
        "print(light, imgclf.interpret.__module__, imgclf.fit_recipe.__module__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "imgclf.evaluation.interpretation", "imgclf.api"]
    assert set(imgclf.__all__) <= set(dir(imgclf))
    for name in imgclf.__all__:
        assert getattr(imgclf, name) is not None
    with pytest.raises(AttributeError):
        imgclf.no_such_name  # noqa: B018


def test_fit_recipe_trains_each_stage_and_writes_checkpoints_and_views(trained):
    work, _, datamodule, model, records = trained
    assert [r["name"] for r in records] == ["head", "all"]
    assert [r["epochs"] for r in records] == [1, 1]
    assert records[1]["lr"]["head"] == pytest.approx(1e-3)
    assert records[1]["lr"]["body_early"] == pytest.approx(1e-4)
    for record in records:
        assert Path(record["checkpoint"]).is_file()
        assert 0.0 <= record["valid_acc"] <= 1.0
    assert (work / "run" / "interpret" / "views" / "top_losses.png").is_file()
    assert model.image_size == 32 and datamodule.image_size == 32


def test_lr_find_sweeps_a_precompute_stage_and_restores_the_model(trained):
    work, _, datamodule, model, _ = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stage = Stage("head", freeze_to=-1, lr_mult=10, precompute=True)
    result = lr_find(model, datamodule, stage, cache_dir=work / "cache", num_iter=12, device="cpu")
    assert 1 <= len(result.lrs) <= 12 and result.lrs == sorted(result.lrs)
    assert result.lrs[0] == pytest.approx(1e-7) and result.suggestion > 0
    assert result.group_lrs(1.0) == pytest.approx([0.1, 10**-0.5, 1.0])
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], msg=key)
    figure = result.plot()
    figure.savefig(work / "lr.png")
    assert (work / "lr.png").stat().st_size > 1000


def test_interpret_computes_metrics_views_and_figures(trained, tmp_path):
    _, _, datamodule, model, _ = trained
    analysis = interpret(model, datamodule, tta_n=2, k=3, seed=5)
    labels = np.array([y for _, y in datamodule.valid_items])
    assert analysis.probs.shape == (12, 3)
    np.testing.assert_array_equal(analysis.labels, labels)
    np.testing.assert_array_equal(analysis.probs, analysis.tta)
    accuracy = float((analysis.plain.argmax(1) == labels).mean())
    assert analysis.metrics["plain"]["accuracy"] == pytest.approx(accuracy)
    assert analysis.metrics["tta_settings"] == {"n": 2, "beta": 0.25}
    assert analysis.confusion.sum() == 12
    assert analysis.confusion.tolist() == analysis.metrics["confusion_matrix"]
    assert set(analysis.views) == set(VIEWS)
    rows = analysis.rows("top_losses")
    assert [r["index"] for r in rows] == analysis.views["top_losses"].tolist()
    assert len(rows) == 3 and rows[0]["loss"] >= rows[-1]["loss"]
    figure = analysis.plot_view("top_losses")
    titles = [text.get_text() for ax in figure.axes for text in ax.texts]
    assert len(titles) == 3 and titles[0].startswith(f"{rows[0]['predicted']} / {rows[0]['true']}")
    assert len(analysis.plot_confusion().axes) == 1
    written = analysis.write(tmp_path)
    assert len(written["views"]["top_losses"]) == 3
    assert (tmp_path / "confusion.png").is_file()
    assert "TTA x2" in analysis.report()
    with pytest.raises(UserError, match="unknown view"):
        analysis.rows("nope")
    with pytest.raises(UserError, match="labelled"):
        interpret(model, datamodule, items=datamodule.test_items, tta_n=0)


def test_predict_gives_ids_and_clipped_probabilities_and_a_submission(trained, tmp_path):
    _, root, datamodule, model, _ = trained
    result = predict(model, root / "test", datamodule, tta_n=1, clip=0.01)
    assert sorted(result.ids, key=int) == [str(i) for i in range(11)]
    assert result.probs.shape == (11, 3) and result.clip_eps == 0.01
    np.testing.assert_allclose(result.probs.sum(axis=1), 1.0, atol=1e-5)
    assert result.probs.min() >= 0.01 / (1 + 3 * 0.01) - 1e-6
    files = result.write_submission(tmp_path / "sub.csv")
    with open(files[0]) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "a", "b", "c"]
    assert [r[0] for r in rows[1:]] == [str(i) for i in range(11)]  # natural order
    assert len(files) == 1  # the id,label file is for two classes only

    auto = predict(model, sorted((root / "test").glob("*.jpg"))[:2], datamodule, tta_n=0)
    assert auto.clip_eps in EPS_GRID and auto.probs.shape == (2, 3)
    with pytest.raises(UserError, match="clip='auto'"):
        predict(model, root / "test", tta_n=0)
    # Without a data module: the model's own settings; clipping is applied last.
    bare = predict(model, root / "test", tta_n=1, clip=None)
    assert bare.ids == result.ids and bare.clip_eps is None
    clipped = clip_probs(torch.from_numpy(bare.probs.astype(np.float64)), 0.01).numpy()
    np.testing.assert_allclose(clipped, result.probs, atol=1e-5)


def test_the_evaluate_command_reports_what_interpret_computes(trained, tmp_path):
    work, root, datamodule, model, records = trained
    checkpoint = records[-1]["checkpoint"]
    result = run_cli(
        "evaluate",
        f"ckpt={checkpoint}",
        "data=folder",
        f"data.root={root}",
        "data.batch_size=4",
        "data.num_workers=0",
        f"paths.log_dir={tmp_path}",
        "logger=csv",
        "tta.n=2",
        "interpret.k=3",
        "seed=7",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((run_dir_of(result) / "metrics.json").read_text())
    from imgclf import load_classifier

    analysis = interpret(load_classifier(checkpoint), datamodule, tta_n=2, k=3, seed=7)
    for variant in ("plain", "tta"):
        for key, value in analysis.metrics[variant].items():
            assert metrics[variant][key] == pytest.approx(value, abs=1e-6), (variant, key)
    assert metrics["confusion_matrix"] == analysis.metrics["confusion_matrix"]


def test_the_notebook_trainer_clips_gradients_as_the_cli_does():
    import yaml

    from imgclf.api import make_trainer

    trainer_yaml = Path(__file__).parents[1] / "configs/trainer/default.yaml"
    cli_value = yaml.safe_load(trainer_yaml.read_text())["gradient_clip_val"]
    assert make_trainer().gradient_clip_val == cli_value == 1.0
    assert make_trainer(gradient_clip_val=None).gradient_clip_val is None
