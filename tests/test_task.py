"""The task seam: single-label and multi-label losses, activations, decoding, clipping,
thresholds and F-beta, as pure functions on small tensors with hand-worked numbers."""

import math

import numpy as np
import pytest
import torch

from imgclf.errors import UserError
from imgclf.evaluation.clipping import best_eps, clip_probs, log_loss
from imgclf.task import MultiLabel, SingleLabel, best_threshold, choose_task, samples_fbeta


def test_single_label_is_softmax_cross_entropy_and_argmax():
    task = SingleLabel()
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0])
    probs = task.activation(logits)
    assert torch.allclose(probs.sum(dim=1), torch.ones(2))
    expected = [math.log(1 + math.exp(-2.0)), math.log(1 + math.exp(1.0))]
    assert task.sample_losses(logits, labels).tolist() == pytest.approx(expected, abs=1e-6)
    assert task.decode(probs.numpy()).tolist() == [0, 1]
    assert task.correct(probs.numpy(), labels.numpy()).tolist() == [True, False]
    assert task.monitor == "valid/acc"


def test_multi_label_is_sigmoid_bce_and_thresholds():
    task = MultiLabel()
    logits = torch.tensor([[2.0, -2.0, 0.0]])
    labels = torch.tensor([[1.0, 0.0, 1.0]])
    probs = task.activation(logits)
    assert probs.tolist()[0] == pytest.approx([0.8808, 0.1192, 0.5], abs=1e-4)
    # BCE per tag: -log(0.8808), -log(0.8808), -log(0.5); their mean.
    expected = (2 * math.log(1 + math.exp(-2.0)) + math.log(2)) / 3
    assert float(task.sample_losses(logits, labels)) == pytest.approx(expected, abs=1e-6)
    assert float(task.training_loss(logits, labels)) == pytest.approx(expected, abs=1e-6)
    assert task.decode(probs.numpy()).tolist() == [[True, False, True]]  # 0.5 >= 0.5
    assert task.decode(probs.numpy(), [0.9, 0.1, 0.6]).tolist() == [[False, True, False]]
    assert task.correct(probs.numpy(), labels.numpy()).tolist() == [True]
    assert task.monitor == "valid/fbeta"


def test_multi_label_encodes_tags_unlabelled_and_single_classes():
    task = MultiLabel()
    assert task.encode((0, 2), 4).tolist() == [1, 0, 1, 0]
    assert task.encode(-1, 3).tolist() == [-1, -1, -1]
    assert task.encode(1, 3).tolist() == [0, 1, 0]
    assert task.labelled(np.array([[1, 0], [-1, -1]])).tolist() == [True, False]
    assert task.encode_all([(0,), (1, 2)], 3).tolist() == [[1, 0, 0], [0, 1, 1]]


def test_samples_fbeta_by_hand():
    predicted = np.array([[1, 1, 0], [0, 0, 0], [1, 0, 0], [0, 0, 0]], bool)
    actual = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0], [1, 0, 0]], bool)
    # Row 0: tp 1, fp 1, fn 1 -> 5*1 / (5 + 4 + 1) = 0.5. Row 1: nothing either way -> 1.
    # Row 2: no tp -> 0. Row 3: missed the only tag -> 0.
    assert samples_fbeta(predicted, actual, beta=2).tolist() == [0.5, 1.0, 0.0, 0.0]
    assert samples_fbeta(predicted[:1], actual[:1], beta=1).tolist() == [0.5]


def test_best_threshold_finds_the_gap_and_per_class_refines_it():
    probs = np.array([[0.9, 0.3], [0.35, 0.8], [0.2, 0.25]])
    actual = np.array([[1, 1], [1, 1], [0, 0]], bool)
    # Every true tag has p >= 0.3 and no false one above 0.25: 0.3 gets all right.
    assert best_threshold(probs, actual) == [0.3, 0.3]
    probs = np.array([[0.9, 0.6], [0.7, 0.4], [0.1, 0.55]])
    actual = np.array([[1, 1], [1, 0], [0, 0]], bool)
    per_class = best_threshold(probs, actual, per_class=True)
    assert per_class[1] == pytest.approx(0.6)  # tag 1 needs p >= 0.6: 0.55 is a false one
    decoded = MultiLabel().decode(probs, per_class)
    assert (decoded == actual).all()


def test_clipping_follows_the_task():
    probs = torch.tensor([[0.999, 0.001, 0.0]], dtype=torch.float64)
    single = clip_probs(probs, 0.01)
    assert float(single.sum()) == pytest.approx(1.0)  # renormalised
    multi = clip_probs(probs, 0.01, MultiLabel())
    assert multi.tolist() == [[0.99, 0.01, 0.01]]  # each tag on its own, no renormalising
    labels = torch.tensor([[0, 1, 0]])  # confidently wrong on the first two tags
    raw = log_loss(probs, labels, MultiLabel())
    assert raw == pytest.approx(2 * -math.log(0.001) / 3, rel=1e-6)
    assert log_loss(multi, labels, MultiLabel()) == pytest.approx(
        (2 * -math.log(0.01) - math.log(0.99)) / 3, rel=1e-6
    )
    assert best_eps(probs, labels, task=MultiLabel()) == 0.15  # the grid's largest


def test_choose_task():
    assert choose_task("auto", False) == "single"
    assert choose_task("auto", True) == "multi"
    assert choose_task("multi", False) == "multi"
    with pytest.raises(UserError, match="task=single, but some images have several labels"):
        choose_task("single", True)
    with pytest.raises(UserError, match="choose one of auto, single, multi"):
        choose_task("both", False)
