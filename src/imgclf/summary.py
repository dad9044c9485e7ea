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


def stage_of_epoch(epoch: int, stage_records: list[dict]) -> dict:
    """The stage record an epoch (0-based, counted on across stages) belongs to; {} if none."""
    end = 0
    for record in stage_records:
        end += int(record.get("epochs") or 0)
        if epoch < end:
            return record
    return {}


def best_weights(
    history: list[dict[str, float]], stage_records: list[dict], monitor: str = "valid/acc"
) -> dict:
    """Where the best validated weights (what best.ckpt holds) come from: stage, epoch and
    score. The first of equal scores, as ModelCheckpoint keeps it. {} without validations."""
    best = best_epoch(history, monitor)
    if not best:
        return {}
    stage = stage_of_epoch(int(best["epoch"]), stage_records)
    return {"stage": stage.get("name"), "epoch": int(best["epoch"]), monitor: best[monitor]}


def stage_regression(records: list[dict], key: str = "valid_acc") -> str | None:
    """A warning when the last stage ended below the best end of the stages before it.

    A later stage of a recipe should build on the earlier ones; when it ends worse (the LR
    too high or too low, restarts, overfitting), the run must say so rather than hand over
    its last weights silently. None when it did not, or when the scores are missing.
    """
    if len(records) < 2 or records[-1].get(key) is None:
        return None
    earlier = [r for r in records[:-1] if r.get(key) is not None]
    if not earlier:
        return None
    best = max(earlier, key=lambda r: r[key])
    last = records[-1]
    if last[key] >= best[key]:
        return None
    return (
        f"stage {last['name']!r} ended at {key} {last[key]:.4f}, below the {best[key]:.4f} "
        f"that stage {best['name']!r} ended at; best.ckpt keeps the best validated weights"
    )


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write `data` as indented JSON via a temporary file, so a reader never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path
