"""What a resume may change: the resolved config of the resumed run against the one the run
was started with (its config.yaml).

A run continues with the model, data, recipe and optimisation it began with; only where it
runs and what it reports may change. Anything else (a layer, an image size, a stage, a
learning rate, another data folder) would mix two runs in one directory, so it is refused
with one line that names the key and both values, before any of the run's files is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from imgclf.errors import UserError

# Keys (and the sections under them) a resume may change: where the run runs, where it
# writes its logs and caches, what it reports. Documented in the README, "Resuming".
RESUMABLE = (
    "resume",
    "exist_ok",
    "tags",
    "logger",
    "paths",
    "data.num_workers",
    "data.pin_memory",
    "data.persistent_workers",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.strategy",
    "trainer.sync_batchnorm",
    "trainer.precision",
    "trainer.default_root_dir",
    "trainer.log_every_n_steps",
    "callbacks.default.console",
    "callbacks.default.run_dir",
)
ABSENT = "(not set)"


def flatten(tree, prefix: str = "") -> dict[str, object]:
    """Dotted key -> leaf value (lists by index, as Hydra overrides name them)."""
    if isinstance(tree, Mapping):
        items = [(str(k), v) for k, v in tree.items()]
    elif isinstance(tree, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(tree)]
    else:
        return {prefix: tree}
    if not items:
        return {prefix: tree}
    leaves: dict[str, object] = {}
    for key, value in items:
        leaves.update(flatten(value, f"{prefix}.{key}" if prefix else key))
    return leaves


def resumable(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in RESUMABLE)


def config_changes(saved, now, prefix: str = "") -> list[tuple[str, object, object]]:
    """(key, the run's value, the value now) for every difference a resume may not make,
    at the deepest key where the two differ (a list that changes length: the whole list)."""
    if prefix and resumable(prefix):
        return []
    if isinstance(saved, Mapping) and isinstance(now, Mapping):
        keys = sorted(set(map(str, saved)) | set(map(str, now)))
        pairs = [(key, saved.get(key, ABSENT), now.get(key, ABSENT)) for key in keys]
    elif isinstance(saved, list) and isinstance(now, list) and len(saved) == len(now):
        pairs = [(str(i), a, b) for i, (a, b) in enumerate(zip(saved, now, strict=True))]
    else:
        return [] if saved == now else [(prefix, saved, now)]
    changes = []
    for key, before, after in pairs:
        changes += config_changes(before, after, f"{prefix}.{key}" if prefix else key)
    return changes


def check_resume_config(run_dir: Path | None, now: Mapping) -> None:
    """A one-line error if the config `now` changes a key of the run in `run_dir` that a
    resume may not change; nothing to compare for a checkpoint outside a run directory."""
    saved_file = run_dir / "config.yaml" if run_dir else None
    if saved_file is None or not saved_file.is_file():
        return
    saved = yaml.safe_load(saved_file.read_text()) or {}
    changes = config_changes(saved, now)
    if changes:
        key, before, after = changes[0]
        more = f" (and {len(changes) - 1} more)" if len(changes) > 1 else ""
        raise UserError(
            f"resume: {key} was {shown(before)} in {run_dir} and is {shown(after)} now{more}; a resume "
            "may change only where the run runs and logs (see README, Resuming): resume "
            f"without it, or start a new run with it"
        )


def shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
