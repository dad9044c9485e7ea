"""Thin Lightning callbacks that wire imgclf's pure functions to training events."""

from imgclf.callbacks.history import MetricsHistory
from imgclf.callbacks.resume_state import ResumeState
from imgclf.callbacks.step_checkpoint import StepCheckpoint

__all__ = ["MetricsHistory", "ResumeState", "StepCheckpoint"]
