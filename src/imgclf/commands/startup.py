"""What every command does first and last: the run directory with its resolved config,
seeding, loggers, building objects from the Hydra config, and closing the loggers."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from imgclf.commands.run_lock import LOCK_NAME, lock_run_directory, release_run_lock
from imgclf.errors import UserError
from imgclf.processes import seed_everything
from imgclf.reporting.run_log import start_run_log
from imgclf.training.checkpoints import find_checkpoint, load_classifier

if TYPE_CHECKING:
    import lightning as L


def is_rank_zero(lightning: bool = True) -> bool:
    """Whether this process is rank 0 (Lightning's count; a command that runs without
    Lightning is a single process)."""
    if not lightning:
        return True
    from lightning.pytorch.utilities import rank_zero_only

    return rank_zero_only.rank == 0


@dataclass
class Run:
    """A command's run: its directory (`paths.output_dir`) and its loggers."""

    cfg: DictConfig
    directory: Path
    loggers: list = field(default_factory=list)
    with_loggers: bool = True
    # False: a single process that runs without Lightning (`imgclf predict` on the CPU).
    lightning: bool = True

    def begin(self) -> None:
        """The run has started: write config.yaml (resolved), `.hydra/` as Hydra itself would
        (config.yaml unresolved, hydra.yaml, overrides.yaml: what `resume=` reads) and the
        held-back log (cli.log), and build the configured loggers (W&B records its run id).
        Hydra is told to write none of it, so a command that fails before it starts
        (directory in use, a resume that does not fit) leaves the run's files as they were.
        Rank 0 writes the files; every rank starts its own log and loggers."""
        start_run_log()
        if is_rank_zero(self.lightning):
            self.save_config()
        self.loggers = instantiate_dict(self.cfg.get("logger")) if self.with_loggers else []

    def save_config(self) -> None:
        """config.yaml and .hydra/ (see `begin`)."""
        OmegaConf.save(self.cfg, self.directory / "config.yaml", resolve=True)
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            hydra = HydraConfig.get()
            hydra_dir = self.directory / ".hydra"
            hydra_dir.mkdir(exist_ok=True)
            OmegaConf.save(self.cfg, hydra_dir / "config.yaml")
            OmegaConf.save(OmegaConf.create({"hydra": hydra}), hydra_dir / "hydra.yaml")
            overrides = OmegaConf.to_container(hydra.overrides.task)
            (hydra_dir / "overrides.yaml").write_text(yaml.safe_dump(overrides))

    def finish(self) -> Path:
        """Close W&B runs now, so their sync messages come before our final line."""
        for logger in self.loggers:
            from lightning.pytorch.loggers import WandbLogger

            if isinstance(logger, WandbLogger):
                logger.experiment.finish()
        return self.directory


def start_run(
    cfg: DictConfig,
    loggers: bool = True,
    begin: bool = True,
    another_run_ok: bool = True,
    lightning: bool = True,
    seed: bool = True,
) -> Run:
    """Create and lock the run directory, seed every generator, save the config there and
    (with `loggers`) build the configured loggers (`Run.begin`; with `begin` False the
    caller calls it once its own checks have passed). Without `another_run_ok`, a directory
    that holds another run's checkpoints or summary is refused (under the lock: no race).
    `lightning` False: a single process seeded without importing Lightning. `seed` False:
    nothing random follows (a prediction without TTA through ONNX), so torch, whose
    generator seeding means importing it, is left alone."""
    directory = Path(cfg.paths.output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    if is_rank_zero(lightning):
        lock = lock_run_directory(directory)
        if not another_run_ok:
            try:
                refuse_another_run(directory)
            except UserError:
                release_run_lock(lock)
                raise
    run = Run(cfg, directory, with_loggers=loggers, lightning=lightning)
    if lightning:
        import lightning as L

        L.seed_everything(cfg.seed, workers=True)
    elif seed:
        seed_everything(cfg.seed)
    if begin:
        run.begin()
    return run


def refuse_another_run(directory: Path) -> None:
    """A one-line error if `directory` holds a run's results (checkpoints, summary.json): a
    fresh run there would replace them. `exist_ok=true` says that is meant."""
    found = [p.name for p in (directory / "checkpoints").glob("*.ckpt")]
    found += ["summary.json"] if (directory / "summary.json").is_file() else []
    if found:
        shown = ", ".join(sorted(found)[:3]) + (", ..." if len(found) > 3 else "")
        raise UserError(
            f"{directory} already holds a run ({shown}): continue it with resume={directory}, "
            "train into a new directory (hydra.run.dir=NEW_DIR), or replace it with "
            "exist_ok=true"
        )


def discard_unstarted_run(directory: Path, keep_directory: bool = False) -> bool:
    """After a command failed before its run began: release this process's lock and remove
    the directory if nothing else is in it (Hydra makes the directory before the command
    starts) and it is not one to keep (one that existed before). A directory with anything
    else in it (a run being resumed, a folder of the user's, another command's lock) stays.
    True if the directory was removed."""
    release_run_lock(Path(directory).absolute() / LOCK_NAME)  # only if this process holds it
    if keep_directory:
        return False
    try:
        directory.rmdir()  # only succeeds when empty
    except OSError:
        return False
    return True


def check_writable(path: Path, what: str) -> Path:
    """A one-line error now, before any work, if `path` cannot be written."""
    probe = path.parent / f".{path.name}.write-test-{os.getpid()}"
    if path.parent.exists() and not path.parent.is_dir():
        raise UserError(f"cannot write {what} {path}: {path.parent} is not a folder")
    if path.is_dir():
        raise UserError(f"cannot write {what} {path}: it is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(errno.EACCES, "Permission denied")
    except OSError as err:
        raise UserError(f"cannot write {what} {path}: {err.strerror or err}") from None
    return path


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
    """`instantiate`, with every error raised while building an object from the config as
    one line naming its key (`config_error`), instead of Hydra's wrapper (InstantiationException:
    several lines, a hint about HYDRA_FULL_ERROR, exit status 1); our UserError as it is."""
    from hydra.errors import InstantiationException

    try:
        return instantiate(section, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, UserError):
            raise err.__cause__ from None
        raise UserError(config_error(err, section)) from None


def config_error(err: Exception, section: DictConfig) -> str:
    """`key=value: what the object said` for the one setting of `section` the message names,
    else `key: what it said` for the section (Hydra's `full_key`)."""
    import re

    from imgclf.training.resume_config import flatten

    cause = err.__cause__ or err
    said = one_line_of(cause)
    where = re.search(r"full_key: (\S+)", str(err))
    key = where.group(1) if where else section._get_full_key(None) or "the config"
    values = flatten(OmegaConf.to_container(section, resolve=True))
    named = [
        (leaf, value)
        for leaf, value in values.items()
        if isinstance(value, (int, float, str))
        and not isinstance(value, bool)
        and str(value)
        and re.search(rf"(?<![\w.-]){re.escape(str(value))}(?![\w.-])", said)
    ]
    if len(named) == 1 and named[0][0] != "_target_":
        return f"{key}.{named[0][0]}={named[0][1]}: {said}"
    return f"{key}: {said}"


def one_line_of(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(err).__name__


def build_trainer(section: DictConfig, **kwargs) -> L.Trainer:
    """The configured Lightning Trainer; a mistake in its settings is one line."""
    return instantiate_user(section, **kwargs)


def build_data_and_model(cfg: DictConfig):
    """Data module (scanned), model sized for its classes, and the data module told the
    backbone's input config."""
    datamodule = instantiate_user(cfg.data)
    try:
        datamodule.setup("fit")
    except (TypeError, ValueError, KeyError) as err:  # a value of the wrong kind in data.*
        raise UserError(config_error(err, cfg.data)) from None
    # data.balance=loss_weights: the class weights of the training loss come from the data.
    weights = {"class_weights": datamodule.loss_weights} if datamodule.loss_weights else {}
    model = instantiate_user(
        cfg.model,
        num_classes=len(datamodule.classes),
        class_names=datamodule.classes,
        task=datamodule.task,  # chosen from the labels (data.task: auto, single, multi)
        **weights,
    )
    datamodule.set_data_config(model.data_config)
    # data.image_size=auto: the size it chose, once (by rank 0 of a DDP run).
    if datamodule.image_size_line() and is_rank_zero():
        print(datamodule.image_size_line(), flush=True)
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


# TTA passes when `tta.n: auto` predicts more than one image (fastai's `learn.tta`).
AUTO_TTA_PASSES = 4


def tta_count(setting, one_image: bool = False) -> int:
    """`tta.n`: a number of augmented passes, or auto: none for one image file (what
    fastai's `learn.predict`, the web page and the Python API give), else 4."""
    if str(setting) == "auto":
        return 0 if one_image else AUTO_TTA_PASSES
    return int(setting)


def tta_arguments(cfg: DictConfig, model) -> dict:
    """The keyword arguments `interpret` and `predict` take from the config."""
    return {
        "tta_n": tta_count(cfg.tta.n),
        "tta_beta": cfg.tta.beta,
        "clip": cfg.clip,
        "seed": cfg.seed,
        "image_size": input_size_of(cfg, model),
    }


def inference_trainer(cfg: DictConfig, loggers: list) -> L.Trainer:
    """The configured Trainer (devices, precision, DDP) with the prediction collector. No
    progress bar: the passes report on one line of their own (`evaluation/pass_line.py`)."""
    from imgclf.evaluation.collect import CollectPredictions

    return build_trainer(
        cfg.trainer,
        callbacks=[CollectPredictions()],
        logger=loggers or False,
        enable_model_summary=False,
        enable_progress_bar=False,
    )
