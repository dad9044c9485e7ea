"""The five views, top losses, confusion, most confused, DDP de-duplication and the TTA blend,
on hand-made probability matrices whose right answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from imgclf.evaluation.collect import dedupe_by_index
from imgclf.evaluation.metrics import confusion_matrix, most_confused, per_class_precision_recall
from imgclf.evaluation.tta import tta_blend
from imgclf.evaluation.views import VIEWS, losses, misclassification_views

# 8 images, 3 classes. Row: probabilities; comments: true label, predicted, why it matters.
PROBS = np.array(
    [
        [0.90, 0.05, 0.05],  # 0: true 0, right, very confident
        [0.60, 0.30, 0.10],  # 1: true 0, right, less confident
        [0.10, 0.80, 0.10],  # 2: true 0, WRONG (1), confident wrong
        [0.05, 0.94, 0.01],  # 3: true 1, right, most confident of class 1
        [0.34, 0.33, 0.33],  # 4: true 1, WRONG (0), the most uncertain image
        [0.20, 0.10, 0.70],  # 5: true 2, right
        [0.02, 0.97, 0.01],  # 6: true 2, WRONG (1), most confident wrong, top loss
        [0.35, 0.30, 0.35],  # 7: true 2, predicted 0 (argmax picks the first 0.35): wrong
    ]
)
LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 2])


def test_views_pick_the_right_images():
    views = misclassification_views(PROBS, LABELS, k=3, per_class=1, seed=0)
    assert list(views) == list(VIEWS)
    correct, incorrect = {0, 1, 3, 5}, {2, 4, 6, 7}
    assert set(views["random_correct"]) <= correct and len(views["random_correct"]) == 3
    assert set(views["random_incorrect"]) <= incorrect and len(views["random_incorrect"]) == 3
    # Best correct of each class (0: image 0, 1: image 3, 2: image 5), most confident first.
    assert views["confident_correct"].tolist() == [3, 0, 5]
    # Most confident wrong of each true class: class 0 -> 2 (0.80), 1 -> 4, 2 -> 6 (0.97).
    assert views["confident_incorrect"].tolist() == [6, 2, 4]
    # Top probability nearest 1/3: image 4 (0.34), then 7 (0.35), then 1 (0.60)... no: 5 (0.70)?
    top = PROBS.max(axis=1)
    expected_uncertain = np.argsort(np.abs(top - 1 / 3), kind="stable")[:3]
    assert views["uncertain"].tolist() == expected_uncertain.tolist() == [4, 7, 1]
    # Lowest p(true): image 6 (0.01), 2 (0.10), 4 (0.33).
    assert views["top_losses"].tolist() == [6, 2, 4]


def test_views_respect_k_and_per_class_and_are_seeded():
    views = misclassification_views(PROBS, LABELS, k=2, seed=1)  # per_class = ceil(2/3) = 1
    assert all(len(v) <= 2 for v in views.values())
    assert views["confident_correct"].tolist() == [3, 0]
    again = misclassification_views(PROBS, LABELS, k=2, seed=1)
    assert all(np.array_equal(views[n], again[n]) for n in views)
    # Two per class when asked: class 0 gives images 0 and 1, class 2 only has image 5.
    two = misclassification_views(PROBS, LABELS, k=8, per_class=2)
    assert sorted(two["confident_correct"].tolist()) == [0, 1, 3, 5]


def test_views_on_a_model_that_is_always_right():
    probs = np.eye(3)[[0, 1, 2, 0]] * 0.9 + 0.1 / 3
    views = misclassification_views(probs, np.array([0, 1, 2, 0]), k=4)
    assert len(views["random_incorrect"]) == 0 and len(views["confident_incorrect"]) == 0
    assert len(views["random_correct"]) == 4


def test_views_scale_to_many_images_and_classes():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(1000, 0.05), size=20_000).astype(np.float32)
    # About half right: the label is the model's answer or a random class.
    labels = np.where(rng.random(20_000) < 0.5, probs.argmax(axis=1), rng.integers(0, 1000, 20_000))
    views = misclassification_views(probs, labels, k=16)
    assert all(len(v) == 16 for v in views.values())
    top_loss = losses(probs, labels)
    assert top_loss[views["top_losses"]].min() >= np.sort(top_loss)[-16]


def test_losses_are_cross_entropy():
    np.testing.assert_allclose(losses(PROBS, LABELS)[:2], -np.log([0.90, 0.60]))


def test_confusion_most_confused_precision_recall():
    preds = PROBS.argmax(axis=1)
    matrix = confusion_matrix(LABELS, preds, 3)
    assert matrix.tolist() == [[2, 1, 0], [1, 1, 0], [1, 1, 1]]
    assert matrix.sum() == len(LABELS)
    classes = ["a", "b", "c"]
    assert most_confused(matrix, classes) == [
        ("a", "b", 1),
        ("b", "a", 1),
        ("c", "a", 1),
        ("c", "b", 1),
    ]
    assert most_confused(matrix, classes, min_count=2) == []
    stats = per_class_precision_recall(matrix, classes)
    assert stats["a"] == pytest.approx({"precision": 2 / 4, "recall": 2 / 3, "images": 3})
    assert stats["c"] == pytest.approx({"precision": 1.0, "recall": 1 / 3, "images": 3})


def test_dedupe_drops_distributed_sampler_padding():
    # 5 images on 2 ranks: rank 0 gets 0, 2, 4; rank 1 gets 1, 3 and a padded copy of 0.
    indices = np.array([0, 2, 4, 1, 3, 0])
    probs = np.arange(12, dtype=np.float32).reshape(6, 2)
    labels = np.array([0, 0, 1, 1, 0, 0])
    result = dedupe_by_index(indices, labels, probs)
    assert result.indices.tolist() == [0, 1, 2, 3, 4]
    assert result.probs[:, 0].tolist() == [0, 6, 2, 8, 4]
    assert result.labels.tolist() == [0, 1, 0, 0, 1]


def test_tta_blend_is_fastais_lerp():
    plain = np.array([[1.0, 0.0]])
    augmented = np.array([[0.0, 1.0]])
    np.testing.assert_allclose(tta_blend(plain, augmented, 0.25), [[0.25, 0.75]])
    np.testing.assert_allclose(tta_blend(plain, augmented, 0.0), augmented)


@pytest.mark.parametrize(
    ("stage", "epoch", "expected"),
    [(1, 4, False), (2, 3, False), (2, 4, True), (None, 4, True), (None, 3, False)],
)
def test_the_views_are_drawn_at_the_end_of_the_last_stage_only(stage, epoch, expected):
    """A recipe of two stages, the running fit ending after 5 epochs (epoch index 4): only
    the last stage's last epoch ends the run; a fit outside a recipe ends at its last epoch."""
    from types import SimpleNamespace

    from imgclf.callbacks.views import run_ends_with
    from imgclf.training.progress import RecipeProgress

    callbacks = []
    if stage is not None:
        progress = RecipeProgress()
        progress.start_stage(stage, 2, [1e-3], {"name": f"stage{stage}"}, [])
        callbacks.append(progress)
    trainer = SimpleNamespace(max_epochs=5, callbacks=callbacks)
    assert run_ends_with(trainer, epoch) is expected


def test_a_titled_grid_shows_each_image_in_its_cell_under_its_title(tmp_path):
    from PIL import Image

    from imgclf.evaluation.pictures import GRID_PPI, titled_grid
    from imgclf.reporting import save_figure

    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255  # a tiny image, enlarged with visible pixels
    blue = Image.new("RGB", (400, 200), (0, 0, 255))  # a large one, shrunk to fit
    figure = titled_grid([red, blue, red], ["a", "b", "c"], columns=2, cell=1.0, title_room=0.5)
    assert (figure.get_figwidth(), figure.get_figheight()) == (2.0, 2 * 1.5 + 0.1)
    png = np.asarray(Image.open(save_figure(figure, tmp_path / "grid.png", dpi=GRID_PPI)))
    assert png.shape[:2] == (round(3.1 * GRID_PPI), 2 * GRID_PPI)

    def centre(line: int, column: int) -> tuple:
        y = round((0.5 + line * 1.5 + 0.5) * GRID_PPI)
        return tuple(png[y, round((column + 0.5) * GRID_PPI), :3])

    assert centre(0, 0) == (255, 0, 0) and centre(1, 0) == (255, 0, 0)
    assert centre(0, 1) == (0, 0, 255)
    assert centre(1, 1) == (255, 255, 255)  # no fourth image
    # The titles are drawn in the room above each image, not on it.
    title_band = png[round(0.1 * GRID_PPI) : round(0.45 * GRID_PPI), :GRID_PPI, :3]
    assert (title_band < 128).any()
