"""Ctrl-C (SIGINT) and SIGTERM (`kill`, `timeout`, `docker stop`, SLURM pre-emption) during
training: finish the running batch, save a checkpoint to resume from, exit non-zero."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import threading
from contextlib import suppress
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

from imgclf.errors import TrainingInterrupted
from imgclf.processes import Terminated, install_sigterm_handler  # noqa: F401  (re-exported)
from imgclf.training.checkpoints import INTERRUPTED

INTERRUPTED_NAME = INTERRUPTED
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequested(Exception):
    """Raised at the end of a training batch after a stop signal; interrupted.ckpt is saved."""


def exit_status(signum: int) -> int:
    """The shell's status for a program stopped by `signum`: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + int(signum)


class SaveOnInterrupt(L.Callback):
    """A stop signal during `trainer.fit` stops training at the end of the running batch and
    writes `dirpath/interrupted.ckpt` (atomically, like every checkpoint).

    From the start of training the callback holds SIGINT and SIGTERM: the first one only
    asks for a stop, which happens after the batch in flight (under DDP every rank stops at
    the same batch: the request is reduced across ranks), so a resumed run continues
    exactly where this one stopped. A second Ctrl-C stops at once. Lightning's own SIGTERM
    handling would end a fit in the middle of a validation and let the process exit with
    status 0; its handlers come back when the fit ends. A signal during the sanity check, or
    a KeyboardInterrupt, is saved from `on_exception` as before.
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)
        self.saved: Path | None = None
        self.requested: int | None = None
        self.speaks = True  # rank 0 (or a single process) says what happens; others are quiet

    def save(self, trainer: L.Trainer) -> Path:
        path = self.dirpath / INTERRUPTED_NAME
        trainer.save_checkpoint(path, weights_only=False)
        self.saved = path
        return path

    def request_stop(self, signum: int, frame=None) -> None:
        if self.requested == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        if self.requested is None and self.speaks:
            name = signal.Signals(signum).name
            print(f"{name}: stopping after the running batch", file=sys.stderr, flush=True)
        self.requested = self.requested or signum

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.speaks = trainer.is_global_zero
        # Lightning registers its handlers just before; its teardown puts the old ones back.
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                signal.signal(signum, self.request_stop)

    def stop_if_requested(self, trainer: L.Trainer) -> None:
        if trainer.strategy.reduce_boolean_decision(self.requested is not None, all=False):
            self.requested = self.requested or signal.SIGTERM  # another rank got it
            self.save(trainer)
            raise StopRequested

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.stop_if_requested(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stop_if_requested(trainer)  # a signal during the stage's last validation

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, StopRequested) or self.saved is not None:
            return
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            terminated = isinstance(exception, (Terminated, SIGTERMException))
            self.requested = signal.SIGTERM if terminated else signal.SIGINT
            self.save(trainer)


def resume_command(command: str, overrides: list[str], checkpoint: Path) -> str:
    """`imgclf <command> <the same overrides> resume=<checkpoint>`, quoted for a shell."""
    kept = [o for o in overrides if not o.lstrip("+~").startswith("resume=")]
    kept = [o for o in kept if not o.startswith(("hydra.run.dir=", "hydra.output_subdir="))]
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
    """Turn a stop signal into `TrainingInterrupted` (saved checkpoint, resume line, exit
    status 130 for SIGINT, 143 for SIGTERM).

    For the train entry point's `except (KeyboardInterrupt, SystemExit, StopRequested)`.
    Inside `trainer.fit` SaveOnInterrupt has saved already; between fits (LR finder,
    precompute) the KeyboardInterrupt (or Terminated) arrives here directly and we save, if
    a fit has run before. Returns when `stop` is not an interrupt we handle.
    """
    saver = next((c for c in callbacks if isinstance(c, SaveOnInterrupt)), None)
    if saver is None or (isinstance(stop, SystemExit) and saver.saved is None):
        return  # not an interrupt we handle: let it go on
    signum = saver.requested or (signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT)
    if saver.saved is None and trainer.lightning_module is not None:
        with suppress(Exception):  # nothing resumable to save this early
            saver.save(trainer)
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    message = interrupted_message(command, overrides, saver.saved)
    wait_for_launched_ranks(trainer)
    # StopRequested: every rank agreed on the stop and stopped after the same batch.
    together = isinstance(stop, StopRequested)
    raise TrainingInterrupted(message, exit_status(signum), every_rank=together) from None


def wait_for_launched_ranks(trainer: L.Trainer, timeout: float = 120.0) -> None:
    """On the process that started the other DDP ranks (Lightning's launcher), wait until
    they have exited: a scheduler takes the job as ended when this process exits, so none may
    outlive it. They stopped at the same batch; one still running after `timeout` s is killed."""
    for process in getattr(trainer.strategy.launcher, "procs", None) or []:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
