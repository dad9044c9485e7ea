"""The tasks' rules that need no torch, for numpy arrays and torch tensors alike: clipping
and the answer for an unreadable image. `SingleLabel` and `MultiLabel` call them, and so
does `imgclf predict` through the cached ONNX file, which imports no torch."""

from __future__ import annotations


def clip_one_of(probs, eps: float):
    """One class per image (rows sum to one). Two classes: clip to [eps, 1 - eps]. More
    classes: raise every p to at least eps, then renormalise so rows still sum to one."""
    if eps <= 0:
        return probs
    if probs.shape[1] == 2:
        if eps >= 0.5:
            raise ValueError(f"clip eps must be below 0.5 for two classes, got {eps}")
        return probs.clip(eps, 1.0 - eps)
    if eps * probs.shape[1] >= 1.0:
        raise ValueError(f"clip eps {eps} x {probs.shape[1]} classes must stay below 1")
    clipped = probs.clip(min=eps)
    return clipped / clipped.sum(axis=1, keepdims=True)


def clip_each(probs, eps: float):
    """Independent tags: each probability to [eps, 1 - eps]."""
    if eps <= 0:
        return probs
    if eps >= 0.5:
        raise ValueError(f"clip eps must be below 0.5, got {eps}")
    return probs.clip(eps, 1.0 - eps)


def uninformed(task_name: str, num_classes: int) -> float:
    """The answer for an image that could not be read: 1/C each for one class per image,
    0.5 (yes or no alike) for each tag."""
    return 0.5 if task_name == "multi" else 1.0 / num_classes


def clip_rule(task_name: str):
    """The clipping function of a task by name ("single" or "multi")."""
    return clip_each if task_name == "multi" else clip_one_of
