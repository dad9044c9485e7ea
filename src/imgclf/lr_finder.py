"""The learning-rate range test (fastai's lr_find), sweeping a stage's own group ratios.

Lightning's tuner sets every param group to one LR, erasing discriminative ratios. Here
the LR of the last group (the head) goes exponentially from start_lr to end_lr and every
other group keeps its ratio from the stage (`lr_mult`), so the suggestion fits the stage
it is for. Model weights, buffers, freezing and train/eval mode are restored afterwards.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from imgclf.groups import spread_lrs
from imgclf.lr_suggest import exponential_lrs, should_stop, smooth_losses, suggest_lr


@dataclass
class LRFindResult:
    lrs: list[float]
    losses: list[float]  # smoothed
    suggestion: float
    method: str
    ratios: list[float] = field(default_factory=list)

    def group_lrs(self, lr: float | None = None) -> list[float]:
        top = self.suggestion if lr is None else lr
        return [top * r for r in self.ratios]

    def plot(self):
        """The loss-vs-LR curve with the suggestion, as a matplotlib Figure."""
        from imgclf.lr_suggest import lr_find_figure

        return lr_find_figure(self.lrs, self.losses, self.suggestion, self.method)


def stage_ratios(stage, n_groups: int) -> list[float]:
    """Each group's LR relative to the last group's, as the stage will spread them."""
    return spread_lrs(1.0, n_groups, stage.lr_mult)


def lr_find(
    model,
    loader,
    stage,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 100,
    beta: float = 0.98,
    stop_factor: float = 4.0,
    suggestion: str | None = None,
    device=None,
) -> LRFindResult:
    """Run the range test on `model` prepared for `stage` and restore it afterwards."""
    device = device or next(model.parameters()).device
    ratios = stage_ratios(stage, len(model.groups))
    state = copy.deepcopy(model.state_dict())
    requires_grad = {name: p.requires_grad for name, p in model.named_parameters()}
    was_training = model.training
    model.set_stage(stage, lrs=ratios)
    model.to(device).train()
    optimizer = model.build_optimizer([start_lr * r for r in ratios])
    schedule = exponential_lrs(start_lr, end_lr, num_iter)
    lrs, raw = [], []
    try:
        batches = itertools.cycle(loader) if len(loader) < num_iter else iter(loader)
        for lr, (inputs, labels) in zip(schedule, batches, strict=False):
            for group, ratio in zip(optimizer.param_groups, ratios, strict=True):
                group["lr"] = lr * ratio
            loss = F.cross_entropy(model.logits(inputs.to(device)), labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            lrs.append(lr)
            value = float(loss.detach())
            raw.append(value if math.isfinite(value) else math.inf)
            smoothed = smooth_losses(raw, beta)
            if should_stop(smoothed[-1], min(smoothed), stop_factor):
                break
    finally:
        optimizer.zero_grad(set_to_none=True)
        model.load_state_dict(state)
        for name, param in model.named_parameters():
            param.requires_grad_(requires_grad[name])
        model.train(was_training)
    smoothed = smooth_losses(raw, beta)
    method = suggestion or stage.suggestion
    return LRFindResult(lrs, smoothed, suggest_lr(lrs, smoothed, method), method, ratios)


def agree_across_ranks(value: float) -> float:
    """Under DDP every rank takes rank 0's suggestion, so all train with the same LR."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return float(box[0])
    return value
