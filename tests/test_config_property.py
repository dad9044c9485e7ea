"""Property: for every command that takes Hydra overrides, any override drawn from that
command's real config tree (a wrong type, a number out of range, an unknown key or group
option) either gets the command through all of its checks to the start of its work, or ends
it with exit status 2 and one `error:` line on stderr: never a traceback, never Hydra's own
multi-line report (exit status 1).

The commands run in this process (`imgclf.cli.main`, as the console script runs them), each
stopped where its work would begin: train before the recipe runs, lr-find before its loaders (and any precompute),
evaluate and predict before the first prediction pass, export before the model is written,
serve before the page is launched (no server is ever started).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest
import torch
import yaml
from helpers.folders import make_image_folder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

import imgclf.commands.train  # noqa: F401  (imported now: Lightning binds its log handler to stderr at import)
from imgclf.cli import config_dir, hydra_argv, main
from imgclf.commands.config_check import compose_checked
from imgclf.commands.run_lock import LOCK_NAME, release_run_lock
from imgclf.model import ImageClassifier
from imgclf.training.resume_config import flatten

# Keys whose values only name places or run-time switches the test itself fixes.
FIXED = ("paths.", "data.root", "hydra", "data.num_workers", "data.decode", "resume")
BAD_VALUES = ["abc", "-1", "0", "1e9", "2.5", "true", "null", "[1,2]", "''", "-0.5", "7"]


class Reached(BaseException):
    """The command passed every check and is about to do its work. A BaseException, so that
    neither the command's handler nor Hydra's turns it into an error report."""


def reached(*args, **kwargs):
    raise Reached


# command -> the functions where its work begins (patched to stop it there; export's space
# and serve's page are imported when the command runs, from these modules).
WORK = {
    "train": ["imgclf.commands.train.run_recipe"],
    "lr-find": ["imgclf.commands.lr_find.stage_loaders"],
    "evaluate": ["imgclf.commands.evaluate.interpret", "imgclf.commands.evaluate.interpret_tags"],
    "predict": [
        "imgclf.evaluation.prediction.predict",
        # the quick CPU path, without Lightning (imported where it is called)
        "imgclf.evaluation.prediction.validation_eps",
        "imgclf.evaluation.prediction.predict_paths",
        # the cached ONNX file, without torch
        "imgclf.commands.predict.predict_with_onnx",
    ],
    "export": ["imgclf.commands.export.export_model", "imgclf.serving.space.write_space"],
    "serve": ["imgclf.serving.page.launch_page"],
}
# Hypothesis examples per command: each that passes the checks builds a model (a second or
# more on 2 cores). Derandomized: the same examples every run; runs with more examples and
# random draws found the fixed cases below.
EXAMPLES = {"train": 15, "lr-find": 10, "evaluate": 10, "predict": 10, "export": 10, "serve": 10}


def fake_run(directory: Path, root: Path) -> Path:
    """A run directory as `imgclf train` leaves it (config.yaml, .hydra/overrides.yaml,
    checkpoints/best.ckpt), with an untrained model: what evaluate, predict, export and
    serve read from `ckpt=`."""
    overrides = ["data=folder", f"data.root={root}", "data.image_size=32", "data.num_workers=0"]
    cfg = compose_checked(config_dir(), "train", [*overrides, f"paths.output_dir={directory}"])
    (directory / ".hydra").mkdir(parents=True)
    (directory / "checkpoints").mkdir()
    OmegaConf.save(cfg, directory / "config.yaml", resolve=True)
    (directory / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    torch.manual_seed(0)
    model = ImageClassifier(num_classes=2, class_names=["cats", "dogs"], weights="none")
    model.image_size = 32
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    model.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, directory / "checkpoints" / "best.ckpt")
    return directory


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    """(image folder, a trained-looking run, working directory)."""
    tmp = tmp_path_factory.mktemp("property")
    root = make_image_folder(tmp / "pets", n_train=2, n_valid=1, n_test=2, size=32)
    return root, fake_run(tmp / "trained", root), tmp


def base(command: str, root: Path, run: Path, tmp: Path) -> list[str]:
    """What a user gives each command for a small run on `root` (or the run `run`)."""
    places = [f"paths.log_dir={tmp / 'logs'}", f"paths.cache_dir={tmp / 'cache'}"]
    if command in ("train", "lr-find"):
        data = ["data=folder", f"data.root={root}", "data.image_size=32", "data.num_workers=0"]
        return [*data, "logger=csv", *places]
    extra = {"predict": [f"input={root / 'test'}"]}.get(command, [])
    return [f"ckpt={run}", *extra, *places]


def config_keys(command: str, argv: list[str]) -> list[str]:
    """Every setting of the command's composed config (but the fixed ones)."""
    from imgclf.cli import HYDRA_COMMANDS

    config_name = HYDRA_COMMANDS[command][1]
    cfg = compose_checked(config_dir(), config_name, hydra_argv(command, argv))
    return sorted(
        key
        for key in flatten(OmegaConf.to_container(cfg, resolve=False))
        if not key.startswith(FIXED) and not key.endswith("_target_")
    )


def overrides(keys: list[str], groups: list[str]):
    value = st.sampled_from(BAD_VALUES) | st.integers(-(10**7), 10**7).map(str)
    known = st.tuples(st.sampled_from(keys), value).map(lambda kv: f"{kv[0]}={kv[1]}")
    unknown = st.tuples(st.sampled_from(keys), value).map(lambda kv: f"{kv[0]}x={kv[1]}")
    option = st.sampled_from(groups).map(lambda group: f"{group}=nosuch")
    return st.lists(known | unknown | option, min_size=1, max_size=2)


def outcome(argv: list[str], run_dir: Path, capsys) -> tuple[str, str]:
    """`imgclf <argv>` into `run_dir`: ("reached", "") when it got to its work, else
    ("exit <code>", stderr). Any other exception propagates (it would be a traceback)."""
    capsys.readouterr()
    try:
        main([*argv, f"hydra.run.dir={run_dir}"])
    except Reached:
        return "reached", ""
    except SystemExit as stop:
        return f"exit {stop.code}", capsys.readouterr().err
    finally:
        release_run_lock(run_dir.absolute() / LOCK_NAME)
    return "exit 0", capsys.readouterr().err


def error_lines(stderr: str) -> list[str]:
    noise = ("Seed set to", "warning: ")  # Lightning's seed message; our own warnings
    return [line for line in stderr.strip().splitlines() if not line.startswith(noise)]


@pytest.fixture
def stopped_at_work(monkeypatch):
    """Every command stops where its work would begin; argv and IMGCLF_COMMAND restored."""
    monkeypatch.setattr(sys, "argv", ["imgclf"])
    monkeypatch.setenv("IMGCLF_COMMAND", "")
    for target in itertools.chain(*WORK.values()):
        module, name = target.rsplit(".", 1)
        monkeypatch.setattr(f"{module}.{name}", reached)


@pytest.mark.slow  # builds a model for each of its examples (a minute on 2 loaded cores)
@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("command", list(WORK))
def test_any_override_runs_or_is_one_line(command, setting, stopped_at_work, capsys):
    root, run, tmp = setting
    argv = base(command, root, run, tmp)
    keys = config_keys(command, argv)
    groups = sorted(p.name for p in config_dir().iterdir() if p.is_dir())
    runs = itertools.count()

    @settings(
        max_examples=EXAMPLES[command],
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(overrides(keys, groups))
    def check(drawn: list[str]) -> None:
        result, stderr = outcome([command, *argv, *drawn], tmp / "runs" / str(next(runs)), capsys)
        if result == "reached":
            return
        lines = error_lines(stderr)
        assert result == "exit 2", (drawn, result, stderr[-3000:])
        assert len(lines) == 1 and lines[0].startswith("error: "), (drawn, stderr[-3000:])

    check()


@pytest.mark.slow  # builds every command's model
@pytest.mark.filterwarnings("ignore")
def test_the_unchanged_commands_reach_their_work(setting, stopped_at_work, capsys):
    """The base of each command is valid: a refusal in the property is the drawn override's."""
    root, run, tmp = setting
    for index, command in enumerate(WORK):
        argv = [command, *base(command, root, run, tmp)]
        result, stderr = outcome(argv, tmp / "plain" / str(index), capsys)
        assert result == "reached", (command, stderr[-3000:])


# The cases found by hand (issue: "about ten mistakes still end in a traceback") and by the
# property, with the words each line must hold.
KNOWN = [
    ("train", ["data.image_size=100000"], "data.image_size=100000"),
    ("train", ["recipe.stages.0.epochs=many"], "recipe.stages.0.epochs='many'"),
    ("train", ["trainer.precision=7"], "trainer.precision=7"),
    ("train", ["model.head_dropout=2.0"], "model.head_dropout=2.0"),
    ("train", ["model.head_hidden=[a]"], "model.head_hidden=['a']: must be a list of whole"),
    ("train", ["data.valid_pct=2.5"], "data.valid_pct"),
    ("train", ["data.test_folder=[1,2]"], "data.test_folder=[1, 2]: must be text"),
    ("train", ["data.augment=true"], "data.augment=True: must be text"),
    ("train", ["data.do_flip=7"], "data.do_flip=7: must be true or false"),
    ("train", ["model.weights=null"], "model.weights=None: must be text"),
    ("lr-find", ["data.min_scale=0"], "data.min_scale must be above 0"),
    ("lr-find", ["lr_find.stage=7"], "no stage 7 in the recipe"),
    ("lr-find", ["lr_find.num_iter=0"], "lr_find.num_iter=0"),
    ("evaluate", ["tta.n=-1"], "tta.n=-1"),
    ("evaluate", ["image_size=abc"], "image_size='abc': must be a whole number >= 1"),
    ("evaluate", ["trainer.precision=7"], "trainer.precision=7"),
    ("predict", ["input=abc"], "abc"),
    ("predict", ["input=332"], "input 332 does not exist"),
    ("predict", ["input=[1,2]"], "input 1 does not exist"),
    ("predict", ["top_k=abc"], "top_k='abc': must be a whole number >= 1"),
    ("predict", ["clip=abc"], "clip"),
    ("export", ["format=abc"], "unknown export format 'abc'"),
    ("export", ["out={tmp}"], "it is a folder; give a file name"),
    ("serve", ["port=0"], "port"),
    ("serve", ["max_upload_mb=abc"], "max_upload_mb"),
    ("serve", ["examples_per_class=-1"], "examples_per_class=-1: must be a whole number >= 0"),
]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(("command", "drawn", "words"), KNOWN)
def test_the_known_cases_are_one_line(command, drawn, words, setting, stopped_at_work, capsys):
    root, run, tmp = setting
    argv = [command, *base(command, root, run, tmp), *(d.format(tmp=tmp) for d in drawn)]
    result, stderr = outcome(
        argv, tmp / "known" / str(KNOWN.index((command, drawn, words))), capsys
    )
    lines = error_lines(stderr)
    assert result == "exit 2" and len(lines) == 1, (result, stderr[-3000:])
    assert words in lines[0], lines[0]
