"""A running `imgclf serve` for the tests: a free port, the page's address once it
answers, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Headless, as root (no sandbox), and nothing the browser itself would fetch.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_page(url: str, process, log: Path, timeout: float = 300.0) -> str:
    """`url` once it answers 200; an assertion with the server's output if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"imgclf serve exited: {log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return url
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} did not answer in {timeout:.0f} s: {log.read_text()[-3000:]}")


def chromium_path() -> str:
    """Debian's Chromium; a failing test with the fix when it is missing (never a skip)."""
    if not CHROMIUM.is_file():
        raise AssertionError(
            f"{CHROMIUM} is missing: the page test needs Debian's Chromium "
            "(apt-get install chromium; .ci/run installs it)"
        )
    return str(CHROMIUM)
