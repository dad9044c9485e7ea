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
        # An optional group, which Hydra itself would silently leave out.
        (
            ["experiment=dogcats"],
            "experiment=dogcats: no such experiment option; choose one of: digits, "
            "digits_quick, dogscats",
        ),
    ],
)
def test_config_mistakes(overrides, message, pets, tmp_path, capsys, monkeypatch):
    args = ["train", "data=folder", f"data.root={pets}", "data.num_workers=0", *overrides]
    assert_one_line_error(*run_main(args, tmp_path, capsys, monkeypatch), message)


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
