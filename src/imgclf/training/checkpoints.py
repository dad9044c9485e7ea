"""Checkpoints: where a run's are found, how they are written (atomically) and read
(safely: tensors and plain Python types only, never pickled code).

Lookup: a run directory's `checkpoints/best.ckpt`, else its `last.ckpt`.

Writing: a kill while saving never leaves a broken checkpoint behind. The checkpoint is
written to a temporary file next to its target, flushed to disk (fsync), then renamed over
the target with `os.replace`, which is atomic on POSIX file systems; the folder is synced
too so the rename itself survives a crash. Readers see either the old file or the new one,
never half of one. A kill mid-write leaves only a `.<name>.tmp-<pid>` file, which nothing
loads and the next save of that process replaces.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from imgclf.errors import UserError, unreadable_file_message

CHECKPOINTS = "checkpoints"
BEST, LAST = "best.ckpt", "last.ckpt"
# Saved when a signal (Ctrl-C, SIGTERM) stops training, after the batch in flight.
INTERRUPTED = "interrupted.ckpt"


def __getattr__(name: str):
    """`AtomicCheckpointIO`, Lightning's torch checkpoint IO writing every local file with
    `atomic_torch_save` (configs/trainer/default.yaml names it here). Defined on first use:
    it subclasses a Lightning class, and reading a checkpoint needs no Lightning."""
    if name != "AtomicCheckpointIO":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
            if storage_options is not None or "://" in str(path):
                return super().save_checkpoint(checkpoint, path, storage_options)
            atomic_torch_save(checkpoint, path)

    AtomicCheckpointIO.__module__, AtomicCheckpointIO.__qualname__ = __name__, name
    globals()[name] = AtomicCheckpointIO  # defined once
    return AtomicCheckpointIO


def find_checkpoint(path: str | Path, prefer: tuple[str, ...] = (BEST, LAST)) -> Path:
    """A checkpoint file as given, or a run directory's first of `prefer` (best, then last)."""
    if not path:
        raise UserError("no checkpoint given: add ckpt=PATH (a .ckpt file or a run directory)")
    path = Path(str(path)).expanduser()
    if path.is_dir():
        for name in prefer:
            if (path / CHECKPOINTS / name).is_file():
                return path / CHECKPOINTS / name
        wanted = " or ".join(f"{CHECKPOINTS}/{name}" for name in prefer)
        raise UserError(f"no {wanted} in {path}")
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    return path


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """`torch.save(obj, path)`, atomically (see the module doc)."""
    import torch

    return atomic_write(path, lambda handle: torch.save(obj, handle))


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """`write(handle)` into a temporary file beside `path`, flushed to disk, then renamed
    over `path` (see the module doc); a full disk is a one-line error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if disk_full(err):
            raise UserError(
                f"no space left on device writing {path} (the previous {path.name}, if any, "
                "is kept); free some space and resume"
            ) from None
        raise
    sync_folder(path.parent)
    return path


def atomic_link(source: str | Path, target: str | Path) -> Path:
    """`target` as a second name of the finished file `source` (a hard link, renamed over
    `target` atomically), or an atomic copy where the file system has no hard links. A
    later save over either name replaces that name only: the other keeps its content."""
    source, target = Path(source), Path(target)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(source, tmp)
    except OSError:  # no hard links here (some network and FUSE file systems)
        with open(source, "rb") as data:
            return atomic_write(target, lambda handle: shutil.copyfileobj(data, handle))
    os.replace(tmp, target)
    sync_folder(target.parent)
    return target


def saves_atomically(trainer) -> bool:
    """Whether `trainer` writes checkpoints with `AtomicCheckpointIO` (a new file renamed
    over the old): only then may two names share one file, since no save rewrites a file
    in place (Lightning's own IO truncates and rewrites it, changing both names)."""
    return isinstance(trainer.strategy.checkpoint_io, __getattr__("AtomicCheckpointIO"))


def link_checkpoint(trainer, source: Path, target: Path) -> bool:
    """`target` as a second name of the checkpoint `source` that `trainer` has just saved
    (rank 0 links, every rank waits); False, and nothing done, where its checkpoint IO
    rewrites files in place: then the caller saves `target` itself."""
    if not saves_atomically(trainer):
        return False
    if trainer.is_global_zero:  # the rank that wrote `source`
        atomic_link(source, target)
    trainer.strategy.barrier("link_checkpoint")
    return True


def sync_folder(folder: Path) -> None:
    """fsync a folder, so a rename in it survives a crash (where the file system allows)."""
    with contextlib.suppress(OSError):  # not every file system lets a folder be fsynced
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def disk_full(err: BaseException) -> bool:
    """A write that failed for lack of space: ENOSPC, or torch's zip writer's way of saying
    it ("unexpected pos" when fewer bytes reached the file than it wrote)."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return True
    return isinstance(err, RuntimeError) and "unexpected pos" in str(err)


def read_checkpoint(path: str | Path) -> dict:
    """A Lightning checkpoint as a dict, loaded with `weights_only=True`.

    A file that needs arbitrary unpickling (possibly code planted by whoever made it) is
    refused with a one-line error ("refused: contains code"); nothing in it runs. A file
    that is no checkpoint at all (random bytes, truncated) says so.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        raise UserError(unreadable_file_message(path, err)) from None


def load_network(path: str | Path):
    """The trained network of a checkpoint (`imgclf.model.network.Network`: body, head,
    task, classes, input size, thresholds), in eval mode, on the CPU, without Lightning:
    what predicting needs. The same one-line errors as `load_classifier`."""
    from imgclf.model.network import network_from_checkpoint

    checkpoint = read_checkpoint(path)
    try:
        return network_from_checkpoint(checkpoint)
    except ValueError:
        raise UserError(f"{path} is not an imgclf ImageClassifier checkpoint") from None
    except RuntimeError as err:
        detail = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), "")
        raise UserError(
            f"{path}: its weights do not fit the model its hyperparameters describe ({detail})"
        ) from None


def load_classifier(path: str | Path):
    """The ImageClassifier stored in a checkpoint, in eval mode, on the CPU.

    The architecture comes from the saved hyperparameters; the pretrained weights are not
    fetched again (the checkpoint holds every tensor).
    """
    from imgclf.model.classifier import ImageClassifier

    checkpoint = read_checkpoint(path)
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    if "num_classes" not in hparams or "state_dict" not in checkpoint:
        raise UserError(f"{path} is not an imgclf ImageClassifier checkpoint")
    hparams["weights"] = "none"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*random initialisation.*")
        try:
            model = ImageClassifier(**hparams)
        except TypeError as err:  # a hyperparameter ImageClassifier does not take
            raise UserError(f"{path} is not an imgclf ImageClassifier checkpoint: {err}") from None
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        detail = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), "")
        raise UserError(
            f"{path}: its weights do not fit the model its hyperparameters describe ({detail})"
        ) from None
    model.on_load_checkpoint(checkpoint)
    # Keep what the user trained with, not the "none" used to build the empty shell.
    model.hparams.weights = checkpoint["hyper_parameters"].get("weights", "auto")
    return model.eval()
