"""LR schedules: SGDR restarts, one-cycle shape, the Schedule spec, and group ratios under LambdaLR."""

import math
from functools import partial

import pytest
import torch

from imgclf.model.schedules import (
    SCHEDULES,
    Schedule,
    build_scheduler,
    constant_factor,
    one_cycle_factor,
    sgdr_epochs,
    sgdr_factor,
)

SGDR = partial(sgdr_factor, steps_per_epoch=10, cycle_len=1, cycle_mult=2)


def test_sgdr_epochs_sums_the_growing_cycles():
    assert sgdr_epochs(3, 1, 2) == 7
    assert sgdr_epochs(1, 2.5, 3) == 2.5
    assert sgdr_epochs(4, 1, 1) == 4
    assert sgdr_epochs(2, 0.5, 2) == pytest.approx(1.5)
    with pytest.raises(ValueError):
        sgdr_epochs(0, 1, 2)


def test_sgdr_restarts_at_cycle_boundaries():
    # Cycles of 10, 20 and 40 steps: restarts at steps 10 and 30, 70 steps in all.
    values = [SGDR(step) for step in range(70)]
    assert values[0] == 1.0
    for restart in (10, 30):
        assert values[restart] == 1.0
        assert values[restart - 1] < 0.03
        assert values[restart - 1] < values[restart - 2]
    assert values[69] < 0.03
    # Exactly three restarts (step 0 included), nowhere else does the factor go up.
    ups = [s for s in range(1, 70) if values[s] > values[s - 1]]
    assert ups == [10, 30]
    # Mid-cycle the cosine is at one half.
    assert values[5] == pytest.approx(0.5, abs=1e-12)
    assert values[20] == pytest.approx(0.5, abs=1e-12)
    assert values[50] == pytest.approx(0.5, abs=1e-12)
    assert all(0.0 <= v <= 1.0 for v in values)


def test_sgdr_last_step_of_a_cycle_is_one_cosine_step_from_zero():
    span = 20
    last = sgdr_factor(29, steps_per_epoch=10, cycle_len=1, cycle_mult=2)
    assert last == pytest.approx(0.5 * (1 + math.cos(math.pi * (span - 1) / span)))


def test_sgdr_with_constant_cycles_and_fractional_cycle_len():
    f = partial(sgdr_factor, steps_per_epoch=8, cycle_len=0.5, cycle_mult=1)
    assert [f(s) for s in (0, 4, 8, 1000)] == [1.0, 1.0, 1.0, 1.0]
    assert f(2) == pytest.approx(0.5)
    assert f(1002) == pytest.approx(0.5)


def test_one_cycle_endpoints_and_shape():
    total, f = 101, partial(one_cycle_factor, total_steps=101, pct_start=0.25)
    values = [f(s) for s in range(total)]
    assert values[0] == pytest.approx(1 / 25)
    assert values[25] == 1.0  # end of warm-up
    assert values[-1] == pytest.approx(1e-5)  # fastai: lr_max / div_final
    assert max(values) == 1.0
    warm, anneal = values[:26], values[25:]
    assert all(a < b for a, b in zip(warm, warm[1:], strict=False))
    assert all(a > b for a, b in zip(anneal, anneal[1:], strict=False))
    # Cosine: half-way through each phase, half-way between its end values.
    assert f(12.5) == pytest.approx((1 / 25 + 1) / 2)
    assert f(62.5) == pytest.approx((1 + 1e-5) / 2)
    assert one_cycle_factor(1000, total) == pytest.approx(1e-5)  # stepped past the end


def test_one_cycle_custom_div_and_no_warmup():
    assert one_cycle_factor(0, 11, pct_start=0.0, div=10, final_div=100) == 1.0
    assert one_cycle_factor(10, 11, pct_start=0.0, div=10, final_div=100) == pytest.approx(0.01)
    assert one_cycle_factor(0, 11, div=10) == pytest.approx(0.1)


def test_constant_and_the_schedule_spec_factors():
    assert constant_factor(0) == constant_factor(12345) == 1.0
    assert SCHEDULES == ("sgdr", "one_cycle", "constant")
    assert Schedule("constant", 1).factor(10)(7) == 1.0
    f = Schedule("sgdr", 3, cycle_len=1, cycle_mult=2).factor(steps_per_epoch=10)
    assert f(10) == 1.0 and f(5) == pytest.approx(0.5)
    # one_cycle spans the stage's epochs: 101 steps in all here.
    g = Schedule("one_cycle", epochs=1).factor(steps_per_epoch=101)
    assert g(0) == pytest.approx(0.04) and g(25) == 1.0
    two_epochs = Schedule("one_cycle", epochs=2, pct_start=0.5).factor(steps_per_epoch=50)
    assert two_epochs(0) == pytest.approx(0.04) and two_epochs(50) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ValueError, match="sgdr, one_cycle, constant"):
        Schedule("cosine", 1).factor(10)


def three_group_adamw(lrs=(1e-4, 1e-3, 1e-2)) -> torch.optim.AdamW:
    groups = [{"params": [torch.nn.Parameter(torch.ones(2))], "lr": lr} for lr in lrs]
    return torch.optim.AdamW(groups, betas=(0.9, 0.99))


@pytest.mark.parametrize(
    "factor",
    [SGDR, partial(one_cycle_factor, total_steps=60)],
    ids=["sgdr", "one_cycle"],
)
def test_scheduler_keeps_group_ratios(factor):
    optimizer = three_group_adamw()
    scheduler = build_scheduler(optimizer, factor)
    seen = set()
    for k in range(60):
        low, mid, top = (group["lr"] for group in optimizer.param_groups)
        assert top == 1e-2 * factor(k)
        assert mid / low == pytest.approx(10, rel=1e-12)
        assert top / low == pytest.approx(100, rel=1e-12)
        seen.add(round(top, 12))
        for group in optimizer.param_groups:
            group["params"][0].grad = torch.ones(2)
        optimizer.step()
        scheduler.step()
    assert len(seen) > 30  # the LR really moved
    assert all(g["betas"] == (0.9, 0.99) for g in optimizer.param_groups)
