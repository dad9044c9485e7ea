"""AdamW with one named param group per layer group, and no weight decay on norms and biases.

fastai keeps norm and bias tensors out of weight decay (`wd_bn_bias=False`). Splitting each
layer group into a decay and a no-decay param group would double the groups that LR
monitors and W&B show, so instead every param group carries a `decay_mask` and the
decoupled decay (p -= lr * wd * p, as torch's AdamW does it) is applied here, per tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def no_decay_names(model: nn.Module) -> set[str]:
    """Names of parameters that weight decay should leave alone: biases and norm-layer affines."""
    names = set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            full = f"{module_name}.{param_name}" if module_name else param_name
            if isinstance(module, _NORM_TYPES) or param.ndim <= 1:
                names.add(full)
    return names


class GroupedAdamW(torch.optim.AdamW):
    """torch AdamW whose decoupled weight decay skips the tensors marked in `decay_mask`.

    Each param group is {"name", "params", "lr", "decay_mask"}; `weight_decay` is applied by
    this class (torch's own is kept at 0), so frozen tensors (grad None) never decay.
    """

    def __init__(
        self, param_groups: list[dict], lr: float = 1e-3, weight_decay: float = 0.01, **kwargs
    ):
        for group in param_groups:
            group.setdefault("decay_mask", [True] * len(group["params"]))
            # Not "decoupled_weight_decay": torch's AdamW owns that key (a bool) and resets it
            # to True in load_state_dict, which would turn a resumed run's decay into 1.0.
            group["masked_weight_decay"] = group.get("masked_weight_decay", weight_decay)
        super().__init__(param_groups, lr=lr, weight_decay=0.0, **kwargs)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()  # gradients first (Lightning passes the backward as a closure)
        for group in self.param_groups:
            shrink = 1.0 - group["lr"] * group["masked_weight_decay"]
            for param, decays in zip(group["params"], group["decay_mask"], strict=True):
                if decays and param.grad is not None:
                    param.mul_(shrink)
        super().step()
        return loss


def layer_param_groups(
    model: nn.Module, groups: Sequence[tuple[str, Sequence[str]]], lrs: Sequence[float]
) -> list[dict]:
    """One optimizer param group per layer group, named after it, with its own LR.

    `groups` lists (group name, parameter names); every parameter is included, trainable or
    not, so the groups and their LRs stay the same whatever is frozen (a frozen tensor has
    no gradient and AdamW skips it).
    """
    params = dict(model.named_parameters())
    skip = no_decay_names(model)
    return [
        {
            "name": name,
            "params": [params[n] for n in names],
            "lr": float(lr),
            "decay_mask": [n not in skip for n in names],
        }
        for (name, names), lr in zip(groups, lrs, strict=True)
    ]
