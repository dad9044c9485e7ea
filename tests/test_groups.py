"""Layer groups: depth-ordered splits of timm bodies, freezing (train_bn) and spread LRs."""

from __future__ import annotations

import itertools
import math
from functools import cache

import pytest
import timm
import torch
import torch.nn.functional as F
from timm.layers import BatchNormAct2d, GroupNorm1, LayerNorm2d
from torch import nn

from imgclf.errors import UserError
from imgclf.model.groups import (
    NORM_TYPES,
    PARTITION_SLACK,
    LayerGroup,
    apply_freeze,
    coarse_groups,
    layer_groups,
    linear_partition,
    resolve_freeze_to,
    set_eval,
    spread_lrs,
)
from imgclf.model.head import create_head

# One small model per family, with the first parameter of its stem / patch embedding.
FAMILIES = {
    "resnet18": "body.conv1.weight",
    "efficientnet_b0": "body.conv_stem.weight",
    "mobilenetv3_small_100": "body.conv_stem.weight",
    "convnext_atto": "body.stem.0.weight",
    "vit_tiny_patch16_224": "body.patch_embed.proj.weight",
    "regnetx_002": "body.stem.conv.weight",
}


class Net(nn.Module):
    """body + head, so parameter names read "body..." / "head..." as in ImageClassifier."""

    def __init__(self, body: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def make_net(name: str, **kwargs) -> Net:
    body = timm.create_model(name, pretrained=False, num_classes=0, global_pool="", **kwargs)
    return Net(body, create_head(body.num_features, num_classes=3))


@cache
def shared_net(name: str) -> Net:
    """Built once per family for the read-only split tests."""
    return make_net(name)


def body_shares(groups: list[LayerGroup]) -> list[float]:
    body_total = sum(group.num_params for group in groups[:-1])
    return [group.num_params / body_total for group in groups[:-1]]


# -- layer_groups ------------------------------------------------------------------------


@pytest.mark.parametrize("n_groups", [2, 3, 4])
@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_parameter_in_exactly_one_group_in_depth_order(name: str, n_groups: int) -> None:
    net = shared_net(name)
    groups = layer_groups(net.body, net.head, n_groups)
    assert len(groups) == n_groups
    named = [(n, p) for group in groups for n, p in group.params]
    # Exactly the model's parameters, each once, under the model's own names.
    assert sorted(n for n, _ in named) == sorted(n for n, _ in net.named_parameters())
    assert len({id(p) for _, p in named}) == len(named) == len(list(net.parameters()))
    assert all(dict(net.named_parameters())[n] is p for n, p in named)
    # Depth order: every group's params come strictly after the previous group's in model
    # order, and model order inside each group. All six families satisfy this strictly
    # (ViT's cls_token/pos_embed are defined first and sit in timm's stem group).
    position = {n: i for i, (n, _) in enumerate(net.named_parameters())}
    spans = [[position[n] for n, _ in group.params] for group in groups]
    for span in spans:
        assert span == sorted(span) and span
    for before, after in itertools.pairwise(spans):
        assert max(before) < min(after)
    assert FAMILIES[name] in dict(groups[0].params)
    assert [n for n, _ in groups[-1].params] == [
        f"head.{n}" for n, _ in net.head.named_parameters()
    ]
    assert groups[-1].name == "head"


@pytest.mark.parametrize("name", list(FAMILIES))
def test_three_groups_split_the_body_into_real_shares(name: str) -> None:
    net = shared_net(name)
    groups = layer_groups(net.body, net.head, 3)
    assert [group.name for group in groups] == ["body_early", "body_late", "head"]
    shares = body_shares(groups)
    # Measured smallest: regnetx_002 10.4% (its last stage alone is 89.6% of the body).
    assert min(shares) > 0.10, shares


@pytest.mark.parametrize("n_groups", [3, 4, 5])
@pytest.mark.parametrize("name", list(FAMILIES))
def test_split_follows_the_documented_rule(name: str, n_groups: int) -> None:
    """Brute force over all contiguous cuts of the coarse groups: the largest chunk is within
    the slack of the minimax optimum and the smallest chunk is as large as that allows."""
    net = shared_net(name)
    sizes = [sum(p.numel() for _, p in group) for group in coarse_groups(net.body)]
    n_chunks = n_groups - 1
    cuts = []
    for inner in itertools.combinations(range(1, len(sizes)), n_chunks - 1):
        bounds = [0, *inner, len(sizes)]
        cuts.append([sum(sizes[a:b]) for a, b in itertools.pairwise(bounds)])
    best_max = min(max(cut) for cut in cuts)
    cap = best_max + PARTITION_SLACK * sum(sizes)
    best_min = max(min(cut) for cut in cuts if max(cut) <= cap)
    chosen = [group.num_params for group in layer_groups(net.body, net.head, n_groups)[:-1]]
    assert max(chosen) <= cap and min(chosen) == best_min
    assert max(chosen) == min(max(cut) for cut in cuts if max(cut) <= cap and min(cut) >= best_min)


def test_linear_partition_on_known_sizes() -> None:
    assert linear_partition([10] * 6, 3) == [0, 2, 4]
    assert linear_partition([1, 1, 1, 98], 2) == [0, 3]
    assert linear_partition([5, 5, 5], 3) == [0, 1, 2]
    # convnext_atto-like: a tiny final norm must not become a group of its own just to shave
    # 0.02% off the largest chunk; exact minimax would return [0, 4, 5].
    assert linear_partition([6, 90, 370, 3960, 5570, 2], 3) == [0, 3, 4]
    with pytest.raises(ValueError):
        linear_partition([1, 2], 3)


def test_group_names() -> None:
    net = shared_net("vit_tiny_patch16_224")
    assert [g.name for g in layer_groups(net.body, net.head, 2)] == ["body", "head"]
    assert [g.name for g in layer_groups(net.body, net.head, 5)] == [
        "body_1",
        "body_2",
        "body_3",
        "body_4",
        "head",
    ]
    assert [g.name for g in layer_groups(net.body, net.head, 14)][-2:] == ["body_13", "head"]


def test_too_many_groups_names_the_maximum() -> None:
    net = shared_net("regnetx_002")  # 5 coarse groups: stem, s1..s4
    assert len(layer_groups(net.body, net.head, 6)) == 6
    with pytest.raises(UserError, match="at most 6"):
        layer_groups(net.body, net.head, 7)
    with pytest.raises(UserError, match=">= 2"):
        layer_groups(net.body, net.head, 1)


class TinyBody(nn.Sequential):
    """Not a timm model (no group_matcher), with a parameter-less (affine=False) norm."""

    def __init__(self) -> None:
        super().__init__(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.BatchNorm2d(4, affine=False),
            nn.Conv2d(4, 4, 3, padding=1),
            nn.BatchNorm2d(4),
        )


def test_non_timm_body_and_parameterless_norm() -> None:
    net = Net(TinyBody(), create_head(4, num_classes=3))
    groups = layer_groups(net.body, net.head, 3)
    # One coarse group per top-level child with parameters: conv0 | conv2, bn3 (112 | 156).
    assert [n for n, _ in groups[0].params] == ["body.0.weight", "body.0.bias"]
    assert [n for n, _ in groups[1].params][0] == "body.2.weight"
    held = apply_freeze(net, groups, freeze_to=1, train_bn=False)
    # body.1 follows the frozen conv0, so its statistics freeze too; body.3 trains.
    assert held == [net.body[1]]
    assert apply_freeze(net, groups, freeze_to=0, train_bn=False) == []
    held = apply_freeze(net, groups, freeze_to=-1, train_bn=False)
    assert held == [net.body[1], net.body[3]]
    before = net.body[1].running_mean.clone()
    net.train()
    set_eval(held)
    net(torch.randn(2, 3, 8, 8))
    assert torch.equal(net.body[1].running_mean, before)
    assert not net.body[1].training and net.head.training


# -- freezing ----------------------------------------------------------------------------


def test_resolve_freeze_to() -> None:
    assert resolve_freeze_to(0, 3) == 0
    assert resolve_freeze_to(1, 3) == 1
    assert resolve_freeze_to(-1, 3) == 2
    assert resolve_freeze_to(-3, 3) == 0
    for bad in (3, -4, 1.0, True):
        with pytest.raises(UserError, match="freeze_to"):
            resolve_freeze_to(bad, 3)


def test_norm_types_cover_timm_norms() -> None:
    for layer in (
        nn.BatchNorm1d(4),
        nn.BatchNorm2d(4),
        nn.BatchNorm3d(4),
        nn.SyncBatchNorm(4),
        nn.InstanceNorm2d(4),
        nn.GroupNorm(2, 4),
        nn.LayerNorm(4),
        BatchNormAct2d(4),
        LayerNorm2d(4),
        GroupNorm1(4),
    ):
        assert isinstance(layer, NORM_TYPES), type(layer)
    assert not isinstance(nn.Conv2d(1, 1, 1), NORM_TYPES)


def sgd_step(net: Net, held: list[nn.Module]) -> None:
    """One real training step on random data, as the model's training loop would do it."""
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    net.train()
    set_eval(held)
    loss = F.cross_entropy(net(torch.randn(4, 3, 64, 64)), torch.randint(0, 3, (4,)))
    loss.backward()
    optimizer.step()


@pytest.mark.parametrize("train_bn", [True, False])
def test_freeze_first_group_and_train(train_bn: bool) -> None:
    torch.manual_seed(0)
    # timm zeroes each residual block's last BN weight by default, which zeroes the grads of
    # the block's other layers at init; real (pretrained) weights have no such zeros.
    net = make_net("resnet18", zero_init_last=False)
    groups = layer_groups(net.body, net.head, 3)  # stem..layer3 | layer4 | head
    held = apply_freeze(net, groups, freeze_to=1, train_bn=train_bn)
    modules = dict(net.named_modules())
    frozen_bns = {
        name
        for name, module in modules.items()
        if isinstance(module, nn.BatchNorm2d)
        and name.startswith(("body.bn1", "body.layer1", "body.layer2", "body.layer3"))
    }
    assert len(frozen_bns) == 1 + 4 + 5 + 5  # stem, layer1, layer2 and layer3 with downsample
    if train_bn:
        assert held == []
    else:
        assert {
            name for name, module in modules.items() if any(module is m for m in held)
        } == frozen_bns

    before = {k: v.clone() for k, v in net.state_dict().items()}
    sgd_step(net, held)
    after = net.state_dict()

    def changed(key: str) -> bool:
        return not torch.equal(before[key], after[key])

    for index, group in enumerate(groups):
        for name, param in group.params:
            is_norm = name.rpartition(".")[0] in frozen_bns
            trains = index >= 1 or (train_bn and is_norm)
            assert param.requires_grad == trains, name
            assert changed(name) == trains, name
            assert (param.grad is None) == (not trains), name
    # Spot checks of the same, by name.
    assert not changed("body.conv1.weight") and net.body.conv1.weight.grad is None
    assert not changed("body.layer3.1.conv2.weight")
    assert changed("body.layer4.1.conv2.weight") and changed("head.8.weight")
    for bn in ("body.bn1", "body.layer3.1.bn2"):
        for key in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            assert changed(f"{bn}.{key}") == train_bn, (bn, key)
    # Trainable groups always update their statistics.
    assert changed("body.layer4.1.bn2.running_mean") and changed("head.2.running_mean")


def test_head_only_without_train_bn_skips_the_body_backward() -> None:
    torch.manual_seed(0)
    net = make_net("resnet18")
    groups = layer_groups(net.body, net.head, 3)
    held = apply_freeze(net, groups, freeze_to=-1, train_bn=False)
    body_bns = [m for m in net.body.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(held) == len(body_bns) and all(any(m is h for h in held) for m in body_bns)
    outputs = []
    net.body.register_forward_hook(lambda module, args, output: outputs.append(output))
    sgd_step(net, held)
    assert len(outputs) == 1 and not outputs[0].requires_grad
    assert all(p.grad is None and not p.requires_grad for p in net.body.parameters())
    assert all(p.grad is not None for p in net.head.parameters())
    assert all(not m.training for m in body_bns) and net.head.training


def test_unfreeze_everything_after_a_frozen_stage() -> None:
    net = make_net("resnet18")
    groups = layer_groups(net.body, net.head, 3)
    apply_freeze(net, groups, freeze_to=-1, train_bn=False)
    assert apply_freeze(net, groups, freeze_to=0, train_bn=False) == []
    assert all(p.requires_grad for p in net.parameters())


# -- learning rates ----------------------------------------------------------------------


def test_spread_lrs_number_and_list() -> None:
    assert spread_lrs(1e-3, 3) == [1e-3, 1e-3, 1e-3]
    assert spread_lrs([1e-5, 1e-4, 1e-3], 3) == [1e-5, 1e-4, 1e-3]
    assert spread_lrs((1, 2), 2) == [1.0, 2.0]


def test_spread_lrs_geometric() -> None:
    assert spread_lrs(1e-2, 2, lr_mult=100) == pytest.approx([1e-4, 1e-2])
    assert spread_lrs(1e-2, 3, lr_mult=100) == pytest.approx([1e-4, 1e-3, 1e-2])
    lrs = spread_lrs(3e-3, 5, lr_mult=10)
    assert lrs[0] == pytest.approx(3e-4) and lrs[-1] == 3e-3
    ratios = [b / a for a, b in itertools.pairwise(lrs)]
    assert ratios == pytest.approx([10 ** (1 / 4)] * 4)
    assert spread_lrs(1e-3, 3, lr_mult=1) == pytest.approx([1e-3] * 3)
    assert all(math.isfinite(lr) for lr in lrs)


@pytest.mark.parametrize(
    ("lr", "lr_mult", "message"),
    [
        ([1e-3, 1e-2], None, "one value per layer group: 3 expected, got 2"),
        ([1e-3, 1e-2, 1e-1, 1.0], None, "3 expected, got 4"),
        (0.0, None, "positive"),
        (-1e-3, None, "positive"),
        ([1e-3, 0, 1e-2], None, "positive"),
        ("fast", None, "positive number"),
        (float("nan"), None, "positive number"),
        (None, None, "positive number"),
        (1e-3, 0, "lr_mult must be positive"),
        ([1e-3, 1e-3, 1e-3], 10, "single lr"),
    ],
)
def test_spread_lrs_errors(lr, lr_mult, message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        spread_lrs(lr, 3, lr_mult)
    assert "\n" not in str(info.value)
