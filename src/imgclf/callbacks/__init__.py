"""Thin Lightning callbacks that wire imgclf's pure functions to training events."""

from imgclf.callbacks.history import MetricsHistory
from imgclf.callbacks.interrupt import SaveOnInterrupt
from imgclf.callbacks.nonfinite import NonFiniteLoss, StopOnNonFiniteLoss

__all__ = ["MetricsHistory", "NonFiniteLoss", "SaveOnInterrupt", "StopOnNonFiniteLoss"]
