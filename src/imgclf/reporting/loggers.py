"""Logger helpers: W&B without an account (online when credentials exist, offline
otherwise), pictures to every logger that takes images, the run summary in W&B, and
loggers that record epochs and steps counted from 1 (`imgclf.reporting.counting`)."""

from __future__ import annotations

import csv
import netrc
import os
import socket
import uuid
import warnings
from pathlib import Path

import numpy as np
from lightning.pytorch.loggers import WandbLogger, csv_logs, tensorboard
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_info

from imgclf.reporting.counting import epoch_number, lightning_step, step_number

MODES = ("auto", "online", "offline", "disabled")


def has_wandb_credentials() -> bool:
    """An API key in the environment, or the one `wandb login` stores in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_mode(mode: str = "auto") -> tuple[str, str]:
    """(wandb mode, why). WANDB_MODE always wins; `auto` goes online only with credentials."""
    env = os.environ.get("WANDB_MODE")
    if env == "":  # set but empty: unset (wandb itself would fail on it)
        del os.environ["WANDB_MODE"]
    if env:
        mode, why = ("offline" if env == "dryrun" else env), f"WANDB_MODE={env}"
    elif mode not in MODES:
        raise ValueError(f"logger.wandb.mode must be one of {', '.join(MODES)}, got {mode!r}")
    elif mode != "auto":
        why = f"logger.wandb.mode={mode}"
    elif not has_wandb_credentials():
        return "offline", "no W&B credentials found"
    else:
        mode, why = "online", "W&B credentials found"
    if mode != "online":
        return mode, why
    # Online in every mode only when the server answers: wandb itself would wait minutes.
    host = server_unreachable()
    if host:
        return "offline", f"{why}, but {host} cannot be reached"
    return "online", why


def server_unreachable(timeout: float = 3.0) -> str | None:
    """The W&B server's host:port if a TCP connection to it fails within `timeout` seconds
    (wandb itself would retry for minutes, then fail the run), else None."""
    from urllib.parse import urlsplit

    url = urlsplit(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai")
    host, port = url.hostname or "api.wandb.ai", url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return f"{host}:{port}"
    return None


def wandb_logger(mode: str = "auto", log_model: bool | str = False, **kwargs) -> WandbLogger:
    """A Lightning WandbLogger whose mode is decided by `resolve_mode`.

    The mode goes to `wandb.init(mode=...)` rather than Lightning's `offline=True`, which
    refuses `log_model`: offline runs keep the checkpoint artifact for `wandb sync`.
    """
    resolved, why = resolve_mode(str(mode))
    save_dir = Path(kwargs.get("save_dir") or ".")
    if resolved != "disabled" and not kwargs.get("id"):
        kwargs.update(id=run_id(save_dir), resume="allow")
    if resolved == "offline":
        if os.environ.get("WANDB_MODE") == "online":  # wandb reads it too: it would wait
            os.environ["WANDB_MODE"] = "offline"
        rank_zero_info(
            f"W&B: logging offline ({why}) to {save_dir / 'wandb'}; upload later with "
            f"`wandb sync {save_dir / 'wandb'}/offline-run-*`"
        )
    else:
        rank_zero_info(f"W&B: mode {resolved} ({why})")
    if "settings" not in kwargs:
        import wandb

        # quiet: no W&B history and summary block after our closing lines (the run keeps
        # them all); the run's link is still printed when online.
        kwargs["settings"] = wandb.Settings(quiet=True)
    logger = SafeWandbLogger(offline=False, log_model=log_model, mode=resolved, **kwargs)
    # Lightning passes anonymous=None, which W&B warns about ("has no effect").
    init = getattr(logger, "_wandb_init", {})
    if init.get("anonymous", "unset") is None:
        init.pop("anonymous")
    return logger


RUN_ID_FILE = "wandb-run-id"


def run_id(save_dir: Path) -> str:
    """The W&B run id of this run directory: the one its first start recorded, so a resumed
    run continues the same W&B run; a new id (said so) when the directory has none."""
    path = save_dir / RUN_ID_FILE
    if path.is_file() and path.read_text().strip():
        known = path.read_text().strip()
        rank_zero_info(f"W&B: continuing run {known} of {save_dir}")
        return known
    new = uuid.uuid4().hex[:8]
    if (save_dir / "checkpoints").is_dir():
        rank_zero_info(f"W&B: no earlier W&B run recorded in {save_dir}: starting run {new}")
    save_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(new + "\n")
    return new


class NoRun:
    """Stands in for a W&B run that failed: every call does nothing."""

    @property
    def summary(self) -> dict:
        return {}

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


class CountFromOne:
    """Mixed into a Lightning logger: its `epoch` column and its step axis count from 1, as
    the console, the progress bar and summary.json do (see `imgclf.reporting.counting`).
    Lightning hands loggers its own counters, from 0; this is the one place they change."""

    def log_metrics(self, metrics, step: int | None = None) -> None:
        if "epoch" in metrics:
            metrics = {**metrics, "epoch": epoch_number(metrics["epoch"])}
        super().log_metrics(metrics, None if step is None else step_number(step))


class SafeWandbLogger(CountFromOne, WandbLogger):
    """A WandbLogger whose failures (no server, a network error mid-run) are one warning,
    after which it logs nothing: W&B never stops training."""

    _failure: str | None = None

    def failed(self, err: Exception) -> None:
        if self._failure is None:
            self._failure = f"{type(err).__name__}: {str(err).strip().splitlines()[0][:200]}"
            warnings.warn(
                f"W&B failed ({self._failure}); training goes on without W&B", stacklevel=3
            )

    @property
    def experiment(self):
        if self._failure is None:
            try:
                return super().experiment
            except Exception as err:
                self.failed(err)
        return NoRun()

    def log_metrics(self, *args, **kwargs) -> None:
        self.guarded(super().log_metrics, *args, **kwargs)

    def log_hyperparams(self, *args, **kwargs) -> None:
        self.guarded(super().log_hyperparams, *args, **kwargs)

    def log_image(self, *args, **kwargs) -> None:
        self.guarded(super().log_image, *args, **kwargs)

    def after_save_checkpoint(self, *args, **kwargs) -> None:
        self.guarded(super().after_save_checkpoint, *args, **kwargs)

    def finalize(self, *args, **kwargs) -> None:
        self.guarded(super().finalize, *args, **kwargs)

    def guarded(self, method, *args, **kwargs) -> None:
        if self._failure is not None:
            return
        try:
            method(*args, **kwargs)
        except Exception as err:
            self.failed(err)


# summary.json fields that also go into the W&B run summary (the runs table columns).
SUMMARY_KEYS = (
    "best_valid_acc",
    "best_epoch",
    "valid_logloss",
    "final_valid_acc",
    "epochs",
    "global_step",
    "wall_seconds",
    "train_images",
    "valid_images",
    "skipped_files",
    "image_size",
    "recipe",
)


def write_run_summary(loggers: list, summary: dict) -> None:
    """Headline results of a run into each W&B run's summary."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            values = {key: summary[key] for key in SUMMARY_KEYS if summary.get(key) is not None}
            logger.experiment.summary.update(values)


def handed_step(step: int | None) -> int | None:
    """What to pass a logger's `log_image`/`log_table` for step number `step` (optimizer
    steps done; 0 before training): Lightning's count, which `CountFromOne` turns back."""
    return None if step is None else lightning_step(step)


def log_picture(loggers, key: str, path: Path, step: int | None = None) -> None:
    """A PNG to the loggers that take images (W&B, TensorBoard), at step number `step`
    (optimizer steps done, as summary.json counts them)."""
    from PIL import Image

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], step=handed_step(step))
        elif isinstance(logger, tensorboard.TensorBoardLogger):
            image = np.asarray(Image.open(path).convert("RGB"))
            at = step or 0
            if not isinstance(logger, CountFromOne):  # Lightning's own count, from 0
                at = max(0, lightning_step(at))
            logger.experiment.add_image(key, image, global_step=at, dataformats="HWC")


class AppendingExperimentWriter(csv_logs.ExperimentWriter):
    """Lightning's CSV writer, but an existing metrics.csv is continued, not deleted."""

    def _check_log_dir_exists(self) -> None:
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as stream:
                self.metrics_keys = sorted(next(csv.reader(stream), []))


class CSVLogger(CountFromOne, csv_logs.CSVLogger):
    """Lightning's CSVLogger, epochs and steps counted from 1; a resumed run appends to its
    metrics.csv (Lightning's own deletes the file when a logger starts in a directory that
    has one)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> AppendingExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AppendingExperimentWriter(log_dir=self.log_dir)
        return self._experiment


class TensorBoardLogger(CountFromOne, tensorboard.TensorBoardLogger):
    """Lightning's TensorBoardLogger, epochs and steps counted from 1."""
