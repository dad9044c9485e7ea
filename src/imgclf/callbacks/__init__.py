"""Thin Lightning callbacks that wire imgclf's pure functions to training events."""

from imgclf.callbacks.history import MetricsHistory

__all__ = ["MetricsHistory"]
