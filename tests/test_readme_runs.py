"""The documented commands that are fast on a small folder, run as printed: the "your own
folder in five minutes" training command (made small by appended overrides), and then every
command that takes its run directory (evaluate, predict, export, lr-find, resume), with the
documentation's example run names, `~/...` paths and `data/digits/test` pointing at real
files (README.md and every page of docs/)."""

from __future__ import annotations

import json
import re
import shlex

import pytest
from helpers.cli import run_cli, run_dir_of, small_run_overrides
from helpers.folders import make_image_folder
from test_readme import readme_commands

WALKTHROUGH = "data.root=~/data/pets data.per_class=50 recipe=fine_tune"
# Appended to the walkthrough's command: the same run, small and quick (later overrides win).
QUICK = ("recipe.stages.1.epochs=1", "data.valid_pct=0.3")


def imgclf_words(line: str) -> list[str]:
    """The words after `imgclf` of a documented line."""
    words = shlex.split(line)
    return words[next(i for i, word in enumerate(words) if word.endswith("imgclf")) + 1 :]


def run_commands() -> list[str]:
    """The documented lines that act on a trained run and need no GPU."""
    return [
        line
        for line in readme_commands()
        if re.search(r"(ckpt|resume)=logs/train/", line) and "trainer=gpu" not in line
    ]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A home directory and working directory as the documentation assumes them: ~/data/pets, a
    photo at ~/photo.jpg and ~/Downloads/cat.jpg, data/digits/test, and the documentation's example
    run names linked to one real run of the walkthrough's command."""
    home = tmp_path_factory.mktemp("home")
    pets = make_image_folder(
        home / "data" / "pets", n_train=10, n_valid=0, n_test=4, size=48, ext="png"
    )
    line = next(line for line in readme_commands() if WALKTHROUGH in line)
    overrides = [w for w in small_run_overrides(pets, home) if not w.startswith("data.root")]
    result = run_cli(*imgclf_words(line), *overrides, *QUICK, cwd=home, env={"HOME": str(home)})
    assert result.returncode == 0, result.stderr[-3000:]
    run = run_dir_of(result)
    (home / "Downloads").mkdir()
    photo = next((pets / "test").iterdir())
    for copy in (home / "photo.jpg", home / "Downloads" / "cat.jpg"):
        copy.write_bytes(photo.read_bytes())
    (home / "data" / "digits").mkdir()
    (home / "data" / "digits" / "test").symlink_to(pets / "test")
    for name in set(re.findall(r"logs/train/([\w-]+)", " ".join(run_commands()))):
        (home / "logs" / "train" / name).symlink_to(run)
    return home, run


def test_the_walkthrough_trains_from_a_folder_under_home(workdir):
    home, run = workdir
    config = (run / "config.yaml").read_text()
    assert f"root: {home}/data/pets" in config and "per_class: 50" in config
    assert json.loads((run / "summary.json").read_text())["best_valid_acc"] >= 0


# `imgclf serve` runs until stopped: tests/test_serve.py starts and checks it.
@pytest.mark.parametrize("line", [c for c in run_commands() if "imgclf serve" not in c])
def test_a_readme_command_on_a_trained_run_works_as_printed(line, workdir):
    home, run = workdir
    words = imgclf_words(line)
    result = run_cli(*words, cwd=home, env={"HOME": str(home)})
    assert result.returncode == 0, result.stderr[-3000:]
    out_dir = run_dir_of(result)
    if words[0] == "train":  # resuming a finished run: nothing to do, nothing rewritten
        assert "finished run: nothing to do" in result.stdout + result.stderr
        return
    assert out_dir.is_dir() and out_dir != run
    written = {path.name for path in out_dir.rglob("*")}
    expected = {
        "evaluate": "metrics.json",
        "predict": "submission.csv",
        "export": "model.onnx",
        "lr-find": "lr_find.png",
    }[words[0]]
    assert expected in written, sorted(written)
    if words[0] == "predict" and "photo.jpg" in line:  # one image: its top classes
        assert re.search(rf"{home}/photo.jpg: (cats|dogs) [01]\.\d{{4}}, ", result.stdout)
