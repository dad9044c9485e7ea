"""Offline and stopped early: one line that says what happened and what was saved."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

from helpers.cli import run_cli, small_run_overrides, start_cli
from helpers.folders import make_image_folder


def closed_port() -> int:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_hub_model_offline_is_one_line_at_once(tmp_path):
    root = make_image_folder(tmp_path / "pets", n_train=2, n_valid=1, size=32)
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}", "HF_HUB_OFFLINE": ""}
    env["HF_HOME"] = str(tmp_path / "hf")  # an empty cache
    result = run_cli(
        "train", *small_run_overrides(root, tmp_path), "model=resnet34", cwd=tmp_path, env=env
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.strip().splitlines() if line != "Seed set to 42"]
    assert len(lines) == 1, result.stderr[-2000:]  # no retries, no notices
    assert lines[0].startswith("error: cannot download pretrained weights for 'resnet34' (")
    assert not list((tmp_path / "logs").rglob("*.ckpt"))


def test_a_stop_during_set_up_says_nothing_was_saved(tmp_path):
    root = make_image_folder(tmp_path / "pets", n_train=40, n_valid=10, size=32)
    args = [*small_run_overrides(root, tmp_path), "logger=csv"]
    with open(tmp_path / "stderr.txt", "w") as stderr:
        process = start_cli("train", *args, cwd=tmp_path, stderr=stderr)
        try:
            lock = wait_for(lambda: next((tmp_path / "logs").rglob("run.lock"), None), process)
            process.send_signal(signal.SIGINT)  # the run directory is locked: set-up runs
            process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    lines = (tmp_path / "stderr.txt").read_text().strip().splitlines()
    assert process.returncode == 130, lines[-20:]
    assert lines[-1] == (
        "interrupted before training began: nothing was saved; run the command again"
    )
    assert not list(lock.parent.rglob("*.ckpt")) and not lock.exists()


def wait_for(found, process, seconds: float = 300) -> Path:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        value = found()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"not seen before the process ended ({process.returncode})")
