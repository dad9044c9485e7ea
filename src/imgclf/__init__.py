"""imgclf: transfer-learning image classification the fast.ai way, on Lightning, Hydra and timm.

The Python API (what `notebooks/lesson1.ipynb` uses; the CLI runs the same functions):

    from imgclf import FolderDataModule, ImageClassifier, Stage, lr_find, fit_recipe
    from imgclf import interpret, predict, load_classifier, export_model

Names load on first use, so `import imgclf` stays light (no torch, no network).
"""

from __future__ import annotations

import importlib
import os
import sys
import types

# albumentations asks PyPI for a newer version on import; a template must never phone home.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# torch's CPU threads wait for work by sleeping, not spinning: with spinning threads, any
# other busy process on the cores slows training about tenfold (benchmarks/results.md, "CPU
# contention"). Read when OpenMP starts, i.e. when torch is imported; set your own to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "FolderDataModule": "imgclf.data",
    "ImageClassifier": "imgclf.model",
    "Stage": "imgclf.recipe",
    "parse_recipe": "imgclf.recipe",
    "make_trainer": "imgclf.api",
    "lr_find": "imgclf.api",
    "fit_recipe": "imgclf.api",
    "interpret": "imgclf.interpretation",
    "Interpretation": "imgclf.interpretation",
    "predict": "imgclf.submit",
    "Prediction": "imgclf.submit",
    "write_submission": "imgclf.submit",
    "load_classifier": "imgclf.checkpoint",
    "export_model": "imgclf.export",
    "build_digits_demo": "imgclf.demo",
    "UserError": "imgclf.errors",
}
# Also submodule names (imgclf/interpret.py, imgclf/fit_recipe.py). Importing a submodule
# sets it as an attribute of the package, which would hide the function of the same name;
# class-level properties win over module attributes, so `imgclf.interpret` always means the
# function (the modules stay importable: `from imgclf.interpret import VIEWS`).
_SHADOWED = ("interpret", "fit_recipe")

__all__ = ["__version__", *_EXPORTS]


def _load(name: str):
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = _load(name)
        globals()[name] = value  # resolve once
        return value
    raise AttributeError(f"module 'imgclf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


def _api_property(name: str) -> property:
    def get(module):
        return _load(name)

    def ignore(module, value) -> None:  # the import system setting the submodule
        pass

    return property(get, ignore, doc=f"imgclf.{name}: see {_EXPORTS[name]}.{name}")


class _Package(types.ModuleType):
    pass


for _name in _SHADOWED:
    setattr(_Package, _name, _api_property(_name))
sys.modules[__name__].__class__ = _Package
del _name
