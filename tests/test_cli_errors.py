"""Config and folder mistakes at the command line: exit code 2, one `error:` line, no traceback.

The commands run in this process (`imgclf.cli.main`), as the console script runs them, so
the many cases share one import of torch and timm; `test_train_cli.py` checks one of them
in a real subprocess.
"""

from __future__ import annotations

import shutil
import sys

import pytest
from helpers.folders import make_image_folder

import imgclf.commands.train  # noqa: F401  (imported now: Lightning binds its log handler to stderr at import)
from imgclf.cli import main


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("cli") / "pets", n_train=2, n_valid=1)


def run_main(args: list[str], tmp_path, capsys, monkeypatch) -> tuple[int, str]:
    """(exit code, stderr) of `imgclf <args>` with logs under tmp_path."""
    monkeypatch.setattr(sys, "argv", ["imgclf"])
    monkeypatch.setenv("IMGCLF_COMMAND", "")  # main() sets it; restored after the test
    with pytest.raises(SystemExit) as exit_info:
        main([*args, f"paths.log_dir={tmp_path / 'logs'}", f"paths.cache_dir={tmp_path}"])
    return exit_info.value.code, capsys.readouterr().err


def assert_no_run_directory(tmp_path) -> None:
    """A command refused before its run began leaves no run directory behind."""
    logs = tmp_path / "logs"
    runs = [p for p in logs.glob("*/*")] if logs.is_dir() else []
    assert runs == [], [sorted(q.name for q in run.rglob("*")) for run in runs]


def assert_one_line_error(code: int, stderr: str, message: str) -> str:
    assert code == 2, stderr[-2000:]
    assert "Traceback" not in stderr and "HYDRA_FULL_ERROR" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr[-2000:]
    assert message in errors[0], errors[0]
    assert stderr.strip().splitlines()[-1] == errors[0]
    return errors[0]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["model.backbone=efficientnet_lite00"],
            "unknown backbone 'efficientnet_lite00'; did you mean efficientnet_lite0",
        ),
        (
            ["data.image_size=16"],
            "data.image_size=16 is too small for tf_efficientnet_lite0: it needs at least 32 px",
        ),
        (
            ["recipe=fine_tune", "+recipe.stages.1.image_size=24"],
            "stage 'unfrozen' image_size=24 is too small",
        ),
        (["recipe=fine_tune", "recipe.stages.1.lr=-0.1"], "positive numbers, got -0.1"),
        (["recipe=fine_tune", "recipe.stages.0.lr=0"], "positive numbers, got 0"),
        (["recipe=fine_tune", "recipe.stages.0.lr=fast"], "a number, a list or auto, got 'fast'"),
        (["data.augment=sideways"], "unknown data.augment 'sideways'"),
        (["recipe=fine_tune", "+recipe.stages.0.lr_mul=10"], "unknown key(s) lr_mul"),
        (["data.max_pixels=-5"], "data.max_pixels must be a positive integer"),
        # Offline (the hub's port closed, see below): at once, naming the offline choices.
        (["model=resnet34"], "cannot download pretrained weights for 'resnet34' (offline?)"),
        # An optional group, which Hydra itself would silently leave out.
        (
            ["experiment=dogcats"],
            "experiment=dogcats: no such experiment option; choose one of: digits, "
            "digits_quick, dogscats",
        ),
    ],
)
def test_config_mistakes(overrides, message, pets, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # a closed port: the hub is offline
    args = ["train", "data=folder", f"data.root={pets}", "data.num_workers=0", *overrides]
    error = assert_one_line_error(*run_main(args, tmp_path, capsys, monkeypatch), message)
    if "resnet34" in message:
        assert "model.weights=none" in error and "tf_efficientnet_lite0" in error
    assert_no_run_directory(tmp_path)


def without_valid(root):
    shutil.rmtree(root / "valid")


def folder_cases():
    """(name, how to spoil a copy of the pets folder, expected message)."""
    return [
        ("missing root", lambda root: shutil.rmtree(root), "is not a folder"),
        ("no train folder", lambda root: shutil.rmtree(root / "train"), "no train/ folder"),
        (
            "no images",
            lambda root: [p.unlink() for p in root.rglob("*.jpg")],
            "no images in",
        ),
        (
            "single class",
            lambda root: [shutil.rmtree(root / s / "dogs") for s in ("train", "valid")],
            "only one class folder",
        ),
        (
            "valid classes differ",
            lambda root: (root / "valid" / "dogs").rename(root / "valid" / "wolves"),
            "only in valid: ['wolves']; only in train: ['dogs']",
        ),
        (
            "nothing readable",
            lambda root: [p.write_bytes(b"") for p in (root / "train").rglob("*.jpg")],
            "none of the images in",
        ),
    ]


@pytest.mark.filterwarnings("ignore:class folder .* holds no images")
@pytest.mark.parametrize(
    "spoil, message", [c[1:] for c in folder_cases()], ids=[c[0] for c in folder_cases()]
)
def test_folder_mistakes(spoil, message, pets, tmp_path, capsys, monkeypatch):
    root = shutil.copytree(pets, tmp_path / "pets")
    spoil(root)
    args = ["train", "data=folder", f"data.root={root}", "data.num_workers=0"]
    assert_one_line_error(*run_main(args, tmp_path, capsys, monkeypatch), message)
    assert_no_run_directory(tmp_path)


def test_an_empty_class_folder_is_only_a_warning(pets, tmp_path, capsys, monkeypatch):
    root = shutil.copytree(pets, tmp_path / "pets")
    (root / "train" / "birds").mkdir()
    (root / "valid" / "birds").mkdir()
    # The run gets past the folder checks with a warning; the too-small image size then
    # stops it before any training, which keeps the test fast.
    args = ["train", "data=folder", f"data.root={root}", "data.image_size=8"]
    with pytest.warns(UserWarning, match=f"class folder {root / 'train' / 'birds'} holds no"):
        code, stderr = run_main(args, tmp_path, capsys, monkeypatch)
    assert_one_line_error(code, stderr, "data.image_size=8 is too small")
    assert_no_run_directory(tmp_path)


@pytest.mark.parametrize(
    "command, overrides, message",
    [
        ("evaluate", ["ckpt={junk}"], "not a checkpoint"),
        ("predict", ["ckpt={junk}", "input={pets}/test"], "not a checkpoint"),
        ("export", ["ckpt={junk}", "format=tflite"], "unknown export format 'tflite'"),
        ("export", ["ckpt={junk}"], "not a checkpoint"),
        ("lr-find", ["data=folder", "data.root={pets}/nowhere"], "is not a folder"),
    ],
)
def test_commands_refused_before_they_begin_leave_no_run_directory(
    command, overrides, message, pets, tmp_path, capsys, monkeypatch
):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"\x00 not a checkpoint at all")
    args = [command, *(o.format(junk=junk, pets=pets) for o in overrides)]
    assert_one_line_error(*run_main(args, tmp_path, capsys, monkeypatch), message)
    assert_no_run_directory(tmp_path)


def test_a_refused_run_keeps_an_existing_directory(pets, tmp_path, capsys, monkeypatch):
    """Only a directory the refused command made is removed: a named one that holds
    files of its own stays as it was."""
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("keep me")
    args = [
        "train",
        "data=folder",
        f"data.root={pets}",
        "data.image_size=8",
        f"hydra.run.dir={run_dir}",
    ]
    assert_one_line_error(*run_main(args, tmp_path, capsys, monkeypatch), "is too small")
    assert sorted(p.name for p in run_dir.iterdir()) == ["notes.txt"]


def test_the_help_examples_work_offline(monkeypatch, capsys):
    """Every example of `imgclf --help` and `imgclf train --help` builds its model with the
    hub unreachable."""
    from hydra import compose, initialize_config_dir

    from imgclf.cli import USAGE, config_dir, hydra_argv
    from imgclf.model.backbone import create_body

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    hydra_help = (config_dir() / "hydra" / "default.yaml").read_text()
    examples = [
        line.strip().split()
        for line in (USAGE + hydra_help).splitlines()
        if line.strip().startswith("imgclf train ")
    ]
    assert len(examples) >= 2
    for words in examples:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose("train", overrides=hydra_argv("train", words[2:]))
        assert create_body(cfg.model.backbone, cfg.model.weights) is not None, words
