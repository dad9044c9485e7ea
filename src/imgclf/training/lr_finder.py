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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from imgclf.training.lr_suggest import exponential_lrs, should_stop, smooth_losses, suggest_lr


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
        return lr_find_figure(self.lrs, self.losses, self.suggestion, self.method)


def range_test(
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
    """Run the range test on `model` frozen as `stage` trains it, over `loader`'s batches;
    weights, buffers, freezing, the model's stage plan and train/eval mode are restored."""
    device = device or next(model.parameters()).device
    ratios = stage.lr_ratios(len(model.groups))
    state = copy.deepcopy(model.state_dict())
    requires_grad = {name: p.requires_grad for name, p in model.named_parameters()}
    was_training = model.training
    previous_plan = model.plan
    model.set_stage(stage.plan(ratios, image_size=model.image_size))
    model.to(device).train()
    optimizer = model.build_optimizer([start_lr * r for r in ratios])
    schedule = exponential_lrs(start_lr, end_lr, num_iter)
    lrs, raw = [], []
    try:
        batches = itertools.cycle(loader) if len(loader) < num_iter else iter(loader)
        for lr, (inputs, labels) in zip(schedule, batches, strict=False):
            for group, ratio in zip(optimizer.param_groups, ratios, strict=True):
                group["lr"] = lr * ratio
            # The task's plain loss (no smoothing or weights), as the course's lr_find.
            loss = model.task.training_loss(model.logits(inputs.to(device)), labels.to(device))
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
        model.set_stage(previous_plan)
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


def lr_find(
    model,
    datamodule,
    stage=None,
    cache_dir: str | Path = "data/cache",
    device=None,
    **settings,
) -> LRFindResult:
    """fastai's `learn.lr_find()`: the LR range test for `stage` (default: the head only,
    frozen body), sweeping the stage's own per-group LR ratios (`lr_mult`).

    A precompute stage sweeps on the cached body features (computed into `cache_dir` if
    missing), a stage with `image_size` at that size. Weights, freezing and buffers are
    restored afterwards. `settings`: start_lr, end_lr, num_iter, beta, stop_factor,
    suggestion. Returns the result: `.suggestion`, `.method`, `.lrs`, `.losses`,
    `.group_lrs()` and `.plot()` (a Figure). device: default the GPU if there is one.
    """
    from imgclf.training.precompute import feature_loaders, precompute_features
    from imgclf.training.recipe import Stage

    stage = stage or Stage(name="head", freeze_to=-1)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    datamodule.setup("fit")
    datamodule.set_data_config(model.data_config)
    image_size = stage.image_size or datamodule.image_size
    if stage.precompute:
        features = precompute_features(
            model, datamodule, stage.precompute_aug, cache_dir, image_size, device=device
        )
        loader, _ = feature_loaders(features, datamodule.batch_size, datamodule.seed)
    else:
        loader = datamodule.train_dataloader(image_size)
    return range_test(model, loader, stage, device=device, **settings)


def lr_find_figure(lrs: Sequence[float], losses: Sequence[float], suggestion: float, method: str):
    """The loss-vs-LR curve (log x axis) with the suggestion as a red dot, as a Figure."""
    from imgclf.reporting import new_figure

    lr_arr, loss_arr = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    finite = np.isfinite(loss_arr) & (lr_arr > 0)
    lr_arr, loss_arr = lr_arr[finite], loss_arr[finite]
    fig = new_figure((6, 4), dpi=100)
    ax = fig.add_subplot()
    ax.plot(lr_arr, loss_arr)
    if len(lr_arr):
        order = np.argsort(lr_arr)
        at = np.interp(np.log10(suggestion), np.log10(lr_arr[order]), loss_arr[order])
        ax.plot([suggestion], [at], "o", color="red", label=f"{method}: {suggestion:.1e}")
        ax.legend()
        # The point that stopped the run can dwarf the curve: show the descent, a little beyond.
        lowest = int(np.argmin(loss_arr))
        top, bottom = float(loss_arr[: lowest + 1].max()), float(loss_arr[lowest])
        if top > bottom:
            margin = top - bottom
            ax.set_ylim(
                bottom - 0.1 * margin,
                min(float(loss_arr.max()), top + 0.5 * margin) + 0.05 * margin,
            )
    ax.set_xscale("log")
    ax.set_xlabel("Learning Rate")
    ax.set_ylabel("Loss")
    ax.set_title("LR finder")
    # Fixed margins: tight_layout measured every label and took most of the drawing time.
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.12, top=0.93)
    return fig
