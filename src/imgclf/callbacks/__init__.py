"""Thin Lightning callbacks that wire imgclf's functions to training events, and the
default list of them (`default_callbacks`) that the CLI and the Python API share.
"""

from imgclf.callbacks.clip import ClipProbabilities
from imgclf.callbacks.defaults import default_callbacks
from imgclf.callbacks.interrupt import SaveOnInterrupt
from imgclf.callbacks.resume_state import ResumeState
from imgclf.callbacks.step_checkpoint import StepCheckpoint
from imgclf.callbacks.views import MisclassificationViews
from imgclf.training.divergence import DivergenceGuard

__all__ = [
    "ClipProbabilities",
    "DivergenceGuard",
    "MisclassificationViews",
    "ResumeState",
    "SaveOnInterrupt",
    "StepCheckpoint",
    "default_callbacks",
]
