"""Running `imgclf` as a user does, in a subprocess, and reading what it printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a test's `imgclf` subprocess: offline, no update checks."""
    return {**os.environ, "WANDB_MODE": "offline", "NO_ALBUMENTATIONS_UPDATE": "1", **(extra or {})}


def start_cli(*args: str, cwd: Path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen):
    """`imgclf <args>` started in the background, for tests that signal or kill it."""
    return subprocess.Popen(
        [sys.executable, "-m", "imgclf.cli", *args],
        cwd=cwd,
        env=cli_env(),
        stdout=stdout,
        stderr=stderr,
        **popen,
    )


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`imgclf <args>` in a subprocess, offline, as a user runs it (`env`: more variables)."""
    return subprocess.run(
        [sys.executable, "-m", "imgclf.cli", *args],
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_dir_of(result: subprocess.CompletedProcess) -> Path:
    """The run directory: the last line a successful command prints."""
    return Path(result.stdout.strip().splitlines()[-1])


def small_run_overrides(root: Path, workdir: Path, batch_size: int = 4) -> list[str]:
    """Hydra overrides for a quick run on a generated folder: 32 px, no workers, and logs
    and feature caches kept under `workdir`."""
    return [
        "data=folder",
        f"data.root={root}",
        "data.image_size=32",
        f"data.batch_size={batch_size}",
        "data.num_workers=0",
        f"paths.log_dir={workdir / 'logs'}",
        f"paths.cache_dir={workdir / 'cache'}",
    ]


def run_small(
    command: str, root: Path, workdir: Path, *overrides: str
) -> tuple[subprocess.CompletedProcess, Path, dict]:
    """`imgclf <command>` with `small_run_overrides` and `overrides`, in `workdir`; it must
    succeed. Returns its result, its run directory and that directory's summary.json."""
    result = run_cli(command, *small_run_overrides(root, workdir), *overrides, cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = run_dir_of(result)
    return result, run_dir, json.loads((run_dir / "summary.json").read_text())
