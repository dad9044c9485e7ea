"""The model card the page shows: what the model tells apart, what it is, how well it did
on its validation set and where it came from (the run's summary.json and checkpoint)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

TASK_WORDS = {
    "single": "single-label: one class per image (softmax)",
    "multi": "multi-label: any number of tags per image (a sigmoid per tag; a tag is "
    "predicted at or above its threshold)",
}


def run_card(
    checkpoint: Path,
    classes: list[str],
    backbone: str,
    image_size: int,
    task: str = "single",
    thresholds: list[float] | None = None,
) -> dict:
    """Facts about the run of `checkpoint` (`<run>/checkpoints/x.ckpt`, or a lone file):
    classes, backbone, image size, task, the run directory and when the checkpoint was
    written (UTC), and its validation metrics. Single-label: best valid accuracy and
    log-loss. Multi-label: `thresholds` (the checkpoint's, one per tag), the best valid F2
    (samples-averaged, at the thresholds), the macro average precision of that epoch and
    its binary cross-entropy log-loss."""
    checkpoint = Path(checkpoint).resolve()
    run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else None
    summary_file = run_dir / "summary.json" if run_dir else None
    summary = (
        json.loads(summary_file.read_text()) if summary_file and summary_file.is_file() else {}
    )
    written = dt.datetime.fromtimestamp(checkpoint.stat().st_mtime, tz=dt.timezone.utc)
    card = {
        "classes": list(classes),
        "backbone": backbone,
        "image_size": int(image_size),
        "task": task,
        "valid_logloss": summary.get("valid_logloss"),
        "run_directory": str(run_dir) if run_dir else None,
        "checkpoint": str(checkpoint),
        "trained": written.strftime("%Y-%m-%d %H:%M UTC"),
    }
    if task == "multi":
        best = best_epoch_record(summary)
        card["thresholds"] = [float(t) for t in thresholds] if thresholds else None
        card["best_valid_fbeta"] = summary.get("best_valid_fbeta")
        card["valid_ap"] = best.get("valid/ap")
    else:
        card["best_valid_acc"] = summary.get("best_valid_acc")
    return card


def model_card_of(checkpoint: Path, model, image_size: int) -> dict:
    """`run_card` of a loaded checkpoint's model: its classes, backbone, task and the
    thresholds its checkpoint keeps (None: never validated, 0.5 each)."""
    names, backbone = list(model.class_names), model.hparams.backbone
    return run_card(checkpoint, names, backbone, image_size, model.task.name, model.thresholds)


def best_epoch_record(summary: dict) -> dict:
    """The history record of the run's best epoch ({} when there is none)."""
    epoch = summary.get("best_epoch")
    records = [h for h in summary.get("history") or [] if h.get("epoch") == epoch]
    return records[-1] if epoch is not None and records else {}


def thresholds_text(card: dict) -> str:
    """One threshold for every tag, or each tag's; 0.5 when none was chosen."""
    thresholds = card.get("thresholds")
    if not thresholds:
        return "0.5 for every tag (none chosen on validation)"
    if len(set(thresholds)) == 1:
        return f"{thresholds[0]:.2f} for every tag (chosen on validation)"
    pairs = zip(card["classes"], thresholds, strict=True)
    return ", ".join(f"{name} {t:.2f}" for name, t in pairs) + " (chosen on validation)"


def card_markdown(card: dict) -> str:
    """The card as a Markdown table."""

    def number(value) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    classes = ", ".join(card["classes"])
    task = card.get("task", "single")
    if task == "multi":
        metrics = [
            ("threshold", thresholds_text(card)),
            (
                "best valid F2 (samples-averaged, at the threshold)",
                number(card["best_valid_fbeta"]),
            ),
            ("valid average precision (macro)", number(card["valid_ap"])),
            ("valid log-loss (binary cross-entropy per tag)", number(card["valid_logloss"])),
        ]
    else:
        metrics = [
            ("best valid accuracy", number(card["best_valid_acc"])),
            ("valid log-loss", number(card["valid_logloss"])),
        ]
    rows = [
        ("classes" if task == "single" else "tags", f"{len(card['classes'])}: {classes}"),
        ("task", TASK_WORDS.get(task, task)),
        ("backbone", f"`{card['backbone']}`"),
        ("image size", f"{card['image_size']} px"),
        *metrics,
        ("run directory", f"`{card['run_directory'] or 'n/a'}`"),
        ("checkpoint", f"`{card['checkpoint']}`"),
        ("trained", card["trained"]),
    ]
    lines = ["| model card | |", "|---|---|", *(f"| {key} | {value} |" for key, value in rows)]
    return "\n".join(lines)
