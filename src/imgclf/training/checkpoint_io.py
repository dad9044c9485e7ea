"""AtomicCheckpointIO: Lightning's checkpoint IO writing every local file atomically
(`imgclf.training.checkpoints.atomic_torch_save`)."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from imgclf.training.checkpoints import atomic_torch_save


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO, writing every local file with `atomic_torch_save`."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_torch_save(checkpoint, path)
