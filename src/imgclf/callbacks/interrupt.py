"""Ctrl-C during training: save a checkpoint to resume from before Lightning shuts down."""

from __future__ import annotations

import shlex
from pathlib import Path

import lightning as L

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
