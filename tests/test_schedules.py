"""LR schedules: SGDR restarts, one-cycle shape, momentum, and group ratios under LambdaLR."""

import math
from functools import partial

import pytest
import torch

from imgclf.schedules import (
    SCHEDULES,
    build_scheduler,
    constant_factor,
    one_cycle_factor,
    one_cycle_momentum,
    schedule_factor,
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


def test_one_cycle_momentum_mirrors_the_lr():
    total, mom = 101, partial(one_cycle_momentum, total_steps=101, pct_start=0.25)
    assert mom(0) == pytest.approx(0.95)
    assert mom(25) == pytest.approx(0.85)
    assert mom(100) == pytest.approx(0.95)
    assert mom(12.5) == pytest.approx(0.90)
    values = [mom(s) for s in range(total)]
    assert min(values) == pytest.approx(0.85)
    assert all(a > b for a, b in zip(values[:26], values[1:26], strict=False))
    custom = one_cycle_momentum(0, 5, moms=(0.9, 0.8, 0.7))
    assert custom == pytest.approx(0.9)
    assert one_cycle_momentum(4, 5, moms=(0.9, 0.8, 0.7)) == pytest.approx(0.7)


def test_constant_and_schedule_factor_lookup():
    assert constant_factor(0) == constant_factor(12345) == 1.0
    assert SCHEDULES == ("sgdr", "one_cycle", "constant")
    assert schedule_factor("constant")(7) == 1.0
    f = schedule_factor("sgdr", steps_per_epoch=10, cycle_len=1, cycle_mult=2)
    assert f(10) == 1.0 and f(5) == pytest.approx(0.5)
    g = schedule_factor("one_cycle", total_steps=101)
    assert g(0) == pytest.approx(0.04) and g(25) == 1.0
    with pytest.raises(ValueError, match="sgdr, one_cycle, constant"):
        schedule_factor("cosine")


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


def test_scheduler_sets_adam_beta1_from_momentum():
    total = 41
    optimizer = three_group_adamw()
    momentum = partial(one_cycle_momentum, total_steps=total, pct_start=0.25)
    scheduler = build_scheduler(optimizer, partial(one_cycle_factor, total_steps=total), momentum)
    for k in range(total):
        for group in optimizer.param_groups:
            assert group["betas"][0] == pytest.approx(momentum(k))
            assert group["betas"][1] == 0.99
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["betas"][0] == pytest.approx(0.95)
    assert "momentum" not in scheduler.state_dict()
    assert scheduler.state_dict()["last_epoch"] == total


def test_scheduler_sets_sgd_momentum():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1, momentum=0.5)
    build_scheduler(optimizer, constant_factor, lambda step: 0.8)
    assert optimizer.param_groups[0]["momentum"] == 0.8
    assert optimizer.param_groups[0]["lr"] == 0.1
