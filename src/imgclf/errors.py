"""The one exception type the CLI turns into a one-line error instead of a traceback."""


class UserError(Exception):
    """A mistake in the user's input (folders, config, files) that we can explain in one line."""


class TrainingInterrupted(Exception):
    """Ctrl-C stopped training; `message` says what was saved and how to resume (exit 130)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
