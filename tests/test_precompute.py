"""Precomputed activations: cache keys, memory maps, and equivalence with the frozen body."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.folders import make_image_folder
from helpers.models import apply_stage, small_datamodule_and_model

from imgclf.training.precompute import feature_loaders, precompute_features
from imgclf.training.recipe import Stage

HEAD_STAGE = Stage(name="head", freeze_to=-1, lr=1e-2, precompute=True, schedule="constant")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = make_image_folder(tmp_path_factory.mktemp("pets"), n_train=8, n_valid=4, size=40)
    return small_datamodule_and_model(root)


def test_cache_is_memory_mapped_and_reused(setup, tmp_path):
    dm, model = setup
    first = precompute_features(model, dm, 0, tmp_path, dm.image_size)
    assert not first.reused
    assert isinstance(first.train.features, np.memmap)
    assert first.train.features.shape == (1, 16, 2 * model.body.num_features)
    assert first.valid.features.shape == (1, 8, 2 * model.body.num_features)
    again = precompute_features(model, dm, 0, tmp_path, dm.image_size)
    assert again.reused and again.directory == first.directory
    features, label = again.valid[0]
    assert features.dtype == torch.float32 and label == dm.valid_items[0][1]


def test_any_change_invalidates_the_cache(setup, tmp_path):
    dm, model = setup
    base = precompute_features(model, dm, 0, tmp_path, dm.image_size).directory
    assert precompute_features(model, dm, 2, tmp_path, dm.image_size).directory != base
    assert precompute_features(model, dm, 0, tmp_path, image_size=48).directory != base
    touched = dm.train_items[0][0]
    touched.write_bytes(touched.read_bytes())  # same file, new modification time
    import os

    os.utime(touched, ns=(1, 1))
    assert precompute_features(model, dm, 0, tmp_path, dm.image_size).directory != base


def test_cached_features_equal_the_frozen_body(setup, tmp_path):
    dm, model = setup
    cached = precompute_features(model, dm, 0, tmp_path, dm.image_size)
    model.eval()
    images = torch.stack([dm.val_dataloader().dataset[i][0] for i in range(len(dm.valid_items))])
    with torch.no_grad():
        direct = model.pooled_features(images)
    assert torch.allclose(torch.from_numpy(np.array(cached.valid.features[0])), direct, atol=1e-5)


def test_augmented_views_differ_and_are_drawn_at_random(setup, tmp_path):
    dm, model = setup
    cached = precompute_features(model, dm, 3, tmp_path, dm.image_size)
    views = np.array(cached.train.features[:, 0])
    assert views.shape[0] == 3 and not np.allclose(views[0], views[1])
    torch.manual_seed(0)
    seen = {cached.train[0][0].sum().item() for _ in range(20)}
    assert len(seen) == 3


def train_head(model, batches, steps: int) -> dict:
    optimizer = model.build_optimizer(model.plan.lrs)
    model.train()
    torch.manual_seed(123)  # the same dropout masks on both paths
    for _ in range(steps):
        for inputs, labels in batches:
            loss = F.cross_entropy(model.logits(inputs), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return {k: v.clone() for k, v in model.head.state_dict().items()}


def test_head_trained_on_cache_equals_head_trained_through_frozen_body(setup, tmp_path):
    dm, base = setup
    cached = precompute_features(base, dm, 0, tmp_path, dm.image_size)
    labels = torch.tensor([y for _, y in dm.train_items])
    order = [list(range(0, 8)), list(range(8, 16))]

    on_cache = copy.deepcopy(base)
    apply_stage(on_cache, HEAD_STAGE)
    feats = torch.from_numpy(np.array(cached.train.features[0]))
    head_a = train_head(on_cache, [(feats[i], labels[i]) for i in order], steps=3)

    through_body = copy.deepcopy(base)
    apply_stage(
        through_body, Stage(name="head", freeze_to=-1, lr=1e-2, train_bn=False, schedule="constant")
    )
    plain = dm.eval_transform()
    from imgclf.data import ImageFileDataset

    images = torch.stack([x for x, _ in ImageFileDataset(dm.train_items, plain)])
    head_b = train_head(through_body, [(images[i], labels[i]) for i in order], steps=3)

    assert not torch.allclose(head_a["8.weight"], base.head.state_dict()["8.weight"])  # it trained
    for key in head_a:
        assert torch.allclose(head_a[key].float(), head_b[key].float(), atol=1e-4), key


def test_feature_loaders_batch_rows(setup, tmp_path):
    dm, model = setup
    train, valid = feature_loaders(
        precompute_features(model, dm, 0, tmp_path, dm.image_size), batch_size=4, seed=0
    )
    x, y = next(iter(train))
    assert x.shape == (4, 2560) and y.shape == (4,)
    assert sum(len(b[1]) for b in valid) == 8
