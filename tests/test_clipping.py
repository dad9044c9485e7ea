"""Prediction clipping for log-loss: the course's two-class clip and the k-class version."""

import math

import pytest
import torch

from imgclf.evaluation.clipping import best_eps, clip_probs, log_loss


def test_two_classes_clip_to_the_interval():
    probs = torch.tensor([[0.999, 0.001], [0.5, 0.5], [0.01, 0.99]])
    clipped = clip_probs(probs, 0.05)
    assert torch.allclose(clipped, torch.tensor([[0.95, 0.05], [0.5, 0.5], [0.05, 0.95]]))


def test_more_classes_clip_then_renormalise():
    probs = torch.tensor([[0.98, 0.01, 0.01, 0.0]])
    clipped = clip_probs(probs, 0.02)
    raised = torch.tensor([0.98, 0.02, 0.02, 0.02])
    assert torch.allclose(clipped[0], raised / raised.sum())
    assert clipped.sum().item() == pytest.approx(1.0)
    assert clipped.min().item() >= 0.02 / raised.sum().item() - 1e-7


def test_clipping_bounds_the_cost_of_a_confident_mistake():
    probs = torch.tensor([[0.9999, 0.0001], [0.9, 0.1]])
    labels = torch.tensor([1, 0])
    raw = log_loss(probs, labels)
    assert raw == pytest.approx((-math.log(1e-4) - math.log(0.9)) / 2, rel=1e-5)
    assert log_loss(clip_probs(probs, 0.05), labels) < raw / 2


def test_auto_eps_minimises_log_loss_on_the_grid():
    torch.manual_seed(0)
    labels = torch.randint(0, 2, (200,))
    confident = torch.where(torch.rand(200) < 0.9, labels, 1 - labels)  # 10% confidently wrong
    probs = torch.nn.functional.one_hot(confident, 2).float().clamp(1e-6, 1 - 1e-6)
    grid = (0.0, 0.01, 0.05, 0.1, 0.2)
    eps = best_eps(probs, labels, grid)
    losses = {e: log_loss(clip_probs(probs, e), labels) for e in grid}
    assert losses[eps] == min(losses.values())
    # Analytic optimum for 10% errors is eps = 0.1.
    assert eps == 0.1


def test_impossible_eps_is_rejected():
    with pytest.raises(ValueError, match="below 0.5"):
        clip_probs(torch.tensor([[0.5, 0.5]]), 0.5)
    with pytest.raises(ValueError, match="must stay below 1"):
        clip_probs(torch.full((1, 10), 0.1), 0.1)
