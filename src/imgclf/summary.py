"""summary.json: the facts of a finished run in one small file, for people and scripts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def best_epoch(history: list[dict[str, float]], monitor: str = "valid/acc") -> dict[str, float]:
    """The validation record with the highest `monitor` (the first one on ties); {} if none."""
    scored = [h for h in history if monitor in h and not math.isnan(h[monitor])]
    return max(scored, key=lambda h: h[monitor]) if scored else {}


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write `data` as indented JSON via a temporary file, so a reader never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path
