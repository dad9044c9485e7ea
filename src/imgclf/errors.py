"""The exceptions the CLI turns into a one-line message instead of a traceback."""

import errno


class UserError(Exception):
    """A mistake in the user's input (folders, config, files) that we can explain in one line."""


class TrainingInterrupted(Exception):
    """A signal stopped training; `message` says what was saved and how to resume, and
    `exit_code` is the shell's status for that signal (130 for SIGINT, 143 for SIGTERM).
    `every_rank`: under DDP all ranks stopped together after the same batch."""

    def __init__(self, message: str, exit_code: int = 130, every_rank: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.every_rank = every_rank


def required_callback(trainer, kind: type, needed_by: str):
    """The Trainer's callback of type `kind`; a one-line UserError naming it if missing."""
    for callback in trainer.callbacks:
        if isinstance(callback, kind):
            return callback
    raise UserError(
        f"{needed_by} needs the {kind.__module__}.{kind.__qualname__} callback in the "
        "Trainer (imgclf.callbacks.default_callbacks includes it)"
    )


def unreadable_file_message(path, err: BaseException, what: str = "a checkpoint") -> str:
    """One true line for a file `torch.load(weights_only=True)` (or safetensors) refused.

    A pickle that names a function or class (which unpickling would call: code) is
    "refused: contains code"; anything else it could not parse is "not <what>" (random bytes,
    a truncated or damaged file). Torch's own advice to load with `weights_only=False` is
    never repeated: that would run the code.
    """
    import re

    named = re.search(r"GLOBAL ([\w.]+)", str(err))
    code = named.group(1) if named else pickled_code(path)
    if code is not None:
        call = f" (it would call {code} when loaded)" if code else ""
        return (
            f"refusing to load {path}: refused: contains code{call}; only tensors and plain "
            "data are loaded"
        )
    if isinstance(err, (PermissionError, IsADirectoryError)):
        return f"cannot read {path}: {err.strerror}"
    return f"{path} is not {what} (not a file torch.save or safetensors wrote, or a damaged one)"


def pickled_code(path) -> str | None:
    """The function or class a plain pickle file would call when loaded ("" if unnamed),
    found by reading its opcodes without running any; None if it names none or is no pickle."""
    import pickletools

    strings: list[str] = []
    try:
        with open(path, "rb") as stream:
            for opcode, arg, _ in pickletools.genops(stream):
                if opcode.name in ("GLOBAL", "INST"):
                    return str(arg).replace(" ", ".")
                if opcode.name == "STACK_GLOBAL":
                    return ".".join(strings[-2:])
                if isinstance(arg, str):
                    strings.append(arg)
    except Exception:  # not a pickle (random bytes, a zip archive torch could not read)
        return None
    return None


def one_line(err: BaseException) -> str:
    """A UserError's message as one line. Raised in a DataLoader worker, it comes back
    wrapped by torch ("Caught UserError in DataLoader worker process 0. Original
    Traceback ..."): the message is the last line of that traceback."""
    text = str(err).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        return last.split(": ", 1)[1] if ": " in last else last
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def no_space_message(err: BaseException) -> str | None:
    """One line for a write that failed for lack of space (ENOSPC), naming the file when the
    OS said which; None for any other error. Checkpoints say more (the previous one is kept:
    `imgclf.training.checkpoints.atomic_torch_save`); this covers every other file."""
    if not (isinstance(err, OSError) and err.errno == errno.ENOSPC):
        return None
    where = f" writing {err.filename}" if err.filename else ""
    return f"no space left on device{where}; free some space and resume"


def missing_setting_message(err: BaseException) -> str | None:
    """One line for a required setting left unset (a `???` in the configs, such as
    `data.root` of `data=folder`), naming the key; None for any other error. OmegaConf
    raises it only when the value is read, so Hydra would print it as a stack trace."""
    from omegaconf.errors import MissingMandatoryValue

    if not isinstance(err, MissingMandatoryValue):
        return None
    key = getattr(err, "full_key", None) or "a required setting"
    return f"{key} is not set and has no default: add {key}=... to the command"
