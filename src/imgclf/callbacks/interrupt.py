"""Ctrl-C during training: save a checkpoint to resume from before Lightning shuts down."""

from __future__ import annotations

import shlex
from contextlib import suppress
from pathlib import Path

import lightning as L

from imgclf.errors import TrainingInterrupted

INTERRUPTED_NAME = "interrupted.ckpt"


class SaveOnInterrupt(L.Callback):
    """On KeyboardInterrupt (SIGINT) inside `trainer.fit`, write `dirpath/interrupted.ckpt`.

    Lightning catches the KeyboardInterrupt itself, calls `on_exception`, then exits with
    `sys.exit(1)`; the train entry point sees `saved` and turns that into exit code 130
    with a line on how to resume.
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)
        self.saved: Path | None = None

    def save(self, trainer: L.Trainer) -> Path:
        path = self.dirpath / INTERRUPTED_NAME
        trainer.save_checkpoint(path)
        self.saved = path
        return path

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, KeyboardInterrupt):
            self.save(trainer)


def resume_command(command: str, overrides: list[str], checkpoint: Path) -> str:
    """`imgclf <command> <the same overrides> resume=<checkpoint>`, quoted for a shell."""
    kept = [o for o in overrides if not o.lstrip("+~").startswith("resume=")]
    return shlex.join(["imgclf", command, *kept, f"resume={checkpoint}"])


def interrupted_message(command: str, overrides: list[str], checkpoint: Path | None) -> str:
    if checkpoint is None:
        return "interrupted before any training step: nothing saved"
    return (
        f"interrupted: saved {checkpoint}\n"
        f"resume with: {resume_command(command, overrides, checkpoint)}"
    )


def raise_if_interrupted(
    trainer: L.Trainer, callbacks: list, stop: BaseException, command: str = "train"
) -> None:
    """Turn Ctrl-C into `TrainingInterrupted` (saved checkpoint, resume line, exit 130).

    For the train entry point's `except (KeyboardInterrupt, SystemExit)`. Inside
    `trainer.fit` Lightning catches the KeyboardInterrupt, SaveOnInterrupt saves, and
    Lightning calls sys.exit(1); between fits (LR finder, precompute) the KeyboardInterrupt
    arrives here directly and we save, if a fit has run before. Returns when `stop` is
    not an interrupt we handle.
    """
    saver = next((c for c in callbacks if isinstance(c, SaveOnInterrupt)), None)
    if saver is None or (isinstance(stop, SystemExit) and saver.saved is None):
        return  # not an interrupt we handle: let it go on
    if saver.saved is None and trainer.lightning_module is not None:
        with suppress(Exception):  # nothing resumable to save this early
            saver.save(trainer)
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    raise TrainingInterrupted(interrupted_message(command, overrides, saver.saved)) from None
