"""Training a model through a recipe: the stages, the stage runner, the LR finder and its
suggestions, precomputed activations, checkpoints, resume and the run's progress.
"""

from imgclf.lazy_exports import lazy_exports

# Every name is loaded on first use (PEP 562), so importing one module of this package
# does not import the others (a command that needs no Lightning does not load it).
_EXPORTS = {
    "find_checkpoint": "imgclf.training.checkpoints",
    "load_classifier": "imgclf.training.checkpoints",
    "read_checkpoint": "imgclf.training.checkpoints",
    "LRFindResult": "imgclf.training.lr_finder",
    "lr_find": "imgclf.training.lr_finder",
    "range_test": "imgclf.training.lr_finder",
    "RecipeProgress": "imgclf.training.progress",
    "Stage": "imgclf.training.recipe",
    "parse_recipe": "imgclf.training.recipe",
    "run_recipe": "imgclf.training.runner",
    "run_stage": "imgclf.training.runner",
}

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
