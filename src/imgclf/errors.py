"""The one exception type the CLI turns into a one-line error instead of a traceback."""


class UserError(Exception):
    """A mistake in the user's input (folders, config, files) that we can explain in one line."""
