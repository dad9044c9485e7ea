"""Every `imgclf ...` command in the code blocks of the README and of every page in docs/ is
one the real CLI accepts: its overrides go through the CLI's own argument handling (`~` and
`$HOME` expanded, a run's settings filled in) and Hydra composes the command's config from
them. Every `make <target>` they show is a target of the Makefile."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from imgclf.cli import HYDRA_COMMANDS, config_dir, hydra_argv
from imgclf.commands.config_check import sweep_checked

ROOT = Path(__file__).resolve().parents[1]
# Placeholders the documentation uses for things only a user has.
PLACEHOLDERS = {"<run>": "2026-11-23_01-53-59", "<image, folder or glob>": "photo.jpg"}


def doc_files() -> list[Path]:
    """The README and every page of the documentation site."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def docs_text() -> str:
    return "\n".join(path.read_text() for path in doc_files())


def shell_lines() -> list[str]:
    """The lines of every ```bash block of the documentation (continuations joined, comments
    cut), each once."""
    blocks = re.findall(r"^\s*```bash\n(.*?)```", docs_text(), flags=re.S | re.M)
    lines = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            lines.append(line.split(" # ")[0].strip())
    return list(dict.fromkeys(line for line in lines if line))


def readme_commands() -> list[str]:
    """The documented command lines that run `imgclf` or `make train`."""
    pattern = r"(^|/| -m )imgclf(\.cli)? |^make train ARGS="
    return [line for line in shell_lines() if re.search(pattern, line)]


def command_and_overrides(line: str) -> tuple[str, list[str]]:
    for placeholder, value in PLACEHOLDERS.items():
        line = line.replace(placeholder, value)
    words = shlex.split(line)
    if words[0] == "make":  # make train ARGS="..." runs `imgclf train experiment=digits ...`
        return "train", ["experiment=digits", *words[2].split("=", 1)[1].split()]
    start = next(i for i, w in enumerate(words) if w.endswith("imgclf") or w == "imgclf.cli")
    return words[start + 1], [w for w in words[start + 2 :] if w != "..."]


def test_the_readme_has_commands_for_every_step():
    commands = {command_and_overrides(line)[0] for line in readme_commands()}
    assert {"train", "lr-find", "evaluate", "predict", "export"} <= commands


def test_every_page_of_the_docs_is_read():
    names = {path.name for path in doc_files()}
    assert {"README.md", "index.md", "your-data.md", "after-training.md"} <= names
    # Commands from a page that only the docs site has are composed too.
    assert any("trainer=ddp_cpu" in line for line in readme_commands())


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), flags=re.M))


def test_every_documented_make_target_exists():
    targets = [line.split()[1] for line in shell_lines() if line.startswith("make ")]
    assert {"train", "test", "docs", "bench"} <= set(targets)
    assert set(targets) <= makefile_targets(), set(targets) - makefile_targets()


def fake_run(workdir: Path, name: str) -> Path:
    """One of the README's example run directories, as `imgclf train` leaves it (empty
    checkpoints: these tests only compose configs)."""
    run = workdir / "logs" / "train" / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").touch()
    (run / "checkpoints" / "best.ckpt").touch()
    (run / ".hydra").mkdir()
    (run / ".hydra" / "overrides.yaml").write_text("- data=folder\n- data.root=/srv/pets\n")
    config = {
        "data": {"_target_": "imgclf.data.FolderDataModule", "root": "/srv/pets", "seed": 42},
        "seed": 42,
        "paths": {"data_dir": "data", "log_dir": "logs"},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    return run


@pytest.mark.parametrize("line", readme_commands())
def test_every_readme_command_composes(line, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for name in set(re.findall(r"logs/train/([\w-]+)", docs_text())):
        fake_run(tmp_path, name)
    command, overrides = command_and_overrides(line)
    if command == "demo":
        return
    _, config_name = HYDRA_COMMANDS[command]
    multirun = {"-m", "--multirun"} & set(overrides)
    argv = hydra_argv(command, [o for o in overrides if o not in multirun])
    assert not any("~" in arg.split("=", 1)[-1] for arg in argv), argv
    if multirun:  # a search: the CLI's own check (fixed values, the keys it searches)
        cfg = sweep_checked(config_dir(), config_name, argv)
        assert cfg.hydra.sweeper.params
    else:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(config_name, overrides=argv)
    assert cfg.task_name == command.replace("-", "_")
    if "data.root=~" in line:
        assert str(cfg.data.root).startswith(str(tmp_path))
    elif command in ("evaluate", "predict") and "ckpt=logs/train/" in line:
        assert cfg.data.root == "/srv/pets"  # the run's own data
