"""The exceptions the CLI turns into a one-line message instead of a traceback."""


class UserError(Exception):
    """A mistake in the user's input (folders, config, files) that we can explain in one line."""


class TrainingInterrupted(Exception):
    """Ctrl-C stopped training; `message` says what was saved and how to resume (exit 130)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def required_callback(trainer, kind: type, needed_by: str):
    """The Trainer's callback of type `kind`; a one-line UserError naming it if missing."""
    for callback in trainer.callbacks:
        if isinstance(callback, kind):
            return callback
    raise UserError(
        f"{needed_by} needs the {kind.__module__}.{kind.__qualname__} callback in the "
        "Trainer (imgclf.callbacks.default_callbacks includes it)"
    )
