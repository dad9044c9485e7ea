"""A DataLoader whose epoch can restart in the middle, with the same batches in the same order.

Lightning (2.6) restores the batch counter of an interrupted epoch, but a plain DataLoader
starts its epoch from the beginning again: the resumed run would see other samples than the
run that was killed. This loader implements Lightning's `state_dict`/`load_state_dict`
protocol, which Lightning saves in every checkpoint and loads on resume:

- at the start of each epoch (each `iter()`) it snapshots its generator (shuffling, worker
  seeds) and its dataset's random state (augmentation with `num_workers=0`);
- its state is that snapshot, the state now, and the number of batches handed out;
- after `load_state_dict`, the next epoch puts the snapshot back and replays the batches
  already trained on without training on them (they are loaded, so augmentation draws stay in
  step), then hands out the rest. For an epoch that had finished it restores the state at
  the time of the checkpoint and hands out nothing; the next epoch goes on from there.

With `persistent_workers=True` the workers keep their own augmentation streams across epochs,
which no snapshot here reaches: the order of samples is still exact, their augmentation not.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import DataLoader


class ReplayDataLoader(DataLoader):
    """DataLoader + exact mid-epoch resume (see the module doc). No extra arguments."""

    def _rng_snapshot(self) -> dict:
        dataset_state = getattr(self.dataset, "rng_state", None)
        return {
            "generator": self.generator.get_state() if self.generator is not None else None,
            "dataset": dataset_state() if dataset_state else None,
        }

    def _restore(self, snapshot: dict) -> None:
        if snapshot["generator"] is not None and self.generator is not None:
            self.generator.set_state(snapshot["generator"])
        if snapshot["dataset"] is not None:
            self.dataset.set_rng_state(snapshot["dataset"])

    def __iter__(self) -> Iterator:
        pending = self.__dict__.pop("_pending", None)
        skip = 0
        if pending is not None and pending["served"] >= len(self):
            # The epoch had ended: nothing is left to hand out, and creating an iterator
            # would draw from the generator, which the next epoch's draws must find untouched.
            self._restore(pending["now"])
            self._start, self._served = pending["start"], pending["served"]
            return iter(())
        if pending is not None:
            self._restore(pending["start"])
            skip = pending["served"]
        self._start = self._rng_snapshot()
        self._served = 0
        iterator = super().__iter__()
        for _ in range(skip):
            next(iterator)
        self._served = skip
        return self._count(iterator)

    def _count(self, iterator: Iterator) -> Iterator:
        for batch in iterator:
            self._served += 1
            yield batch

    def state_dict(self) -> dict:
        return {
            "start": self.__dict__.get("_start") or self._rng_snapshot(),
            "now": self._rng_snapshot(),
            "served": self.__dict__.get("_served", 0),
        }

    def load_state_dict(self, state: dict) -> None:
        self._pending = state
