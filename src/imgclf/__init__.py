"""imgclf: transfer-learning image classification the fast.ai way, on Lightning, Hydra and timm.

The Python API (what `notebooks/lesson1.ipynb` uses; the CLI runs the same functions):

    from imgclf import FolderDataModule, ImageClassifier, Stage, lr_find, fit_recipe
    from imgclf import interpret, predict, load_classifier, export_model

The packages, in the order a run goes through them: `data` (folders to batches), `model`
(the network, its layer groups and schedules), `training` (recipes, the stage runner, the
LR finder, precompute, checkpoints, resume), `evaluation` (metrics, clipping, TTA, error
analysis, prediction, export), `callbacks` (thin Lightning wiring), `commands` (the CLI).

Every name below is loaded on first use (PEP 562), so `import imgclf` stays light: no
torch, no Lightning, no network until a name is used.
"""

from __future__ import annotations

import os
import warnings

from imgclf.lazy_exports import lazy_exports

# albumentations asks PyPI for a newer version on import; a template must never phone home.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# torch's CPU threads wait for work by sleeping, not spinning: with spinning threads, any
# other busy process on the cores slows training about tenfold (benchmarks/results.md, "CPU
# contention"). Read when OpenMP starts, i.e. when torch is imported; set your own to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# tqdm warns on import in a notebook without ipywidgets (timm's hub code imports tqdm.auto);
# imgclf draws no tqdm bars, so the warning is noise in every notebook that uses it.
warnings.filterwarnings("ignore", message="IProgress not found")

__version__ = "0.1.0"

# The public API: name -> the module that defines it.
_EXPORTS = {
    "FolderDataModule": "imgclf.data.folder",
    "build_digits_demo": "imgclf.data.demo",
    "ImageClassifier": "imgclf.model.classifier",
    "Stage": "imgclf.training.recipe",
    "parse_recipe": "imgclf.training.recipe",
    "lr_find": "imgclf.training.lr_finder",
    "load_classifier": "imgclf.training.checkpoints",
    "make_trainer": "imgclf.api",
    "fit_recipe": "imgclf.api",
    "load": "imgclf.api",
    "from_config": "imgclf.api",
    "ConfiguredRecipe": "imgclf.api",
    "show_batch": "imgclf.api",
    "plot_history": "imgclf.api",
    "TrainedRun": "imgclf.api",
    "ImagePrediction": "imgclf.api",
    "interpret": "imgclf.evaluation.interpretation",
    "Interpretation": "imgclf.evaluation.interpretation",
    "predict": "imgclf.evaluation.prediction",
    "Prediction": "imgclf.evaluation.submission",
    "write_submission": "imgclf.evaluation.submission",
    "export_model": "imgclf.evaluation.export",
    "UserError": "imgclf.errors",
}

__all__ = ["__version__", *_EXPORTS]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
