"""Mixed precision and channels_last: options that change speed, not results."""

import json
import math
import warnings

import torch
from helpers.cli import run_cli, run_dir_of, small_run_overrides
from helpers.folders import make_image_folder

from imgclf.model import ImageClassifier


def test_channels_last_model_keeps_nhwc_weights_and_the_same_outputs():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*random initialisation.*")
        torch.manual_seed(0)
        plain = ImageClassifier(num_classes=3, weights="none", channels_last=False).eval()
        nhwc = ImageClassifier(num_classes=3, weights="none", channels_last=True).eval()
    nhwc.load_state_dict(plain.state_dict())
    stem = nhwc.body.conv_stem.weight
    assert stem.is_contiguous(memory_format=torch.channels_last) and not stem.is_contiguous()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(nhwc(images), plain(images), rtol=1e-4, atol=1e-5)


def test_bf16_mixed_precision_on_cpu_runs_the_recipe_with_precompute(tmp_path):
    root = make_image_folder(tmp_path / "pets", n_train=4, n_valid=2, size=40)
    stages = (
        "recipe.stages=[{name:head,freeze_to:-1,epochs:1,lr:0.01,precompute:true,"
        "precompute_aug:1},{name:all,freeze_to:0,epochs:1,lr:1e-3,lr_mult:10}]"
    )
    result = run_cli(
        "train",
        *small_run_overrides(root, tmp_path),
        stages,
        "logger=csv",
        "trainer.precision=bf16-mixed",
        "model.channels_last=true",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Using bfloat16 Automatic Mixed Precision" in result.stdout + result.stderr
    summary = json.loads((run_dir_of(result) / "summary.json").read_text())
    assert [s["name"] for s in summary["stages"]] == ["head", "all"]
    assert summary["stages"][0]["precompute"]["reused"] is False
    assert all(math.isfinite(h["valid/logloss"]) for h in summary["history"])
    assert len(summary["history"]) == 2
