"""GroupedAdamW: one param group per layer group, decoupled decay only where it belongs."""

import pytest
import torch
from torch import nn

from imgclf.model.optim import GroupedAdamW, layer_param_groups, no_decay_names


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def test_decay_skips_norms_and_biases_and_matches_torch_adamw():
    model = small_model()
    reference = small_model()
    names = [n for n, _ in model.named_parameters()]
    groups = layer_param_groups(model, [("early", names[:4]), ("head", names[4:])], [0.1, 0.1])
    assert [g["name"] for g in groups] == ["early", "head"]
    assert groups[0]["decay_mask"] == [True, False, False, False]  # 0.weight only
    ours = GroupedAdamW(groups, weight_decay=0.5)
    skip = no_decay_names(reference)
    theirs = torch.optim.AdamW(
        [
            {
                "params": [p for n, p in reference.named_parameters() if n not in skip],
                "weight_decay": 0.5,
            },
            {
                "params": [p for n, p in reference.named_parameters() if n in skip],
                "weight_decay": 0.0,
            },
        ],
        lr=0.1,
    )
    x = torch.randn(8, 4)
    for net, opt in ((model, ours), (reference, theirs)):
        for _ in range(3):
            opt.zero_grad()
            net(x).pow(2).mean().backward()
            opt.step()
    for (name, a), b in zip(model.named_parameters(), reference.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name


def test_frozen_tensors_neither_move_nor_decay():
    model = small_model()
    names = [n for n, _ in model.named_parameters()]
    model[0].weight.requires_grad_(False)
    before = model[0].weight.clone()
    opt = GroupedAdamW(layer_param_groups(model, [("all", names)], [0.1]), weight_decay=1.0)
    opt.zero_grad()
    model(torch.randn(8, 4)).sum().backward()
    opt.step()
    assert torch.equal(model[0].weight, before)
    assert not torch.equal(model[2].weight, small_model()[2].weight)


def test_state_dict_round_trip_keeps_names_and_masks():
    model = small_model()
    names = [n for n, _ in model.named_parameters()]
    opt = GroupedAdamW(layer_param_groups(model, [("a", names[:2]), ("b", names[2:])], [0.01, 0.1]))
    state = opt.state_dict()
    again = GroupedAdamW(
        layer_param_groups(model, [("a", names[:2]), ("b", names[2:])], [1.0, 1.0])
    )
    again.load_state_dict(state)
    assert [g["lr"] for g in again.param_groups] == pytest.approx([0.01, 0.1])
    assert again.param_groups[0]["decay_mask"] == [True, False]


def test_weight_decay_survives_an_optimizer_state_round_trip():
    param = torch.nn.Parameter(torch.ones(3))
    optimizer = GroupedAdamW([{"name": "g", "params": [param], "lr": 0.1}], weight_decay=0.01)
    param.grad = torch.zeros(3)
    optimizer.step()
    restored = GroupedAdamW([{"name": "g", "params": [param], "lr": 0.1}], weight_decay=0.01)
    restored.load_state_dict(optimizer.state_dict())
    assert restored.param_groups[0]["masked_weight_decay"] == 0.01
    before = param.detach().clone()
    restored.step()  # zero gradient: only the decay moves the weights, by lr * wd
    torch.testing.assert_close(param.detach(), before * (1 - 0.1 * 0.01))
