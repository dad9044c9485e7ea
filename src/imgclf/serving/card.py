"""The model card the page shows: what the model tells apart, what it is, how well it did
on its validation set and where it came from (the run's summary.json and checkpoint)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path


def run_card(checkpoint: Path, classes: list[str], backbone: str, image_size: int) -> dict:
    """Facts about the run of `checkpoint` (`<run>/checkpoints/x.ckpt`, or a lone file):
    classes, backbone, image size, best valid accuracy and log-loss, run directory and when
    the checkpoint was written (UTC)."""
    checkpoint = Path(checkpoint).resolve()
    run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else None
    summary_file = run_dir / "summary.json" if run_dir else None
    summary = (
        json.loads(summary_file.read_text()) if summary_file and summary_file.is_file() else {}
    )
    written = dt.datetime.fromtimestamp(checkpoint.stat().st_mtime, tz=dt.timezone.utc)
    return {
        "classes": list(classes),
        "backbone": backbone,
        "image_size": int(image_size),
        "best_valid_acc": summary.get("best_valid_acc"),
        "valid_logloss": summary.get("valid_logloss"),
        "run_directory": str(run_dir) if run_dir else None,
        "checkpoint": str(checkpoint),
        "trained": written.strftime("%Y-%m-%d %H:%M UTC"),
    }


def card_markdown(card: dict) -> str:
    """The card as a Markdown table."""

    def number(value) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    classes = ", ".join(card["classes"])
    rows = [
        ("classes", f"{len(card['classes'])}: {classes}"),
        ("backbone", f"`{card['backbone']}`"),
        ("image size", f"{card['image_size']} px"),
        ("best valid accuracy", number(card["best_valid_acc"])),
        ("valid log-loss", number(card["valid_logloss"])),
        ("run directory", f"`{card['run_directory'] or 'n/a'}`"),
        ("checkpoint", f"`{card['checkpoint']}`"),
        ("trained", card["trained"]),
    ]
    lines = ["| model card | |", "|---|---|", *(f"| {key} | {value} |" for key, value in rows)]
    return "\n".join(lines)
