"""ImageClassifier: head layout, forward/backward, optimizer groups, metrics."""

import pytest
import torch
from helpers.models import apply_stage
from torch import nn

from imgclf.model import ImageClassifier
from imgclf.model.head import AdaptiveConcatPool2d, create_head
from imgclf.model.optim import no_decay_names
from imgclf.training.recipe import Stage


@pytest.fixture(scope="module")
def model() -> ImageClassifier:
    torch.manual_seed(0)
    return ImageClassifier(num_classes=3)  # bundled tf_efficientnet_lite0 weights


def test_head_is_the_fastai_head():
    head = create_head(num_features=1280, num_classes=3)
    kinds = [type(m) for m in head]
    assert kinds == [
        AdaptiveConcatPool2d,
        nn.Flatten,
        nn.BatchNorm1d,
        nn.Dropout,
        nn.Linear,
        nn.ReLU,
        nn.BatchNorm1d,
        nn.Dropout,
        nn.Linear,
    ]
    assert head[2].num_features == 2560
    assert (head[3].p, head[7].p) == (0.25, 0.5)
    assert (head[4].in_features, head[4].out_features) == (2560, 512)
    assert (head[8].in_features, head[8].out_features) == (512, 3)


def test_head_sizes_and_dropouts_are_configurable():
    head = create_head(64, 5, hidden=(128, 32), dropout=(0.1, 0.2, 0.3))
    linears = [m for m in head if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(128, 128), (128, 32), (32, 5)]
    assert [m.p for m in head if isinstance(m, nn.Dropout)] == [0.1, 0.2, 0.3]
    with pytest.raises(ValueError, match="3 dropout values"):
        create_head(64, 5, hidden=(128, 32), dropout=(0.5,))


def test_concat_pool_stacks_max_then_average():
    x = torch.tensor([[[[1.0, 3.0], [5.0, 7.0]]]])
    assert AdaptiveConcatPool2d()(x).flatten().tolist() == [7.0, 4.0]


def test_forward_backward_reaches_every_parameter(model):
    model.train()
    images = torch.randn(4, 3, 64, 64)
    logits = model(images)
    assert logits.shape == (4, 3)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []
    model.zero_grad()


def test_one_named_param_group_per_layer_group_without_decay_on_norm_and_bias(model):
    skip = no_decay_names(model)
    assert "body.bn1.weight" in skip and "head.2.weight" in skip and "head.2.bias" in skip
    assert "body.conv_stem.weight" not in skip and "head.4.weight" not in skip
    optimizer = model.build_optimizer([1e-4, 1e-3, 1e-2])
    assert [g["name"] for g in optimizer.param_groups] == ["body_early", "body_late", "head"]
    assert [g["lr"] for g in optimizer.param_groups] == [1e-4, 1e-3, 1e-2]
    params = [p for g in optimizer.param_groups for p in g["params"]]
    assert len(params) == len(list(model.parameters())) == len({id(p) for p in params})
    head = optimizer.param_groups[2]
    masks = dict(zip([n for n, _ in model.groups[2].params], head["decay_mask"], strict=True))
    assert masks["head.4.weight"] and not masks["head.2.weight"]


def test_precompute_stage_feeds_features_to_the_head(model):
    apply_stage(model, Stage(name="head", freeze_to=-1, lr=1e-3, precompute=True))
    assert model.plan.on_features
    assert all(not p.requires_grad for p in model.body.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    model.eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model.logits(model.pooled_features(images)), model(images), atol=1e-5)
    apply_stage(model, Stage(name="all", freeze_to=0, lr=1e-3))
    assert not model.plan.on_features and all(p.requires_grad for p in model.parameters())


def test_a_new_stage_releases_the_norms_the_last_one_held(model):
    model.train()
    apply_stage(model, Stage(name="head", freeze_to=-1, lr=1e-3, precompute=True))
    body_norms = [m for m in model.body.modules() if isinstance(m, nn.BatchNorm2d)]
    assert body_norms and not any(m.training for m in body_norms)  # held: statistics frozen
    apply_stage(model, Stage(name="all", freeze_to=0, lr=1e-3))
    assert all(m.training for m in body_norms)


def test_data_config_comes_from_the_backbone(model):
    assert model.data_config["mean"] == (0.5, 0.5, 0.5)
    assert model.data_config["std"] == (0.5, 0.5, 0.5)
    assert model.data_config["input_size"] == 224


def test_uint8_and_float_pixels_are_normalised_by_one_rule(model):
    pixels = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    # (p / 255 - 0.5) / 0.5 for lite0's mean and std
    expected = torch.tensor([-1.0, -0.6, 1.0]).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    assert torch.allclose(model.normalize(pixels), expected, atol=1e-6)
    # float pixels are 0..1 (uint8 / 255), as an exported model takes them: the same result
    assert torch.allclose(model.normalize(pixels.float() / 255), expected, atol=1e-6)
    # the forward pass applies it: uint8 and float pixels of one image give the same logits
    model.eval()
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.allclose(model(images), model(images.float() / 255), atol=1e-4)
    # not in checkpoints: they follow from the backbone
    assert "pixel_mean" not in model.state_dict()


def test_validation_metrics_are_micro_accuracy_and_mean_cross_entropy(model):
    model.valid_acc.reset()
    model.valid_logloss.reset()
    # Class 0 has 3 images, class 1 one: macro accuracy would differ from micro.
    logits = torch.tensor([[2.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [2.0, 0.0, 0.0]])
    labels = torch.tensor([0, 0, 0, 1])
    model.valid_acc(logits, labels)
    model.valid_logloss(torch.nn.functional.cross_entropy(logits, labels, reduction="none"))
    assert model.valid_acc.compute().item() == pytest.approx(0.5)
    expected = torch.nn.functional.cross_entropy(logits, labels).item()
    assert model.valid_logloss.compute().item() == pytest.approx(expected)


@pytest.mark.parametrize("norm_stats", ["train", "frozen"])
def test_frozen_norm_stats_keep_the_body_statistics_and_train_the_norm_weights(norm_stats):
    torch.manual_seed(0)
    model = ImageClassifier(num_classes=3)
    model.train()
    apply_stage(model, Stage("finetune", freeze_to=0, lr=1e-3, norm_stats=norm_stats))
    model.train()  # as Lightning does every epoch
    body_norms = [m for m in model.body.modules() if isinstance(m, nn.BatchNorm2d)]
    before = [m.running_mean.clone() for m in body_norms]
    images = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)
    torch.nn.functional.cross_entropy(model(images), torch.tensor([0, 1, 2, 0])).backward()
    moved = [not torch.equal(m.running_mean, b) for m, b in zip(body_norms, before, strict=True)]
    assert all(moved) if norm_stats == "train" else not any(moved)
    assert all(m.weight.grad is not None for m in body_norms)  # the norm weights still learn
    head_norm = model.head[2]
    assert head_norm.training  # the head's own norms always use batch statistics


def test_an_unknown_norm_stats_is_a_one_line_error():
    from imgclf.errors import UserError
    from imgclf.training.recipe import parse_stage

    with pytest.raises(UserError, match="unknown norm_stats 'eval'; choose train, frozen"):
        parse_stage({"name": "finetune", "norm_stats": "eval"}, 1)
