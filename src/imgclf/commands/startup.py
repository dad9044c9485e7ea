"""What every command does first and last: the run directory with its resolved config,
seeding, loggers, building objects from the Hydra config, and closing the loggers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from imgclf.errors import UserError
from imgclf.evaluation.collect import CollectPredictions
from imgclf.training.checkpoints import find_checkpoint, load_classifier


@dataclass
class Run:
    """A command's run: its directory (`paths.output_dir`) and its loggers."""

    cfg: DictConfig
    directory: Path
    loggers: list = field(default_factory=list)

    def finish(self) -> Path:
        """Close W&B runs now, so their sync messages come before our final line."""
        for logger in self.loggers:
            if isinstance(logger, L.pytorch.loggers.WandbLogger):
                logger.experiment.finish()
        return self.directory


def start_run(cfg: DictConfig, loggers: bool = True) -> Run:
    """Create the run directory, save the resolved config there, seed every generator and
    (with `loggers`) build the configured loggers."""
    directory = Path(cfg.paths.output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, directory / "config.yaml", resolve=True)
    L.seed_everything(cfg.seed, workers=True)
    built = instantiate_dict(cfg.get("logger")) if loggers else []
    return Run(cfg, directory, built)


def instantiate_dict(section: DictConfig | None) -> list:
    """Instantiate every entry of a name -> {_target_: ...} mapping (loggers, callbacks);
    an entry that builds a list (default_callbacks) adds all of its items."""
    if not section:
        return []
    built = []
    for entry in section.values():
        if entry and "_target_" in entry:
            value = instantiate_user(entry)
            built += list(value) if isinstance(value, (list, tuple)) else [value]
    return built


def instantiate_user(section: DictConfig, **kwargs):
    """`instantiate`, letting our one-line UserError through instead of Hydra's wrapper
    (InstantiationException with the config path and a hint about HYDRA_FULL_ERROR)."""
    from hydra.errors import InstantiationException

    try:
        return instantiate(section, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, UserError):
            raise err.__cause__ from None
        raise


def build_data_and_model(cfg: DictConfig):
    """Data module (scanned), model sized for its classes, and the data module told the
    backbone's input config."""
    datamodule = instantiate_user(cfg.data)
    datamodule.setup("fit")
    model = instantiate_user(
        cfg.model, num_classes=len(datamodule.classes), class_names=datamodule.classes
    )
    datamodule.set_data_config(model.data_config)
    return datamodule, model


def load_model_and_data(cfg: DictConfig, scan: bool = True):
    """The checkpoint's model and the configured data module, set to the model's input
    (mean/std from the backbone). `scan` reads the train/valid folders (needed for
    validation images and the class check)."""
    model = load_classifier(find_checkpoint(cfg.get("ckpt")))
    datamodule = instantiate_user(cfg.data)
    datamodule.set_data_config(model.data_config)
    if scan:
        datamodule.setup("validate")
        trained = list(model.hparams.class_names or [])
        if trained and trained != datamodule.classes:
            raise UserError(
                f"the checkpoint was trained on classes {trained[:10]}, but {datamodule.root} "
                f"has {datamodule.classes[:10]}: pass the training data (data=..., data.root=...)"
            )
    return model, datamodule


def input_size_of(cfg: DictConfig, model) -> int | None:
    """`image_size=` if given, else the size the checkpoint last trained at."""
    return int(cfg.image_size) if cfg.get("image_size") else model.image_size


def tta_arguments(cfg: DictConfig, model) -> dict:
    """The keyword arguments `interpret` and `predict` take from the config."""
    return {
        "tta_n": cfg.tta.n,
        "tta_beta": cfg.tta.beta,
        "clip": cfg.clip,
        "seed": cfg.seed,
        "image_size": input_size_of(cfg, model),
    }


def inference_trainer(cfg: DictConfig, loggers: list) -> L.Trainer:
    """The configured Trainer (devices, precision, DDP) with the prediction collector."""
    return instantiate(
        cfg.trainer,
        callbacks=[CollectPredictions()],
        logger=loggers or False,
        enable_model_summary=False,
    )
