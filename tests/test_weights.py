"""Pretrained weights: the bundled EfficientNet-Lite0 renaming, file loading and loud failures."""

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
from imgclf.model.backbone import (
    bundled_efficientnet_lite0_state_dict,
    bundled_weights_path,
    create_body,
    data_config_for,
    rename_efficientnet_pytorch_key,
)

IMAGENET_CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def renamed():
    return bundled_efficientnet_lite0_state_dict()


def test_renaming_follows_the_stage_depths():
    assert rename_efficientnet_pytorch_key("_conv_stem.weight") == "conv_stem.weight"
    assert rename_efficientnet_pytorch_key("_bn0.running_mean") == "bn1.running_mean"
    assert (
        rename_efficientnet_pytorch_key("_blocks.0._project_conv.weight")
        == "blocks.0.0.conv_pw.weight"
    )
    assert (
        rename_efficientnet_pytorch_key("_blocks.1._expand_conv.weight")
        == "blocks.1.0.conv_pw.weight"
    )
    assert rename_efficientnet_pytorch_key("_blocks.2._bn2.bias") == "blocks.1.1.bn3.bias"
    assert (
        rename_efficientnet_pytorch_key("_blocks.11._depthwise_conv.weight")
        == "blocks.5.0.conv_dw.weight"
    )
    assert (
        rename_efficientnet_pytorch_key("_blocks.15._project_conv.weight")
        == "blocks.6.0.conv_pwl.weight"
    )
    assert rename_efficientnet_pytorch_key("_fc.bias") == "classifier.bias"
    with pytest.raises(KeyError):
        rename_efficientnet_pytorch_key("_blocks.16._bn0.weight")
    with pytest.raises(KeyError):
        rename_efficientnet_pytorch_key("_blocks.3._se_reduce.weight")


def test_bundled_weights_cover_timm_model_exactly_in_order_and_shape(renamed):
    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    assert len(renamed) == 296
    assert list(renamed) == list(reference)
    assert all(renamed[k].shape == reference[k].shape for k in reference)


def test_bundled_weights_recognise_a_cat(renamed):
    """End-to-end check of the mapping: the full ImageNet model must call Chelsea a cat."""
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    model.load_state_dict(renamed, strict=True)
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


def test_bundled_weights_only_for_lite0():
    with pytest.raises(UserError, match="only for tf_efficientnet_lite0"):
        create_body("resnet18", "bundled")


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


def test_bundled_file_is_the_packaged_one():
    assert bundled_weights_path().name == "efficientnet-lite0-57934424.pth"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the bundled path never warns
        create_body("tf_efficientnet_lite0", "bundled")
