"""User mistakes are one line on stderr and exit status 2: config values checked by type and
range before anything starts, and every error raised while building an object from the
config (data, model, trainer, loggers, callbacks) named by its key."""

from __future__ import annotations

import sys

import pytest
import torch
from helpers.folders import make_image_folder

from imgclf.cli import main


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("cfg") / "pets", n_train=2, n_valid=1, size=32)


def one_error_line(argv, tmp_path, capsys, monkeypatch) -> str:
    monkeypatch.setattr(sys, "argv", ["imgclf"])
    monkeypatch.setenv("IMGCLF_COMMAND", "")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line != "Seed set to 42"]
    assert exit_info.value.code == 2, err[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-3000:]
    return lines[0].removeprefix("error: ")


def train_argv(pets, tmp_path, *overrides):
    return [
        "train",
        "data=folder",
        f"data.root={pets}",
        "data.image_size=32",
        "data.num_workers=0",
        "logger=csv",
        f"paths.log_dir={tmp_path / 'logs'}",
        *overrides,
    ]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "data.image_size=100000",
            "data.image_size=100000: a 100000x100000 input is above data.max_pixels "
            "100,000,000 (the largest image the data may hold)",
        ),
        (
            "recipe.stages.1.image_size=20000",
            "recipe.stages.1.image_size=20000: a 20000x20000 input is above data.max_pixels",
        ),
        ("recipe.stages.0.epochs=many", "recipe.stages.0.epochs='many': must be a whole number"),
        ("+recipe.stages.1.train_bn=3", "recipe.stages.1.train_bn=3: must be true or false"),
        ("exist_ok=yes", "exist_ok='yes': must be true or false"),
        ("trainer.precision=7", "trainer.precision=7: Precision 7 is invalid."),
        ("model.head_dropout=2.0", "model.head_dropout=2.0: dropout probability has to be"),
        (
            "model.head_hidden=[a]",
            "model.head_hidden=['a']: must be a list of whole numbers or a whole number",
        ),
        ("data.augment=[a]", "data.augment=['a']: must be text"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_key(
    override, message, pets, tmp_path, capsys, monkeypatch
):
    line = one_error_line(train_argv(pets, tmp_path, override), tmp_path, capsys, monkeypatch)
    assert line.startswith(message), line
    assert not list((tmp_path / "logs").rglob("config.yaml"))  # nothing of a run written


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_the_gpu_trainer_without_a_gpu_is_one_line(pets, tmp_path, capsys, monkeypatch):
    line = one_error_line(train_argv(pets, tmp_path, "trainer=gpu"), tmp_path, capsys, monkeypatch)
    assert line == "trainer.accelerator=gpu: No supported gpu backend found!"


def test_export_into_a_folder_is_one_line_before_any_work(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "exports"
    folder.mkdir()
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(b"not read: the output is checked first")
    argv = ["export", f"ckpt={checkpoint}", f"out={folder}", f"paths.log_dir={tmp_path / 'l'}"]
    line = one_error_line(argv, tmp_path, capsys, monkeypatch)
    assert line == f"cannot write export out= {folder}: it is a folder; give a file name"
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [("-1", "tta.n=-1: must be a whole number >= 0 or auto"), ("many", "tta.n='many'")],
)
def test_tta_passes_are_a_count_or_auto(value, message, tmp_path, capsys, monkeypatch):
    argv = ["predict", f"tta.n={value}", "ckpt=none", "input=none"]
    assert one_error_line(argv, tmp_path, capsys, monkeypatch).startswith(message)


def test_tta_auto_is_none_for_one_image_and_four_for_a_set():
    from imgclf.commands.startup import tta_count

    assert tta_count("auto", one_image=True) == 0 and tta_count("auto") == 4
    assert tta_count(2, one_image=True) == 2 and tta_count(0) == 0
