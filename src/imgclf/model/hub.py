"""Whether the Hugging Face hub can be reached, and timm's download without the network.

Offline, timm's pretrained download retries for about a minute and a half, printing a
warning per retry, before it fails. A short connection test first lets a backbone whose
weights are not on this machine fail at once; weights already in the local hub cache still
load (the download runs in the hub library's offline mode)."""

from __future__ import annotations

import contextlib
import os
import socket
from urllib.parse import urlparse

DEFAULT_ENDPOINT = "https://huggingface.co"


def hub_reachable(timeout: float = 3.0) -> bool:
    """A TCP connection to the hub's host (HF_ENDPOINT, else huggingface.co) within
    `timeout` seconds; False when the hub library is told to stay offline."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT)
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def hub_offline():
    """The hub library in offline mode for the block: only its local cache is read."""
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before
