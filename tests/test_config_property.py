"""Property: any override of the real `imgclf train` config (a wrong type, a number out of
range, an unknown key or group option) either builds everything a run needs (data module
scanned, model, callbacks, trainer, loggers) or is refused with one line (UserError), never
another exception (which the CLI would print as a traceback)."""

from __future__ import annotations

import pytest
from helpers.folders import make_image_folder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from imgclf.cli import config_dir
from imgclf.commands.config_check import compose_checked
from imgclf.commands.startup import build_data_and_model, build_trainer, instantiate_dict
from imgclf.commands.train import check_image_sizes, recipe_of
from imgclf.errors import UserError
from imgclf.training.resume_config import flatten

# Keys whose values only name places or run-time switches the test itself fixes.
FIXED = ("paths.", "data.root", "hydra", "data.num_workers", "data.decode", "resume")
BAD_VALUES = ["abc", "-1", "0", "1e9", "2.5", "true", "null", "[1,2]", "''", "-0.5", "7"]


def base(root, tmp_path) -> list[str]:
    return [
        "data=folder",
        f"data.root={root}",
        "data.image_size=32",
        "data.num_workers=0",
        "logger=csv",
        f"paths.output_dir={tmp_path / 'run'}",
        f"paths.log_dir={tmp_path / 'logs'}",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("property")
    root = make_image_folder(tmp_path / "pets", n_train=2, n_valid=1, size=32)
    cfg = compose_checked(config_dir(), "train", base(root, tmp_path))
    keys = sorted(
        key
        for key in flatten(OmegaConf.to_container(cfg, resolve=False))
        if not key.startswith(FIXED) and not key.endswith("_target_")
    )
    groups = sorted(p.name for p in config_dir().iterdir() if p.is_dir())
    return root, tmp_path, keys, groups


def overrides(keys: list[str], groups: list[str]):
    value = st.sampled_from(BAD_VALUES) | st.integers(-(10**7), 10**7).map(str)
    known = st.tuples(st.sampled_from(keys), value).map(lambda kv: f"{kv[0]}={kv[1]}")
    unknown = st.tuples(st.sampled_from(keys), value).map(lambda kv: f"{kv[0]}x={kv[1]}")
    option = st.sampled_from(groups).map(lambda group: f"{group}=nosuch")
    return st.lists(known | unknown | option, min_size=1, max_size=2)


def set_up(argv: list[str]) -> None:
    """What `imgclf train` does before its first training step, without writing a run."""
    cfg = compose_checked(config_dir(), "train", argv)
    stages = recipe_of(cfg)
    datamodule, model = build_data_and_model(cfg)
    check_image_sizes(model, datamodule, stages)
    instantiate_dict(cfg.get("callbacks"))
    build_trainer(cfg.trainer, logger=False)
    instantiate_dict(cfg.get("logger"))


@pytest.mark.slow  # builds a model for each of its examples (minutes on 2 loaded cores)
@pytest.mark.filterwarnings("ignore")
def test_any_override_builds_or_is_one_line(setting):
    root, tmp_path, keys, groups = setting

    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(overrides(keys, groups))
    def check(drawn: list[str]) -> None:
        try:
            set_up(base(root, tmp_path) + drawn)
        except UserError as err:
            assert "\n" not in str(err).strip(), (drawn, str(err))

    check()


@pytest.mark.parametrize(
    "drawn",
    [
        ["data.image_size=100000"],
        ["recipe.stages.0.epochs=many"],
        ["trainer.precision=7"],
        ["model.head_dropout=2.0"],
        ["model.head_hidden=[a]"],
        ["data.valid_pct=2.5"],
        ["data.test_folder=-1"],
    ],
)
def test_the_known_cases_are_one_line(drawn, setting):
    root, tmp_path, _, _ = setting
    with pytest.raises(UserError) as refused:
        set_up(base(root, tmp_path) + drawn)
    assert "\n" not in str(refused.value)
