"""A resume continues the run it names: only the keys of RESUMABLE may change; any other
change is one line naming the key and both values, and leaves every file of the run as it
was."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
from helpers.cli import run_cli
from helpers.folders import make_image_folder
from helpers.resume_run import last_line, overrides

from imgclf.cli import main
from imgclf.training.resume_config import config_changes

RUN = {
    "seed": 7,
    "resume": None,
    "data": {"root": "/data/pets", "image_size": 32, "num_workers": 2},
    "model": {"backbone": "resnet18", "n_groups": 3},
    "recipe": {"stages": [{"name": "head", "epochs": 1}, {"name": "all", "epochs": 2}]},
    "trainer": {"devices": 1, "accelerator": "cpu", "precision": "32-true"},
    "logger": {"wandb": {"mode": "auto"}},
}


def changed(**dotted) -> dict:
    """A copy of RUN with the keys set (`a__b__0`: RUN["a"]["b"][0])."""
    tree = copy.deepcopy(RUN)
    for key, value in dotted.items():
        *parents, leaf = key.split("__")
        node = tree
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[int(leaf) if isinstance(node, list) else leaf] = value
    return tree


def test_where_a_run_runs_and_logs_may_change():
    now = changed(
        resume="/runs/a",
        data__num_workers=0,
        trainer__devices=2,
        trainer__accelerator="gpu",
        trainer__precision="bf16-mixed",
        logger__wandb__mode="offline",
    )
    assert config_changes(RUN, now) == []


def test_every_other_change_is_named_with_both_values():
    now = changed(
        model__n_groups=4,
        data__image_size=64,
        recipe__stages__1__epochs=5,
        data__root="/data/birds",
        seed=8,
    )
    assert config_changes(RUN, now) == [
        ("data.image_size", 32, 64),
        ("data.root", "/data/pets", "/data/birds"),
        ("model.n_groups", 3, 4),
        ("recipe.stages.1.epochs", 2, 5),
        ("seed", 7, 8),
    ]
    assert config_changes(RUN, changed(model__head_hidden=[256])) == [
        ("model.head_hidden", "(not set)", [256])
    ]
    stages = [{"name": "head", "epochs": 1}]
    assert config_changes(RUN, changed(recipe__stages=stages)) == [
        ("recipe.stages", RUN["recipe"]["stages"], stages)
    ]


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory) -> tuple[Path, Path]:
    """A finished two-stage run, resumed from its first stage's checkpoint (what a run
    stopped after stage 1 leaves) in the tests below."""
    workdir = tmp_path_factory.mktemp("resume_config")
    root = make_image_folder(workdir / "pets", n_train=5, n_valid=3, size=40)
    run = last_line(run_cli("train", *overrides(root, workdir, "runs"), cwd=workdir))
    return run, run / "checkpoints" / "stage1-head.ckpt"


def every_file(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.mark.slow  # trains the run it resumes
@pytest.mark.parametrize(
    ("change", "key", "before", "after"),
    [
        ("model.n_groups=4", "model.n_groups", "3", "4"),  # model structure
        ("data.image_size=64", "data.image_size", "32", "64"),  # image size
        ("recipe.stages.1.epochs=5", "recipe.stages.1.epochs", "2", "5"),  # recipe
        ("data.do_flip=false", "data.do_flip", "True", "False"),  # data
        ("model.head_hidden=256", "model.head_hidden", "[512]", "256"),
    ],
)
def test_a_resume_that_changes_the_run_is_refused_and_touches_nothing(
    stopped_run, change, key, before, after, tmp_path, capsys, monkeypatch
):
    run, checkpoint = stopped_run
    files = every_file(run)
    monkeypatch.setattr(sys, "argv", ["imgclf"])
    monkeypatch.setenv("IMGCLF_COMMAND", "")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", f"resume={checkpoint}", change])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: resume: {key} was {before} in {run} and is {after} now;")
    assert every_file(run) == files  # config, .hydra/, logs, checkpoints: byte for byte
