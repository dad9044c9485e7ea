"""Where the Hydra configs live, for the CLI and for the Python API's `from_config`."""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    """configs/ of this checkout (the template is used as a clone), or $IMGCLF_CONFIG_DIR."""
    if "IMGCLF_CONFIG_DIR" in os.environ:
        return Path(os.environ["IMGCLF_CONFIG_DIR"]).resolve()
    return Path(__file__).resolve().parents[3] / "configs"
