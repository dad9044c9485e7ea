"""ImageFileDataset: (path, label) items decoded and augmented, with broken files replaced."""

from __future__ import annotations

import zlib
from pathlib import Path

import torch
from torch.utils.data import Dataset

from imgclf.data.images import DEFAULT_MAX_PIXELS
from imgclf.data.preprocess import decode
from imgclf.data.rng_state import set_transform_rng_state, transform_rng_state
from imgclf.data.transforms import min_decode_side
from imgclf.errors import UserError

# A class index, or (multi-label) the tuple of its class indices.
Item = tuple[Path, int | tuple[int, ...]]
# The label of an image without one (a test folder).
UNLABELLED = -1


class ImageFileDataset(Dataset):
    """(path, label) items decoded (`preprocess.decode`, the one path from a file to the
    model's input) and transformed with albumentations.

    JPEGs decode at a reduced scale when the transform's smallest useful input side
    allows it (`min_decode_side`): the same pixels reach the crop, for less decoding work.

    A file that passed the setup scan but fails to decode now (truncated data, changed or
    deleted since) does not end the epoch: another item of the dataset takes its place
    and `failures[index]` counts it. `failures` lives in shared memory, created in the
    main process, so counts made inside DataLoader worker processes reach the main one.
    Within an epoch each index goes to one worker, so the increments never race.
    """

    # How many other items to try before giving up on a batch slot.
    MAX_REPLACEMENTS = 16

    def __init__(
        self,
        items: list[Item],
        transform,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        failures: torch.Tensor | None = None,
        item_seed: int | None = None,
        encode=None,
    ) -> None:
        self.items = items
        # label -> what the batch carries (multi-label: a multi-hot row); None: as it is.
        self.encode = encode
        self.transform = transform
        self.max_pixels = max_pixels
        # With a seed, item i's augmentation is drawn from seed + i: the same whichever
        # worker or DDP rank loads it (test-time augmentation must not depend on sharding).
        self.item_seed = item_seed
        if failures is None:
            failures = torch.zeros(len(items), dtype=torch.int32).share_memory_()
        self.failures = failures
        self.min_side = min_decode_side(transform)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        for attempt in range(self.MAX_REPLACEMENTS + 1):
            # The replacement is a seeded pseudo-random other item, so a run of broken
            # neighbouring files does not all fall back onto the same image.
            candidate = index if attempt == 0 else replacement_index(index, attempt, len(self))
            path, label = self.items[candidate]
            try:
                pixels = decode(path, self.min_side, self.max_pixels)
            except Exception:  # PIL and the OS raise many types for broken files
                self.failures[candidate] += 1
                continue
            if self.item_seed is not None:
                self.transform.set_random_seed(self.item_seed + index)
            label = label if self.encode is None else self.encode(label)
            return self.transform(image=pixels)["image"], label
        raise UserError(
            f"{self.MAX_REPLACEMENTS + 1} images in a row failed to decode (last: {path}); "
            "are the files still there?"
        )

    # The augmentation's random state, for an exact mid-epoch resume (ReplayDataLoader).
    def rng_state(self) -> list:
        return transform_rng_state(self.transform)

    def set_rng_state(self, state: list) -> None:
        set_transform_rng_state(self.transform, state)


def replacement_index(index: int, attempt: int, length: int) -> int:
    """A deterministic other index for a failed one (crc32 hash: the same in every process)."""
    if length < 2:
        return index
    step = 1 + zlib.crc32(f"{index}:{attempt}".encode()) % (length - 1)
    return (index + step) % length
