"""Which task a run trains: `task=auto` (multi-label when any image has several labels),
`task=single` or `task=multi`."""

from __future__ import annotations

from imgclf.errors import UserError
from imgclf.task.multi import MultiLabel
from imgclf.task.single import SingleLabel

TASKS = {"single": SingleLabel, "multi": MultiLabel}


def task_named(name: str):
    """The task object of a name that a checkpoint or config holds."""
    if name not in TASKS:
        raise UserError(f"task={name!r}: choose one of auto, {', '.join(TASKS)}")
    return TASKS[name]()


def choose_task(setting: str | None, multi_label_data: bool) -> str:
    """The task name for `setting` (auto, single, multi) and data that has (or has not)
    rows with several labels; single-label training on such data is a one-line error."""
    setting = setting or "auto"
    if setting == "auto":
        return "multi" if multi_label_data else "single"
    task_named(setting)
    if setting == "single" and multi_label_data:
        raise UserError(
            "task=single, but some images have several labels: use task=multi (or auto), "
            "or give each image one label"
        )
    return setting
