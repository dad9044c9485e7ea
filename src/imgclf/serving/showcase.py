"""What the page shows besides the classifier: a few validation images per class to click,
and the run's pictures of its mistakes (written by training at the end of each stage)."""

from __future__ import annotations

from pathlib import Path

# The run's error pictures, most telling first: (file under the run directory, caption).
ERROR_PICTURES = (
    ("interpret/confusion.png", "Confusion matrix of the validation set (rows: actual class)"),
    ("interpret/views/top_losses.png", "Top losses: the validation images it got most wrong"),
)


def example_images(items: list[tuple[Path, int | tuple]], classes: list[str], per_class: int):
    """(path, label) of the first `per_class` validation images of every class. A
    multi-label item (a tuple of tag indices) counts for each of its tags and is taken while
    one of them has fewer than `per_class`; its label is its tags, space-separated."""
    taken: dict[int, int] = {}
    examples = []
    for path, label in items:
        tags = label if isinstance(label, tuple) else (label,)
        if any(taken.get(tag, 0) < per_class for tag in tags):
            for tag in tags:
                taken[tag] = taken.get(tag, 0) + 1
            examples.append((Path(path), " ".join(classes[tag] for tag in tags)))
    return examples


def error_pictures(run_dir: Path | None) -> list[tuple[Path, str]]:
    """The error pictures the run directory holds, with their captions."""
    if run_dir is None:
        return []
    found = [(Path(run_dir) / name, caption) for name, caption in ERROR_PICTURES]
    return [(path, caption) for path, caption in found if path.is_file()]
