"""Logger helpers: W&B without an account (online when credentials exist, offline
otherwise), pictures to every logger that takes images, and the run summary in W&B."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

import numpy as np
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_info

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
    if env:
        return ("offline" if env == "dryrun" else env), f"WANDB_MODE={env}"
    if mode not in MODES:
        raise ValueError(f"logger.wandb.mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode != "auto":
        return mode, f"logger.wandb.mode={mode}"
    if has_wandb_credentials():
        return "online", "W&B credentials found"
    return "offline", "no W&B credentials found"


def wandb_logger(mode: str = "auto", log_model: bool | str = False, **kwargs) -> WandbLogger:
    """A Lightning WandbLogger whose mode is decided by `resolve_mode`.

    The mode goes to `wandb.init(mode=...)` rather than Lightning's `offline=True`, which
    refuses `log_model`: offline runs keep the checkpoint artifact for `wandb sync`.
    """
    resolved, why = resolve_mode(str(mode))
    save_dir = Path(kwargs.get("save_dir") or ".")
    if resolved == "offline":
        rank_zero_info(
            f"W&B: logging offline ({why}) to {save_dir / 'wandb'}; upload later with "
            f"`wandb sync {save_dir / 'wandb'}/offline-run-*`"
        )
    else:
        rank_zero_info(f"W&B: mode {resolved} ({why})")
    logger = WandbLogger(offline=False, log_model=log_model, mode=resolved, **kwargs)
    # Lightning passes anonymous=None, which W&B warns about ("has no effect").
    init = getattr(logger, "_wandb_init", {})
    if init.get("anonymous", "unset") is None:
        init.pop("anonymous")
    return logger


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


def log_picture(loggers, key: str, path: Path, step: int | None = None) -> None:
    """A PNG to the loggers that take images (W&B, TensorBoard)."""
    from PIL import Image

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], step=step)
        elif isinstance(logger, TensorBoardLogger):
            image = np.asarray(Image.open(path).convert("RGB"))
            logger.experiment.add_image(key, image, global_step=step or 0, dataformats="HWC")
