"""Training a model through a recipe: the stages, the stage runner, the LR finder and its
suggestions, precomputed activations, checkpoints, resume and the run's progress.
"""

from imgclf.training.checkpoints import find_checkpoint, load_classifier, read_checkpoint
from imgclf.training.lr_finder import LRFindResult, lr_find, range_test
from imgclf.training.progress import RecipeProgress
from imgclf.training.recipe import Stage, parse_recipe
from imgclf.training.runner import run_recipe, run_stage

__all__ = [
    "LRFindResult",
    "RecipeProgress",
    "Stage",
    "find_checkpoint",
    "load_classifier",
    "lr_find",
    "parse_recipe",
    "range_test",
    "read_checkpoint",
    "run_recipe",
    "run_stage",
]
