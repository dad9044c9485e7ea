"""Command-line overrides before Hydra sees them: `~` and `$VAR` expanded in values, and
for the commands that take a trained run (`ckpt=`), the run's own data settings filled in.

Hydra's override grammar rejects an unquoted `~` (`data.root=~/x` fails to parse), and the
shell expands `~` only at the start of a word or after `name=` for valid shell variable
names (`input=~/x` yes, `data.root=~/x` no). So we expand it ourselves, in every value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

# lr-find re-uses these overrides of a trained run (`ckpt=<run>`): it builds the data,
# the model and the recipe as the run did.
LR_FIND_KEYS = ("data", "experiment", "model", "recipe", "seed", "paths")
# evaluate, predict, serve and export take the run's resolved data section
# (`<run>/config.yaml`) and these values; the classes, image size and preprocessing come from the checkpoint itself.
RESOLVED_KEYS = ("seed", "paths.data_dir", "paths.log_dir")
# The data config group of each label source (configs/data/), by its data module.
DATA_GROUPS = {"imgclf.data.CsvDataModule": "csv", "imgclf.data.NameDataModule": "name_re"}
ENV_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)(?![A-Za-z0-9_.:])")
# Characters Hydra takes in an unquoted value (besides letters and digits).
PLAIN_VALUE = re.compile(r"^[\w/\-+.:@%*?|$]*$")


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def expand_value(value: str) -> str:
    """`~` and `~user` at the start, and `$NAME` of a set environment variable, expanded.
    Hydra's own `${...}` interpolations are left alone."""
    if value.startswith("~"):
        value = os.path.expanduser(value)
    return ENV_VAR.sub(lambda m: os.environ.get(m.group(1), m.group(0)), value)


def quoted(value: str) -> str:
    """The value as Hydra parses it back: as it is when plain, else single-quoted."""
    if PLAIN_VALUE.match(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def expand_override(override: str) -> str:
    """One `key=value` with its value (or each item of a `[a,b]` list) expanded."""
    if "=" not in override:
        return override
    key, value = override.split("=", 1)
    if value.startswith("[") and value.endswith("]"):
        items = [i.strip() for i in value[1:-1].split(",")] if value[1:-1].strip() else []
        expanded = [expand_value(i) for i in items]
        if expanded == items:
            return override
        return f"{key}=[{','.join(quoted(i) for i in expanded)}]"
    expanded = expand_value(value)
    return override if expanded == value else f"{key}={quoted(expanded)}"


def expand_paths(argv: list[str]) -> list[str]:
    """Every override with `~` and `$VAR` expanded (options such as --help untouched)."""
    return [arg if arg.startswith("-") else expand_override(arg) for arg in argv]


def trained_run_dir(ckpt: str) -> Path | None:
    """The training run directory of `ckpt=`: the directory itself, or `<run>` for a
    checkpoint at `<run>/checkpoints/x.ckpt`; None when it holds no saved config."""
    path = Path(ckpt).expanduser()
    for candidate in (path, path.parent.parent):
        if (candidate / "config.yaml").is_file() and (candidate / ".hydra").is_dir():
            return candidate
    return None


def carried(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def plain(value) -> str:
    """A resolved config value written as a Hydra override value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return repr(value)
    return quoted(str(value))


def resolved_overrides(run_dir: Path) -> list[str]:
    """The run's data settings as overrides: `data=folder` and every resolved `data.*`
    value (whatever group or experiment set them), plus the seed and paths."""
    config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    data = config.get("data") or {}
    found = [f"data={DATA_GROUPS.get(data.get('_target_'), 'folder')}"] if data else []
    found += [f"data.{key}={plain(value)}" for key, value in data.items() if key != "_target_"]
    for key in RESOLVED_KEYS:
        section, _, name = key.partition(".")
        value = config.get(section)
        value = value.get(name) if name and isinstance(value, dict) else value
        if value is not None:
            found.append(f"{key}={plain(value)}")
    return found


def saved_overrides(run_dir: Path) -> list[str]:
    """The overrides the run was started with (`<run>/.hydra/overrides.yaml`) that say how
    it built its data, model and recipe."""
    saved_file = run_dir / ".hydra" / "overrides.yaml"
    saved = yaml.safe_load(saved_file.read_text()) if saved_file.is_file() else []
    return [o for o in saved or [] if carried(override_key(o), LR_FIND_KEYS)]


def run_overrides(argv: list[str], command: str) -> list[str]:
    """`argv` with the trained run's settings put first, so that `imgclf evaluate
    ckpt=<run>` needs nothing else: for evaluate, predict, serve and export its resolved
    data section, for lr-find its own overrides (data, model, recipe). Overrides given now
    replace them key by key; a group choice given now (`data=folder`, `experiment=...`)
    replaces all of the run's values under that group."""
    values = [o.split("=", 1)[1] for o in argv if "=" in o and override_key(o) == "ckpt"]
    run_dir = trained_run_dir(values[-1].strip("'\"")) if values else None
    if run_dir is None or command not in ("evaluate", "predict", "serve", "export", "lr-find"):
        return argv
    found = saved_overrides(run_dir) if command == "lr-find" else resolved_overrides(run_dir)
    given = {override_key(o) for o in argv}
    groups = {key for key in given if "." not in key}
    if "experiment" in given:
        groups.add("data")
    kept = [
        o
        for o in found
        if override_key(o) not in given and override_key(o).split(".")[0] not in groups
    ]
    return kept + list(argv)
