"""Silence what third-party libraries print that a user can do nothing about: Lightning's
advertising tips, deprecation notices from inside torch and Lightning, and warnings known
to be harmless for the way imgclf uses them. imgclf's own warnings are left alone."""

from __future__ import annotations

import logging
import warnings

# (message regex, why it is harmless here)
HARMLESS_WARNINGS = (
    # The frozen body's norm layers are held in eval mode on purpose (train_bn: false,
    # precompute stages).
    (r"Found \d+ module\(s\) in eval mode", "frozen layers are held in eval mode on purpose"),
    # Every stage is a new fit in the same run directory: best.ckpt and last.ckpt are
    # meant to be overwritten.
    (r"Checkpoint directory .* exists and is not empty", "stages share the run's checkpoints"),
    # torch's pytree, used by Lightning internally.
    (r".*LeafSpec.* is deprecated", "inside torch/Lightning"),
)
# Lightning's INFO lines that advertise other products, or say what imgclf's own lines
# already say (a stage's end, the one-line model summary replacing Lightning's table).
ADVERTS = (
    "litlogger",
    "litmodels",
    "💡 Tip",
    "Skipping setting a default `ModelSummary`",
    "to estimate number of stepping batches",
    "` reached.",
    "TPU available",
)

# Loggers that speak at INFO about their own set-up: alembic (imported by Optuna, the
# hyperparameter search's sampler) lists every plugin it registers; httpx (the web page's
# server checks itself at start-up) logs each of its requests.
CHATTY_LOGGERS = ("alembic", "httpx")


class DropAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(word in message for word in ADVERTS)


def quiet_third_party() -> None:
    """Install the warning filters and the log filter (idempotent)."""
    for pattern, _why in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropAdverts) for f in logger.filters):
            logger.addFilter(DropAdverts())
