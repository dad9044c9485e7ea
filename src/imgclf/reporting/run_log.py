"""The run's log file (`<run>/cli.log`): Hydra's job log, held back until the run starts.

Hydra opens its log file in the run directory before the command runs. A command that is then
refused (the directory is in use by another run, a `resume=` that does not fit the checkpoint)
must leave that directory as it was, so `configs/hydra/default.yaml` gives Hydra this handler:
it keeps the records in memory until the command calls `start_run_log()`, then writes them
and everything after. A command that never starts its run neither creates nor appends to
the file.
"""

from __future__ import annotations

import logging


class RunLogFile(logging.FileHandler):
    """A `logging.FileHandler` (append mode) that holds records until `start()`."""

    def __init__(self, filename, mode: str = "a", encoding=None, delay: bool = True, errors=None):
        # delay: the file is opened at the first write, so holding back creates nothing.
        super().__init__(filename, mode, encoding, delay=True, errors=errors)
        self.held: list[logging.LogRecord] | None = []

    def emit(self, record: logging.LogRecord) -> None:
        if self.held is None:
            super().emit(record)
        else:
            record.msg, record.args = record.getMessage(), None  # as it reads now
            self.held.append(record)

    def start(self) -> None:
        held, self.held = self.held or [], None
        if self.stream is None:
            self.stream = self._open()  # the file exists from the start, as Hydra's would
        for record in held:
            super().emit(record)


def start_run_log() -> None:
    """The run has started: write the held records of every `RunLogFile`, then go on writing."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, RunLogFile):
            handler.start()
