"""The LR range test: restores the model exactly, keeps group ratios, stops on divergence."""

import pytest
import torch
from helpers.folders import make_image_folder
from helpers.models import apply_stage, small_datamodule_and_model

from imgclf.training.lr_finder import range_test
from imgclf.training.recipe import Stage


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = make_image_folder(tmp_path_factory.mktemp("pets"), n_train=8, n_valid=2, size=40)
    return small_datamodule_and_model(root)


def test_range_test_restores_weights_buffers_and_freezing(setup):
    dm, model = setup
    apply_stage(model, Stage(name="frozen", freeze_to=-1, lr=1e-3))
    plan_before = model.plan
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads_before = {n: p.requires_grad for n, p in model.named_parameters()}
    stage = Stage(name="ft", freeze_to=0, lr="auto", lr_mult=100)
    result = range_test(model, dm.train_dataloader(), stage, num_iter=30)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert {n: p.requires_grad for n, p in model.named_parameters()} == grads_before
    assert all(p.grad is None for p in model.parameters())
    assert model.plan == plan_before
    assert 1e-7 <= result.suggestion <= 10
    assert len(result.lrs) == len(result.losses) <= 30


def test_range_test_sweeps_the_stage_ratios(setup):
    dm, model = setup
    stage = Stage(name="ft", freeze_to=0, lr="auto", lr_mult=100)
    result = range_test(model, dm.train_dataloader(), stage, num_iter=5)
    assert result.ratios == pytest.approx([0.01, 0.1, 1.0])
    assert result.group_lrs(1e-2) == pytest.approx([1e-4, 1e-3, 1e-2])


def test_range_test_stops_when_the_loss_explodes(setup):
    dm, model = setup
    stage = Stage(name="ft", freeze_to=0, lr="auto")
    result = range_test(
        model, dm.train_dataloader(), stage, start_lr=1e-3, end_lr=1e6, num_iter=100
    )
    assert len(result.lrs) < 100  # stopped at 4x the best smoothed loss
