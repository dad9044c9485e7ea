"""What Lightning's own checkpoints leave out for an exact resume: RNG states, data position."""

from __future__ import annotations

import lightning as L

from imgclf.data.rng_state import global_rng_state, set_global_rng_state


class ResumeState(L.Callback):
    """Saves the global torch/CUDA/numpy/Python RNG states with each checkpoint and, on resume,
    puts them back and makes the training loader continue where the checkpoint was taken.

    RNG: Lightning loads callback states before `on_fit_start`, and nothing between that hook
    and the first training batch draws from the global generators (our loaders have their
    own), so restoring there gives dropout the draws of the run that was interrupted.

    Data: Lightning 2.6 hands a checkpoint's loader states (see ReplayDataLoader) to the
    loaders only when it sets the train loader up after restoring the loops. When
    `configure_optimizers` asks for `trainer.estimated_stepping_batches` (our schedules do),
    the loader is set up before that, and the saved states are never applied: the epoch would
    start over. So at `on_train_start` (loops restored, no batch fetched yet) we apply them and
    restart the loader's iterator.
    """

    def __init__(self) -> None:
        self._pending_rng: dict | None = None

    def state_dict(self) -> dict:
        return {"rng": global_rng_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        self._pending_rng = state_dict.get("rng")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending_rng is not None:
            set_global_rng_state(self._pending_rng)
            self._pending_rng = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        fit_loop = trainer.fit_loop
        if fit_loop.restarting and fit_loop._combined_loader_states_to_load:
            fit_loop._load_combined_loader_states()
            iter(fit_loop._data_fetcher)  # a fresh iterator picks the loaded state up
