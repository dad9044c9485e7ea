"""ReplayDataLoader: an epoch resumed from a saved state hands out what the uninterrupted
loader would have, augmentation draws included."""

import torch
from torch.utils.data import Dataset

from imgclf.data.replay_loader import ReplayDataLoader


class NoisyRange(Dataset):
    """Item i is i plus noise from the dataset's own generator (a stand-in for augmentation)."""

    def __init__(self, n: int = 10) -> None:
        self.n = n
        self.generator = torch.Generator().manual_seed(1)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> torch.Tensor:
        return index + torch.rand((), generator=self.generator)

    def rng_state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_rng_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)


def make_loader() -> ReplayDataLoader:
    return ReplayDataLoader(
        NoisyRange(), batch_size=3, shuffle=True, generator=torch.Generator().manual_seed(5)
    )


def epochs(loader, n: int) -> list[list[torch.Tensor]]:
    return [list(loader) for _ in range(n)]


def assert_same(got: list[torch.Tensor], expected: list[torch.Tensor]) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_state_saved_mid_epoch_replays_the_rest_of_that_epoch_and_the_next():
    expected = epochs(make_loader(), 3)  # 4 batches an epoch
    first = make_loader()
    list(first)
    iterator = iter(first)
    done = [next(iterator), next(iterator)]
    state = first.state_dict()
    assert state["served"] == 2

    resumed = make_loader()
    resumed.load_state_dict(state)
    assert_same(done + list(resumed), expected[1])
    assert_same(list(resumed), expected[2])


def test_state_saved_at_an_epoch_end_hands_out_nothing_then_the_next_epoch():
    expected = epochs(make_loader(), 3)
    first = make_loader()
    epochs(first, 2)
    state = first.state_dict()
    assert state["served"] == 4

    resumed = make_loader()
    resumed.load_state_dict(state)
    assert list(resumed) == []  # the finished epoch: nothing left
    assert_same(list(resumed), expected[2])


def test_without_a_state_it_is_a_plain_seeded_loader():
    assert_same(list(make_loader()), list(make_loader()))
    loader = make_loader()
    assert len(loader) == 4 and sorted(torch.cat(list(loader)).floor().tolist()) == list(range(10))
