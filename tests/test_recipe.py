"""Recipe stages: parsing, validation, and the shipped recipes."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from imgclf.errors import UserError
from imgclf.training.recipe import parse_recipe, parse_stage

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_stage_defaults_and_sgdr_epochs():
    stage = parse_stage(
        {"name": "ft", "lr": "auto", "schedule": "sgdr", "n_cycles": 3, "cycle_mult": 2}, 0
    )
    assert stage.num_epochs == 7  # 1 + 2 + 4
    assert parse_stage({"name": "x", "epochs": 2}, 0).num_epochs == 2
    assert parse_stage({"lr": [1e-4, 1e-3, 1e-2]}, 3).name == "stage3"


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"name": "a", "lr_mul": 10}, r"unknown key\(s\) lr_mul"),
        ({"name": "a", "lr": -1.0}, "positive numbers"),
        ({"name": "a", "lr": "fast"}, "a number, a list or auto"),
        ({"name": "a", "lr": [1e-3, "x"]}, "positive numbers"),
        ({"name": "a", "schedule": "triangle"}, "unknown schedule"),
        ({"name": "a", "suggestion": "best"}, "unknown suggestion"),
        ({"name": "a", "epochs": 0}, "at least one epoch"),
        ({"name": "a", "precompute_aug": 2}, "precompute_aug needs precompute"),
    ],
)
def test_bad_stages_are_one_line_errors(entry, message):
    with pytest.raises(UserError, match=message) as info:
        parse_stage(entry, 0)
    assert "\n" not in str(info.value)


def test_recipe_needs_unique_names_and_stages():
    with pytest.raises(UserError, match="unique"):
        parse_recipe([{"name": "a"}, {"name": "a"}])
    with pytest.raises(UserError, match="no stages"):
        parse_recipe([])


@pytest.mark.parametrize("name", ["lesson1", "fine_tune"])
def test_shipped_recipes_parse(name):
    cfg = OmegaConf.create({"recipe": OmegaConf.load(CONFIGS / "recipe" / f"{name}.yaml")})
    stages = parse_recipe(OmegaConf.to_container(cfg.recipe.stages, resolve=True))
    assert stages[0].freeze_to == -1 and stages[-1].freeze_to == 0
    if name == "lesson1":
        assert stages[0].precompute and stages[0].lr == "auto" and stages[0].num_epochs == 10
        assert stages[1].schedule == "one_cycle" and stages[1].num_epochs == 5
        assert stages[1].lr == pytest.approx(2e-3) and stages[1].lr_mult == 10
    else:
        assert [s.num_epochs for s in stages] == [1, 4]
        assert stages[1].lr == pytest.approx(stages[0].lr / 2) and stages[1].lr_mult == 100
