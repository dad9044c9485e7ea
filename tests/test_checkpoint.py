"""Checkpoints load with weights_only=True: our own round-trip, and a planted payload refused."""

from __future__ import annotations

import pickle

import pytest
import torch

from imgclf.errors import UserError
from imgclf.model import ImageClassifier
from imgclf.training.checkpoints import load_classifier, load_network, read_checkpoint


def save_checkpoint(model: ImageClassifier, path) -> None:
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    model.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)


def test_round_trip_keeps_weights_classes_and_image_size(tmp_path):
    torch.manual_seed(0)
    model = ImageClassifier(num_classes=3, class_names=["a", "b", "c"]).eval()
    model.image_size = 96
    save_checkpoint(model, tmp_path / "model.ckpt")

    loaded = load_classifier(tmp_path / "model.ckpt")
    assert loaded.image_size == 96
    assert loaded.hparams.class_names == ["a", "b", "c"]
    assert loaded.hparams.weights == "auto"
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), model(images))


def test_the_network_alone_gives_the_classifiers_logits_without_lightning(tmp_path):
    """`load_network` (what `imgclf predict` on the CPU uses) builds body and head from the
    checkpoint's hyperparameters: same logits, classes, size, thresholds, task."""
    torch.manual_seed(0)
    model = ImageClassifier(num_classes=3, class_names=["a", "b", "c"], task="multi").eval()
    model.image_size, model.thresholds = 96, [0.2, 0.5, 0.7]
    save_checkpoint(model, tmp_path / "model.ckpt")

    network = load_network(tmp_path / "model.ckpt")
    assert not network.training and network.image_size == 96
    assert network.class_names == ["a", "b", "c"] and network.thresholds == [0.2, 0.5, 0.7]
    assert network.task.name == "multi" and network.data_config == model.data_config
    pixels = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(network(pixels), model(pixels), rtol=0, atol=1e-6)
    broken = read_checkpoint(tmp_path / "model.ckpt")
    broken["state_dict"]["head.8.weight"] = torch.zeros(5, 5)
    torch.save(broken, tmp_path / "broken.ckpt")
    with pytest.raises(UserError, match="do not fit"):
        load_network(tmp_path / "broken.ckpt")


class Payload:
    """Unpickling this would run a shell command (it writes a file) if loading were unsafe."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": {}, "hyper_parameters": Payload(marker)}, f)

    with pytest.raises(UserError, match="refusing to load") as err:
        read_checkpoint(path)
    assert "\n" not in str(err.value)
    assert not marker.exists()
    with pytest.raises(UserError, match="refusing to load"):
        load_classifier(path)
    assert not marker.exists()


def test_missing_and_foreign_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.ckpt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.ckpt")
    with pytest.raises(UserError, match="not an imgclf ImageClassifier checkpoint"):
        load_classifier(tmp_path / "other.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError):
        read_checkpoint(tmp_path / "junk.ckpt")
