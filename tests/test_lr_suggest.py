"""LR range-test math: LR grid, smoothing, stopping, suggestion rules and the plot."""

import math

import numpy as np
import pytest
from PIL import Image

from imgclf.reporting import save_figure
from imgclf.training.lr_finder import lr_find_figure
from imgclf.training.lr_suggest import (
    SUGGESTIONS,
    exponential_lrs,
    should_stop,
    smooth_losses,
    suggest_lr,
)


def test_exponential_lrs_endpoints_and_constant_ratio():
    lrs = exponential_lrs(1e-7, 10.0, 100)
    assert len(lrs) == 100
    assert lrs[0] == 1e-7 and lrs[-1] == 10.0
    ratios = [b / a for a, b in zip(lrs, lrs[1:], strict=False)]
    assert ratios == pytest.approx([1e8 ** (1 / 99)] * 99, rel=1e-9)
    assert exponential_lrs(1e-3, 1e-1, 3) == pytest.approx([1e-3, 1e-2, 1e-1])
    with pytest.raises(ValueError):
        exponential_lrs(1.0, 0.1)


def test_smoothing_is_bias_corrected():
    assert smooth_losses([2.5] * 50) == pytest.approx([2.5] * 50, rel=1e-12)
    beta = 0.9
    smoothed = smooth_losses([1.0] * 3 + [4.0] * 3, beta)
    assert smoothed[:3] == pytest.approx([1.0] * 3)
    avg = 0.0
    for i, loss in enumerate([1.0] * 3 + [4.0] * 3):
        avg = beta * avg + (1 - beta) * loss
        assert smoothed[i] == pytest.approx(avg / (1 - beta ** (i + 1)))
    # After the jump it moves towards 4 gradually, never overshooting.
    assert 1.0 < smoothed[3] < smoothed[4] < smoothed[5] < 4.0
    assert smoothed[3] == pytest.approx((0.9 * 0.1 * (1 + 0.9 + 0.81) + 0.4) / (1 - 0.9**4))
    assert smooth_losses([]) == []


def test_should_stop():
    assert not should_stop(3.9, 1.0)
    assert not should_stop(4.0, 1.0)
    assert should_stop(4.01, 1.0)
    assert should_stop(2.1, 1.0, factor=2.0)
    assert should_stop(math.nan, 1.0)
    assert should_stop(math.inf, 1.0)


# Range test over 81 LRs, 0.1 decade apart: 1e-7 ... 10. The loss is flat at 2.0 up to 1e-5
# (index 20), falls as a half cosine in log10(lr) to 0.5 at 1e-1 (index 60), steepest at its
# middle 1e-3 (index 40), then explodes.
LRS = exponential_lrs(1e-7, 10.0, 81)
FLAT, STEEPEST, MINIMUM = 20, 40, 60


def synthetic_losses() -> list[float]:
    losses = []
    for i in range(len(LRS)):
        if i <= FLAT:
            losses.append(2.0)
        elif i <= MINIMUM:
            pct = (i - FLAT) / (MINIMUM - FLAT)
            losses.append(2.0 - 1.5 * (1 - math.cos(math.pi * pct)) / 2)
        else:
            losses.append(0.5 * 2.0 ** (i - MINIMUM))
    losses[-1] = math.inf  # the blow-up that stopped the run
    return losses


def test_synthetic_curve_is_what_the_tests_assume():
    losses = synthetic_losses()
    assert LRS[FLAT] == pytest.approx(1e-5) and LRS[STEEPEST] == pytest.approx(1e-3)
    assert LRS[MINIMUM] == pytest.approx(1e-1)
    assert int(np.argmin(losses)) == MINIMUM


def test_valley_lies_inside_the_descent():
    valley = suggest_lr(LRS, synthetic_losses(), "valley")
    assert LRS[FLAT] < valley < LRS[MINIMUM]
    # Longest decreasing run: 41 points ending at 60, so start = 60 - 41 = 19 (fastai counts
    # the stretch back from its end); 19 + int(41 / 3) + int(41 / 6) = 38.
    assert valley == LRS[38]
    assert suggest_lr(LRS, synthetic_losses()) == valley  # the default


def test_steep_finds_the_steepest_slope():
    assert suggest_lr(LRS, synthetic_losses(), "steep") == LRS[STEEPEST]


def test_minimum_is_the_lowest_loss_lr_over_ten():
    assert suggest_lr(LRS, synthetic_losses(), "minimum") == LRS[MINIMUM] / 10


def test_suggestions_ignore_a_noisy_start_and_the_tail_after_the_minimum():
    losses = synthetic_losses()
    losses[2] = 0.1  # a lucky early batch in the skipped first 10%
    losses[65] = 0.6  # a dip on the way up: the steepest drop of the whole curve
    losses[75] = -math.inf
    assert suggest_lr(LRS, losses, "minimum") == LRS[MINIMUM] / 10
    assert suggest_lr(LRS, losses, "valley") == LRS[38]
    assert suggest_lr(LRS, losses, "steep") == LRS[STEEPEST]


def test_suggestion_errors():
    with pytest.raises(ValueError, match="valley, steep, minimum"):
        suggest_lr(LRS, synthetic_losses(), "fastest")
    with pytest.raises(ValueError):
        suggest_lr(LRS, synthetic_losses()[:-1])
    with pytest.raises(ValueError):
        suggest_lr([1e-3, 1e-2], [math.nan, math.inf])
    assert SUGGESTIONS == ("valley", "steep", "minimum")
    assert suggest_lr([1e-3], [1.0], "steep") == 1e-3


def test_plot_lr_find_writes_a_png(tmp_path):
    losses = synthetic_losses()
    suggestion = suggest_lr(LRS, losses)
    figure = lr_find_figure(LRS, losses, suggestion, "valley")
    path = save_figure(figure, tmp_path / "plots" / "lr_find.png", dpi=100)
    assert path == tmp_path / "plots" / "lr_find.png"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert 1_000 < len(data) < 100_000
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (600, 400)
