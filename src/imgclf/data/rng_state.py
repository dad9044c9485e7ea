"""Snapshots of random number generators, as plain data that a weights-only checkpoint holds.

Resuming a run exactly needs every random stream back where it was: the global torch, CUDA,
numpy and Python generators (dropout, anything unseeded), a DataLoader's own torch.Generator
(shuffling, worker seeds) and the generators inside albumentations pipelines, where each
transform keeps its own numpy and Python generator.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def numpy_generator_state(generator: np.random.Generator) -> dict:
    return generator.bit_generator.state  # a dict of names and (big) ints


def set_numpy_generator_state(generator: np.random.Generator, state: dict) -> None:
    generator.bit_generator.state = state


def global_rng_state() -> dict:
    """torch (CPU and every CUDA device), numpy's legacy global and Python's `random`."""
    legacy = np.random.get_state(legacy=False)
    legacy["state"]["key"] = torch.from_numpy(legacy["state"]["key"].astype(np.int64))
    state = {"torch": torch.get_rng_state(), "numpy": legacy, "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_global_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    legacy = dict(state["numpy"])
    legacy["state"] = dict(legacy["state"], key=legacy["state"]["key"].numpy().astype(np.uint32))
    np.random.set_state(legacy)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def albumentations_generators(transform) -> list:
    """Every object of an albumentations pipeline that owns random generators, in a fixed
    order: the Compose itself, then each transform (nested composes included)."""
    found = [transform] if hasattr(transform, "random_generator") else []
    for child in getattr(transform, "transforms", None) or []:
        found += albumentations_generators(child)
    return found


def transform_rng_state(transform) -> list:
    return [
        {"numpy": numpy_generator_state(t.random_generator), "python": t.py_random.getstate()}
        for t in albumentations_generators(transform)
    ]


def set_transform_rng_state(transform, state: list) -> None:
    owners = albumentations_generators(transform)
    if len(owners) != len(state):
        raise ValueError(f"pipeline has {len(owners)} random transforms, state has {len(state)}")
    for owner, saved in zip(owners, state, strict=True):
        set_numpy_generator_state(owner.random_generator, saved["numpy"])
        version, internal, gauss = saved["python"]
        owner.py_random.setstate((version, tuple(internal), gauss))
