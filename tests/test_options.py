"""The training options (README "Training options"), each shown to act, without a Trainer:
label smoothing, MixUp/CutMix, class balance (sampler, loss weights, the warning),
TrivialAugment/RandAugment, and the one-line errors for bad values."""

from __future__ import annotations

import math
import sys
import warnings
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.folders import make_image_folder

import imgclf.commands.train  # noqa: F401  (Lightning binds its log handler at import)
from imgclf.cli import main
from imgclf.data import FolderDataModule
from imgclf.data.auto_augment import AutoAugment
from imgclf.data.balance import balanced_sampler, class_weights, imbalance_message
from imgclf.data.transforms import eval_transform, train_transform
from imgclf.errors import UserError
from imgclf.model.mixing import batch_mixer
from imgclf.task import SingleLabel


# -- label smoothing -----------------------------------------------------------------------
def test_label_smoothing_gives_the_smoothed_cross_entropy():
    logits = torch.tensor([[2.0, 0.0]])
    labels = torch.tensor([0])
    plain = math.log(1 + math.exp(-2.0))  # 0.1269
    assert float(SingleLabel().training_loss(logits, labels)) == pytest.approx(plain, abs=1e-6)
    # Targets 0.95 / 0.05: 0.95 * 0.1269 + 0.05 * 2.1269 = 0.2269
    smoothed = 0.95 * plain + 0.05 * (plain + 2.0)
    assert float(SingleLabel().training_loss(logits, labels, 0.1)) == pytest.approx(
        smoothed, abs=1e-6
    )
    assert smoothed == pytest.approx(0.2269, abs=1e-4)


def test_class_weights_weigh_the_loss_of_each_class():
    logits = torch.tensor([[2.0, 0.0], [2.0, 0.0]])
    labels = torch.tensor([0, 1])
    loss_a, loss_b = math.log(1 + math.exp(-2.0)), math.log(1 + math.exp(2.0))
    weights = torch.tensor([1.0, 3.0])
    expected = (1 * loss_a + 3 * loss_b) / 4  # torch's weighted mean
    assert float(SingleLabel().training_loss(logits, labels, 0.0, weights)) == pytest.approx(
        expected, 1e-6
    )


# -- MixUp / CutMix ------------------------------------------------------------------------
def batch(n: int = 6, size: int = 16):
    torch.manual_seed(0)
    images = torch.rand(n, 3, size, size)
    labels = torch.arange(n) % 3
    return images, labels


def test_mixup_mixes_each_image_with_its_neighbour_and_the_targets_alike():
    images, labels = batch()
    torch.manual_seed(1)
    mixed, targets = batch_mixer(0.4, 0.0, 1.0, 3)(images, labels)
    onehot = F.one_hot(labels, 3).float()
    lam = float(targets[0, labels[0]])  # labels[0] != labels[-1]: its own share, lambda
    expected = lam * images + (1 - lam) * images.roll(1, 0)
    assert 0.0 < lam < 1.0
    assert torch.allclose(mixed, expected, atol=1e-6)
    assert torch.allclose(targets, lam * onehot + (1 - lam) * onehot.roll(1, 0), atol=1e-6)
    assert torch.allclose(targets.sum(1), torch.ones(len(images)))


def test_cutmix_pastes_a_box_whose_area_is_the_target_share():
    images, labels = batch()
    torch.manual_seed(3)
    mixed, targets = batch_mixer(0.0, 1.0, 1.0, 3)(images, labels)
    own = (mixed == images).all(dim=1)  # pixels kept from the image itself
    pasted = (mixed == images.roll(1, 0)).all(dim=1)
    assert bool((own | pasted).all())  # every pixel comes from one of the two images
    share_own = float(own[0].float().mean())
    assert 0.0 < share_own < 1.0
    assert float(targets[0, labels[0]]) == pytest.approx(share_own, abs=1e-6)


def test_mix_prob_zero_keeps_the_images_and_gives_one_hot_targets():
    images, labels = batch()
    mixed, targets = batch_mixer(0.4, 1.0, 0.0, 3)(images, labels)
    assert torch.equal(mixed, images)
    assert torch.equal(targets, F.one_hot(labels, 3).float())
    assert batch_mixer(0.0, 0.0, 1.0, 3) is None  # both off: no mixing at all


def test_the_model_mixes_image_batches_but_not_cached_features():
    from imgclf.model import ImageClassifier, StagePlan

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ImageClassifier(num_classes=3, weights="none", mixup_alpha=0.4)
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 0])
    torch.manual_seed(0)
    mixed, targets = model.mixed(images, labels)
    assert mixed.dtype == torch.float32 and float(mixed.max()) <= 1.0  # the 0..1 rule
    assert targets.shape == (4, 3) and not torch.equal(mixed, images.float() / 255)
    model.set_stage(StagePlan("head", (1e-3,) * 3, freeze_to=-1, on_features=True))
    features = torch.randn(4, 2560)
    assert model.mixed(features, labels)[0] is features


# -- class balance -------------------------------------------------------------------------
def test_balanced_sampler_draws_every_class_equally_often():
    labels = [0] * 90 + [1] * 10
    sampler = balanced_sampler(labels, 2, torch.Generator().manual_seed(0))
    drawn = Counter(labels[i] for _ in range(20) for i in sampler)
    assert len(list(sampler)) == 100  # an epoch has as many draws as images
    assert drawn[1] / sum(drawn.values()) == pytest.approx(0.5, abs=0.03)
    again = balanced_sampler(labels, 2, torch.Generator().manual_seed(0))
    assert list(again) == list(balanced_sampler(labels, 2, torch.Generator().manual_seed(0)))


def test_class_weights_are_balanced_and_the_warning_names_the_classes():
    assert class_weights([0] * 30 + [1] * 10, 2) == pytest.approx([40 / 60, 40 / 20])
    message = imbalance_message({"cats": 110, "dogs": 10, "owls": 50})
    assert "'cats' has 110" in message and "'dogs' 10" in message and "11x" in message
    assert imbalance_message({"cats": 100, "dogs": 10}) is None  # 10x: not above the ratio


@pytest.fixture(scope="module")
def unbalanced(tmp_path_factory):
    root = tmp_path_factory.mktemp("unbalanced") / "pets"
    make_image_folder(root, classes=("cats", "dogs"), n_train=1, n_valid=1, size=16)
    make_image_folder(root / "extra", classes=("cats",), n_train=22, n_valid=0, size=16)
    for path in (root / "extra" / "train" / "cats").iterdir():
        path.rename(root / "train" / "cats" / f"x{path.name}")
    return root


def test_setup_warns_about_unbalanced_classes_and_the_sampler_evens_them(unbalanced):
    with pytest.warns(UserWarning, match=r"'cats' has 23 training images, 'dogs' 1 \(23x\)"):
        FolderDataModule(unbalanced, image_size=16, num_workers=0).setup("fit")
    data = FolderDataModule(unbalanced, image_size=16, num_workers=0, balance="sampler")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data.setup("fit")
    loader = data.train_dataloader()
    assert isinstance(loader.sampler, torch.utils.data.WeightedRandomSampler)
    order = list(loader.batch_sampler)
    labels = [data.train_items[i][1] for b in order for i in b]
    assert labels.count(1) >= 4  # 'dogs' (1 image in 24) drawn about half the time
    assert order == list(data.train_dataloader().batch_sampler)  # seeded
    weighted = FolderDataModule(unbalanced, image_size=16, num_workers=0, balance="loss_weights")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weighted.setup("fit")
    assert weighted.loss_weights == pytest.approx([24 / 46, 24 / 2])
    assert data.loss_weights is None


# -- TrivialAugment / RandAugment ----------------------------------------------------------
def photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", ["trivialaugment", "randaugment"])
def test_auto_augment_changes_the_crop_and_is_seeded(name):
    image = photo()

    def draws(seed: int, auto: str) -> list[torch.Tensor]:
        pipeline = train_transform("none", 32, seed=seed, auto_augment=auto)
        return [pipeline(image=image)["image"] for _ in range(6)]

    plain = draws(0, "none")[0]
    first, again, other = draws(0, name), draws(0, name), draws(1, name)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(first, other, strict=True))
    assert sum(not torch.equal(a, plain) for a in first) >= 3
    assert first[0].dtype == torch.uint8 and first[0].shape == (3, 32, 32)


def test_auto_augment_stays_out_of_evaluation_and_tta(tmp_path):
    root = make_image_folder(tmp_path / "pets", n_train=2, n_valid=1, size=16)
    data = FolderDataModule(root, image_size=16, num_workers=0, auto_augment="trivialaugment")
    data.setup("fit")

    def has_policy(pipeline) -> bool:
        return any(isinstance(t, AutoAugment) for t in pipeline.transforms)

    assert has_policy(data.train_transform())
    assert not has_policy(data.train_transform(auto_augment=False))  # what TTA uses
    assert not has_policy(data.eval_transform())
    assert not has_policy(eval_transform(16))


# -- bad values ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"auto_augment": "autoaugment"}, "unknown data.auto_augment 'autoaugment'"),
        ({"balance": "oversample"}, "unknown data.balance 'oversample'"),
        ({"auto_augment": "randaugment", "decode": "gpu"}, "needs data.decode=cpu"),
    ],
)
def test_bad_data_options_are_one_line_errors(tmp_path, kwargs, message):
    with pytest.raises(UserError, match=message) as info:
        FolderDataModule(tmp_path, **kwargs)
    assert "\n" not in str(info.value)


def run_main(args, tmp_path, capsys, monkeypatch) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["imgclf"])
    monkeypatch.setenv("IMGCLF_COMMAND", "")
    with pytest.raises(SystemExit) as exit_info:
        main([*args, f"paths.log_dir={tmp_path / 'logs'}", f"paths.cache_dir={tmp_path}"])
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.label_smoothing=1.5", "model.label_smoothing=1.5: must be a number in [0, 1)"),
        ("model.label_smoothing=-0.1", "model.label_smoothing=-0.1: must be a number >= 0"),
        ("model.mixup_alpha=-1", "model.mixup_alpha=-1: must be a number >= 0"),
        ("model.mix_prob=2", "model.mix_prob=2: must be a number between 0 and 1"),
        ("callbacks.default.ema_decay=1.5", "ema_decay=1.5: must be between 0 and 1"),
        ("callbacks.default.early_stopping_patience=0", "early_stopping_patience=0: must be"),
        ("callbacks.default.early_stopping_monitor=loss", "early_stopping_monitor='loss'"),
        ("trainer.accumulate_grad_batches=0", "trainer.accumulate_grad_batches=0: must be"),
        ("data.auto_augment=aa", "unknown data.auto_augment 'aa'"),
        ("data.balance=yes", "unknown data.balance 'yes'"),
    ],
)
def test_bad_option_values_stop_the_command_with_one_line(
    tmp_path, capsys, monkeypatch, override, message
):
    root = make_image_folder(tmp_path / "pets", n_train=2, n_valid=1, size=16)
    code, stderr = run_main(
        ["train", "data=folder", f"data.root={root}", override], tmp_path, capsys, monkeypatch
    )
    assert code == 2, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], stderr[-2000:]
    assert "Traceback" not in stderr
