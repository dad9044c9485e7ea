"""The Python API's Trainer and recipe runner with notebook defaults, and a trained run
loaded back for predictions (three lines from a run directory to an answer):

    import imgclf
    run = imgclf.load("logs/train/2026-11-23_01-53-59")
    run.predict("photo.jpg")          # ImagePrediction(label=..., probability=..., probs=...)

    from imgclf import FolderDataModule, ImageClassifier, Stage, lr_find, fit_recipe

    data = FolderDataModule("data/digits", image_size=64, batch_size=32, num_workers=0)
    data.setup()
    model = ImageClassifier(num_classes=len(data.classes), class_names=data.classes)
    head = Stage("head", freeze_to=-1, epochs=2, lr=1e-2, precompute=True)
    lr_find(model, data, head).plot()
    fit_recipe(model, data, [head])

`imgclf train` runs the same stage runner (`imgclf.training.run_recipe`) with a Trainer
and callbacks built from the Hydra config.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch
import yaml
from omegaconf import DictConfig, OmegaConf

from imgclf.callbacks.console import EpochSummary
from imgclf.callbacks.defaults import default_callbacks
from imgclf.data import FolderDataModule
from imgclf.data.preprocess import model_transform, preprocess
from imgclf.errors import UserError
from imgclf.evaluation.collect import quiet_lightning
from imgclf.evaluation.export import input_size
from imgclf.evaluation.pictures import augmented_samples, batch_figure, history_figure
from imgclf.model import ImageClassifier
from imgclf.reporting import quiet_third_party
from imgclf.training.checkpoints import find_checkpoint, load_classifier
from imgclf.training.progress import RecipeProgress
from imgclf.training.recipe import Stage, parse_recipe
from imgclf.training.runner import run_recipe

DEFAULT_CACHE_DIR = Path("data/cache")


def make_trainer(
    run_dir: str | Path | None = None,
    accelerator: str = "auto",
    devices: int | str = 1,
    clip="auto",
    views_k: int = 12,
    callbacks: Sequence[L.Callback] = (),
    logger=False,
    progress_bar: bool = False,
    quiet: bool = True,
    gradient_clip_val: float | None = 1.0,
    **trainer_kwargs,
) -> L.Trainer:
    """A Trainer for notebooks: one device (GPU if there is one), no logger, no progress
    bars, no checkpoint callback, no sanity validation.

    Attached: `default_callbacks(run_dir, clip, views_k, console=False, checkpoints=False)`
    (prediction collection, clipped log-loss, the divergence guard, RecipeProgress with
    `.history` of every validation; with `run_dir` the misclassification views written to
    `run_dir/interpret/`) and a line per epoch (`EpochSummary`). Gradient norms are clipped
    at `gradient_clip_val` (1.0, as configs/trainer/default.yaml; None turns it off). `quiet` silences Lightning's
    device banner, its warning about few DataLoader workers and other libraries' notices
    (`quiet_third_party`). Extra keyword arguments go to L.Trainer.
    """
    if quiet:
        quiet_lightning()
        quiet_third_party()
    every = default_callbacks(run_dir, clip, views_k, console=False, checkpoints=False)
    every.insert(0, EpochSummary())  # a line per epoch, so a notebook cell shows progress
    settings = dict(
        accelerator=accelerator,
        devices=devices,
        logger=logger,
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        gradient_clip_val=gradient_clip_val,
        default_root_dir=str(run_dir) if run_dir is not None else None,
    )
    settings.update(trainer_kwargs)
    return L.Trainer(callbacks=[*every, *callbacks], **settings)


def default_run_dir() -> Path:
    return Path("logs") / "api" / time.strftime("%Y-%m-%d_%H-%M-%S")


def as_stages(stages) -> list[Stage]:
    """One Stage, a list of Stages, or config mappings (as in configs/recipe/*.yaml)."""
    if isinstance(stages, (Stage, Mapping)):
        stages = [stages]
    stages = list(stages)
    if all(isinstance(s, Stage) for s in stages):
        return stages
    return parse_recipe([dict(s) if isinstance(s, Mapping) else asdict(s) for s in stages])


def fit_recipe(
    model,
    datamodule: FolderDataModule,
    stages,
    trainer: L.Trainer | None = None,
    run_dir: str | Path | None = None,
    cache_dir: str | Path = DEFAULT_CACHE_DIR,
    lr_find_settings: dict | None = None,
) -> list[dict]:
    """Train `model` through the recipe's stages in order (what `imgclf train` runs).

    stages: a Stage, a list of them, or config mappings. Each stage freezes/unfreezes,
    sets its per-group LRs (`lr: auto` runs the LR finder and saves its plot to run_dir),
    its schedule (one_cycle, sgdr, constant) and image size, and is its own `trainer.fit`.
    trainer: default `make_trainer(run_dir)`; pass one Trainer to several calls to continue
    one run. run_dir (default logs/api/<date>_<time>) receives stage checkpoints
    (`checkpoints/stage<N>-<name>.ckpt`), LR finder plots and `interpret/`. Returns one
    record per stage: epochs, image size, LR per group, seconds, valid accuracy and
    log-loss, checkpoint, and `history` (its epochs' metrics; `plot_history(records)`).
    """
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir()
    trainer = trainer or make_trainer(run_dir)
    datamodule.setup("fit")
    if model.task.name != datamodule.task:
        raise UserError(
            f"the data is {datamodule.task}-label but the model {model.task.name}-label: "
            f"ImageClassifier(..., task={datamodule.task!r})"
        )
    datamodule.set_data_config(model.data_config)
    if datamodule.image_size_line():  # image_size="auto": the size it chose
        print(datamodule.image_size_line(), flush=True)
    records = run_recipe(
        trainer,
        model,
        datamodule,
        as_stages(stages),
        run_dir,
        cache_dir=Path(cache_dir),
        lr_find_settings=lr_find_settings,
    )
    history = RecipeProgress.of(trainer).history
    # Copies: the runner's records also live in the checkpoints' recipe state.
    return [
        {**record, "history": [h for h in history if h.get("stage") == record["name"]]}
        for record in records
    ]


def plot_history(records: list[dict]):
    """Train and valid loss and valid accuracy per epoch of the records `fit_recipe`
    returned (of one call or several, in order), stage boundaries marked: a Figure."""
    history, starts = [], {}
    for index, record in enumerate(records):
        if index:
            starts[record["name"]] = len(history)
        history += [{**h, "epoch": len(history) + i + 1} for i, h in enumerate(record["history"])]
    return history_figure(history, starts)


@dataclass
class ImagePrediction:
    """One image's answer: the most likely class and every class's probability.

    Multi-label models: `tags`, the predicted tag set (each tag at or above its validated
    threshold) with each tag's probability; `label` is the tags space-separated and
    `probability` the lowest of theirs (0 when no tag is predicted)."""

    label: str
    probability: float
    probs: dict[str, float]
    tags: dict[str, float] | None = None

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        return sorted(self.probs.items(), key=lambda item: -item[1])[:k]


@dataclass
class TrainedRun:
    """A trained model with what it needs to predict: from `load(run_dir_or_checkpoint)`.

    `model` (eval mode, CPU), `classes`, `image_size`, `run_dir` (None for a lone
    checkpoint) and `config` (the run's resolved `config.yaml`, {} without one).
    """

    model: ImageClassifier
    run_dir: Path | None = None
    config: dict = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return list(self.model.class_names)

    @property
    def image_size(self) -> int:
        return input_size(self.model)

    def pixels(self, image) -> np.ndarray:
        """The image exactly as `imgclf predict` (TTA off) feeds it: uint8 CHW, through
        the one preprocessing path (`imgclf.data.preprocess`), reduced-scale JPEG decode
        included."""
        transform = model_transform(self.model.data_config, self.image_size)
        return np.asarray(preprocess(image, transform))

    def predict(self, image) -> ImagePrediction:
        """Class probabilities of one image: a path (str or Path), a PIL image, or an HxWx3
        array (uint8 0..255, or float 0..1)."""
        batch = torch.from_numpy(self.pixels(image))[None]
        with torch.no_grad():
            probs = self.model.task.activation(self.model.eval()(batch))[0].double().numpy()
        named = {name: float(p) for name, p in zip(self.classes, probs, strict=True)}
        if self.model.task.name == "multi":
            chosen = self.model.task.decode(probs[None], self.model.thresholds)[0]
            tags = {name: named[name] for name, on in zip(self.classes, chosen, strict=True) if on}
            return ImagePrediction(" ".join(tags), min(tags.values(), default=0.0), named, tags)
        best = int(self.model.task.decode(probs[None])[0])
        return ImagePrediction(self.classes[best], float(probs[best]), named)

    def data(self, **overrides) -> FolderDataModule:
        """The run's data module (its config.yaml's data settings, `overrides` win), set up
        and told the model's input config."""
        settings = {k: v for k, v in (self.config.get("data") or {}).items() if k != "_target_"}
        datamodule = FolderDataModule(**{**settings, **overrides})
        datamodule.setup("fit")
        datamodule.set_data_config(self.model.data_config)
        return datamodule

    def show_batch(self, n: int = 16, datamodule: FolderDataModule | None = None, seed: int = 0):
        """fastai's `show_batch`: `n` augmented training images as the model sees them, with
        labels (a Figure; Jupyter shows it)."""
        return show_batch(datamodule or self.data(num_workers=0), n=n, seed=seed)


def load(run_or_checkpoint: str | Path) -> TrainedRun:
    """A trained run back for predictions: a run directory (its best checkpoint, and its
    config.yaml for the data) or a checkpoint file.

        run = imgclf.load("logs/train/2026-11-23_01-53-59")
        run.predict("photo.jpg").label
    """
    path = Path(run_or_checkpoint).expanduser()
    checkpoint = find_checkpoint(path)
    run_dir = path if path.is_dir() else None
    if run_dir is None and checkpoint.parent.name == "checkpoints":
        run_dir = checkpoint.parent.parent
    config_file = run_dir / "config.yaml" if run_dir else None
    config = {}
    if config_file is not None and config_file.is_file():
        config = yaml.safe_load(config_file.read_text()) or {}
    else:
        run_dir = None
    return TrainedRun(load_classifier(checkpoint), run_dir, config)


@dataclass
class ConfiguredRecipe:
    """What `imgclf train <overrides>` trains, built from configs/ (`from_config`): the
    composed `config`, the data module (scanned), the model sized for its classes, the
    recipe's `stages` and the LR finder settings (`lr_find`), ready for `fit_recipe`."""

    config: DictConfig
    data: FolderDataModule
    model: ImageClassifier
    stages: list[Stage]
    lr_find: dict


def from_config(overrides: Sequence[str] = ("experiment=digits",)) -> ConfiguredRecipe:
    """The data, model and recipe of `imgclf train <overrides>`, read from configs/ and
    checked as the CLI checks them, so a notebook trains exactly what the command line
    does (`make train` is `experiment=digits`). `~` works in path values."""
    from imgclf.commands.arguments import expand_paths
    from imgclf.commands.config_check import compose_checked
    from imgclf.commands.configs import config_dir
    from imgclf.commands.startup import build_data_and_model
    from imgclf.commands.train import recipe_of

    cfg = compose_checked(config_dir(), "train", expand_paths(list(overrides)))
    datamodule, model = build_data_and_model(cfg)
    settings = OmegaConf.to_container(cfg.lr_find, resolve=True)
    return ConfiguredRecipe(cfg, datamodule, model, recipe_of(cfg), settings)


def show_batch(datamodule: FolderDataModule, n: int = 16, image_size: int | None = None, seed=0):
    """fastai's `show_batch`: `n` augmented training images as the model sees them, with
    their labels, as a Figure."""
    datamodule.setup("fit")
    images, labels = augmented_samples(datamodule, image_size, n=n, seed=seed)
    return batch_figure(images, labels)
