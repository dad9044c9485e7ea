"""One run per directory: an OS lock (`fcntl.flock`) on `run.lock`, held on an open file for
as long as the command runs.

The kernel takes the lock atomically and releases it when the process ends, however it
ends (a SIGKILL, a crash, a lost machine's reboot), so a killed run never leaves a lock that
needs judging: the file may stay, the lock does not. The file's text (PID and host) is only
for the error message. A released lock file is removed while still locked; a process that
locked a file just removed sees that its file is no longer the directory's `run.lock` and
tries again, so two processes never both hold the lock of one directory.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from imgclf.errors import UserError

LOCK_NAME = "run.lock"
# Locks this process holds: path -> open descriptor (a second command of the same process,
# through the Python API or in tests, takes its own earlier lock back).
HELD: dict[Path, int] = {}


def lock_run_directory(directory: Path) -> Path:
    """Hold `directory/run.lock` until this process ends or `release_run_lock`: a second
    command on the same directory stops at once with a one-line error naming the owner."""
    lock = Path(directory).absolute() / LOCK_NAME
    if lock in HELD:
        write_owner(HELD[lock], lock)
        return lock
    with ctrl_c_deferred():  # a Ctrl-C between creating the file and holding it left it
        return take_lock(lock, directory)


def take_lock(lock: Path, directory: Path) -> Path:
    for _ in range(100):  # each retry follows a holder that released and removed its file
        handle = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = read_owner(handle)
            os.close(handle)
            raise UserError(in_use_message(lock, owner)) from None
        if same_file(handle, lock):
            write_owner(handle, lock)
            HELD[lock] = handle
            atexit.register(release_run_lock, lock, os.getpid())
            return lock
        os.close(handle)  # locked a file its holder had just removed
    raise UserError(f"cannot take the lock {lock}: other runs keep starting in {directory}")


@contextlib.contextmanager
def ctrl_c_deferred():
    """Run the block whole: a SIGINT that arrives in it is raised again when it ends (then
    the lock is registered, and exit handlers remove it). Only the main thread can."""
    if threading.current_thread() is not threading.main_thread() or not callable(
        signal.getsignal(signal.SIGINT)
    ):
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)


def same_file(handle: int, lock: Path) -> bool:
    """Whether the open, locked `handle` is still the file at `lock`."""
    try:
        now = os.stat(lock)
    except FileNotFoundError:
        return False
    mine = os.fstat(handle)
    return (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino)


def read_owner(handle: int) -> dict:
    """The PID and host a lock file names ({} if empty or unreadable)."""
    try:
        owner = json.loads(os.pread(handle, 4096, 0) or b"{}")
        return owner if isinstance(owner, dict) else {}
    except (OSError, ValueError):
        return {}


def write_owner(handle: int, lock: Path) -> None:
    """Name this process in the file; warn when it named another one (a killed run)."""
    previous, me = read_owner(handle), {"pid": os.getpid(), "host": socket.gethostname()}
    if previous and previous != me:
        print(
            f"warning: taking over the stale lock {lock} of pid {previous.get('pid')} on "
            f"{previous.get('host')}",
            file=sys.stderr,
        )
    os.ftruncate(handle, 0)
    os.pwrite(handle, json.dumps(me).encode(), 0)


def in_use_message(lock: Path, owner: dict) -> str:
    who = f"pid {owner.get('pid')} on {owner.get('host')}" if owner else "a process"
    return (
        f"{lock.parent} is in use by another run ({who}); wait for it to end, or use another "
        "directory"
    )


def release_run_lock(lock: Path, pid: int | None = None) -> None:
    """Remove `lock` (still locked, so no one takes a file about to go) and let it go.
    Not in a forked child (DataLoader workers): `pid` is the process that took it."""
    if pid is not None and os.getpid() != pid:
        return
    handle = HELD.pop(Path(lock).absolute(), None)
    if handle is None:
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(lock)
    os.close(handle)
