"""One run per directory: the run lock under races, and a fresh run that would replace
another run's results."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys

import pytest
from helpers.cli import run_cli

from imgclf.commands.run_lock import HELD, LOCK_NAME, lock_run_directory, release_run_lock
from imgclf.commands.startup import refuse_another_run
from imgclf.errors import UserError

ROUNDS = 100
RACERS = 4


def dead_pid() -> int:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], stdout=-1)
    return int(gone.stdout)


def race(directories, ready, start, done, results) -> None:
    """One racer: at each round, try to take the round's lock at the same moment as the
    others, say whether it got it, hold it until every racer has tried, then let it go."""
    with open(os.devnull, "w") as quiet:
        sys.stderr = quiet  # the stale-lock warnings
        ready.wait(timeout=60)
        take_turns(directories, start, done, results)


def take_turns(directories, start, done, results) -> None:
    for directory in directories:
        start.wait()
        try:
            lock_run_directory(directory)
        except UserError:
            results.put((str(directory), None))
        else:
            owner = json.loads((directory / LOCK_NAME).read_text())["pid"]
            results.put((str(directory), owner if owner == os.getpid() else -1))
        done.wait()
        if lock_name_held(directory):
            release_run_lock(directory / LOCK_NAME)
        done.wait()


def lock_name_held(directory) -> bool:
    return (directory / LOCK_NAME).absolute() in HELD


@pytest.mark.parametrize("case", ["fresh", "stale", "live"])
def test_exactly_one_process_holds_a_run_lock_under_races(case, tmp_path):
    directories = [tmp_path / f"run{i}" for i in range(ROUNDS)]
    dead = dead_pid()
    live = []
    for directory in directories:
        directory.mkdir()
        if case == "stale":  # a killed run's file: a PID that no longer runs, no OS lock
            owner = {"pid": dead, "host": socket.gethostname()}
            (directory / LOCK_NAME).write_text(json.dumps(owner))
    context = multiprocessing.get_context("fork")
    ready, start, done = context.Event(), context.Barrier(RACERS), context.Barrier(RACERS)
    results = context.Queue()
    racers = [
        context.Process(target=race, args=(directories, ready, start, done, results))
        for _ in range(RACERS)
    ]
    for racer in racers:
        racer.start()
    if case == "live":  # this process runs there: started after the racers, not shared
        live = [lock_run_directory(directory) for directory in directories]
    ready.set()
    got = [results.get(timeout=120) for _ in range(ROUNDS * RACERS)]
    for racer in racers:
        racer.join(timeout=60)
    assert [racer.exitcode for racer in racers] == [0] * RACERS
    holders = {str(d): [] for d in directories}
    for directory, pid in got:
        if pid is not None:
            holders[directory].append(pid)
    expected = 0 if case == "live" else 1
    counts = [len(pids) for pids in holders.values()]
    assert counts == [expected] * ROUNDS  # and each holder's PID is the one in the file
    assert all(pid > 0 for pids in holders.values() for pid in pids)
    for lock in live:
        release_run_lock(lock)
    # Released locks leave no file behind.
    assert not [d for d in directories if (d / LOCK_NAME).exists()]


def test_a_lock_held_by_a_process_that_was_killed_is_free_at_once(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from imgclf.commands.run_lock import lock_run_directory; "
            "lock_run_directory(Path(sys.argv[1])); print('held', flush=True); time.sleep(600)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(UserError, match=rf"in use by another run \(pid {holder.pid} on "):
            lock_run_directory(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    lock = lock_run_directory(tmp_path)  # the kernel let it go; the file names the dead PID
    assert json.loads(lock.read_text())["pid"] == os.getpid()
    release_run_lock(lock)


def test_a_fresh_run_never_replaces_another_runs_results(tmp_path):
    (tmp_path / "empty").mkdir()
    refuse_another_run(tmp_path / "empty")  # nothing there: a new run may start
    started = tmp_path / "started"
    (started / "checkpoints").mkdir(parents=True)
    (started / "config.yaml").write_text("a run that failed before its first checkpoint\n")
    refuse_another_run(started)
    for name in ("checkpoints/last.ckpt", "summary.json"):
        run = tmp_path / name.replace("/", "_")
        (run / "checkpoints").mkdir(parents=True)
        (run / name).write_text("{}")
        with pytest.raises(UserError) as refused:
            refuse_another_run(run)
        assert str(refused.value) == (
            f"{run} already holds a run ({name.split('/')[-1]}): continue it with "
            f"resume={run}, train into a new directory (hydra.run.dir=NEW_DIR), or replace "
            "it with exist_ok=true"
        )


def test_train_into_a_finished_run_is_refused_before_anything_is_written(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    files = {"summary.json": b'{"best_valid_acc": 0.9}', "checkpoints/best.ckpt": b"weights"}
    for name, data in files.items():
        (run / name).write_bytes(data)
    result = run_cli("train", f"hydra.run.dir={run}", "data.num_workers=0", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        f"error: {run} already holds a run (best.ckpt, summary.json): continue it with "
        f"resume={run}, train into a new directory (hydra.run.dir=NEW_DIR), or replace it "
        "with exist_ok=true"
    ]
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*")) == [
        "checkpoints",
        "checkpoints/best.ckpt",
        "summary.json",
    ]
    assert {name: (run / name).read_bytes() for name in files} == files


def test_a_ctrl_c_while_the_lock_is_taken_comes_once_it_is_held(tmp_path, monkeypatch):
    """A Ctrl-C between creating run.lock and registering it left the file behind (CI
    caught it); now it is raised when the lock is held, and the exit handlers remove it."""
    from imgclf.commands import run_lock

    take = run_lock.take_lock

    def interrupted(lock, directory):
        os.kill(os.getpid(), signal.SIGINT)  # arrives before the file is even created
        return take(lock, directory)

    monkeypatch.setattr(run_lock, "take_lock", interrupted)
    with pytest.raises(KeyboardInterrupt):
        lock_run_directory(tmp_path)
    lock = tmp_path.absolute() / LOCK_NAME
    assert lock in HELD and lock.exists()
    release_run_lock(lock)
    assert not lock.exists()
