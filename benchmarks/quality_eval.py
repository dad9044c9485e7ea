"""Test-split scores of an `imgclf train` run, for the quality benchmark.

Loads the run's `checkpoints/best.ckpt` (what `imgclf evaluate` and `export` take) and
predicts the labelled `test/<class>/` images of the data set with the Python API's
`interpret` (plain pass and TTA x4, as `imgclf evaluate` does on `valid/`). A set whose
labels come in a CSV (a LABELS set of quality_data.py) is read with its CSV layout and
its test images are those of the test CSV. A multi-label run is scored on their tag sets
at the thresholds it chose on validation: samples-F2 and exact match
(`tag_variant_metrics`, what `imgclf evaluate` reports). Prints one JSON line.

    python benchmarks/quality_eval.py --run logs/train/<run> --root <set>
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from imgclf import FolderDataModule, interpret, load_classifier, make_trainer
from imgclf.data.csv_labels import CsvDataModule
from imgclf.data.images import list_images
from imgclf.evaluation.tags import tag_variant_metrics
from imgclf.evaluation.tta import predict_with_tta

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.quality_data import CSV_LAYOUT, TEST_LABELS, csv_layout, read_tags  # noqa: E402


def tag_scores(metrics: dict) -> dict:
    """tag_variant_metrics' numbers as the benchmark names them (acc: exact match)."""
    return {
        "acc": metrics["exact_match"],
        "exact": metrics["exact_match"],
        "f2": metrics["fbeta"],
        "logloss": metrics["logloss"],
    }


def csv_test_items(model, root: Path) -> list:
    """The test CSV's images with their labels as the model's class indices (a tuple of
    tag indices for a multi-label model)."""
    index = {name: i for i, name in enumerate(model.class_names)}
    items = []
    for name, tags, _ in read_tags(root / TEST_LABELS):
        path = root / "test" / f"{name}{CSV_LAYOUT['suffix']}"
        label = tuple(index[t] for t in tags) if model.task.name == "multi" else index[tags[0]]
        items.append((path, label))
    return items


def test_tags(model, root: Path, workers: int) -> tuple[dict, dict, int]:
    """A multi-label model on root's test CSV: plain and TTA x4 scores, and the image count."""
    data = CsvDataModule(root, num_workers=workers, **csv_layout(multi=True))
    data.setup("validate")
    data.set_data_config(model.data_config)
    items = csv_test_items(model, root)
    n_classes = len(model.class_names)
    labels = model.task.encode_all([y for _, y in items], n_classes).astype(np.int64)
    size = model.image_size or data.image_size
    result = predict_with_tta(
        make_trainer(accelerator="cpu"), model, data, items, size, 4, 0.25, data.seed
    )
    thresholds = model.thresholds or [0.5] * n_classes
    plain = tag_variant_metrics(result.plain, labels, thresholds, model.task.beta)
    tta = tag_variant_metrics(result.tta, labels, thresholds, model.task.beta)
    return tag_scores(plain), tag_scores(tta), len(items)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    model = load_classifier(args.run / "checkpoints" / "best.ckpt")
    summary = json.loads((args.run / "summary.json").read_text())
    if model.task.name == "multi":
        test, test_tta, count = test_tags(model, args.root, args.workers)
        print(json.dumps(run_result(summary, test, test_tta, count, model.image_size)))
        return
    if (args.root / TEST_LABELS).exists():  # a single-label set with CSV labels
        data = CsvDataModule(args.root, num_workers=args.workers, **csv_layout(multi=False))
        data.setup()
        items = csv_test_items(model, args.root)
    else:
        data = FolderDataModule(args.root, num_workers=args.workers)
        data.setup()
        index = {name: i for i, name in enumerate(data.classes)}
        items = [
            (path, index[folder.name])
            for folder in sorted((args.root / "test").iterdir())
            for path in list_images(folder)
        ]
    trainer = make_trainer(accelerator="cpu")
    result = interpret(model, data, trainer=trainer, items=items, tta_n=4, clip=None)
    metrics = result.metrics
    test = {k: metrics["plain"][m] for k, m in (("acc", "accuracy"), ("logloss", "logloss"))}
    tta = {k: metrics["tta"][m] for k, m in (("acc", "accuracy"), ("logloss", "logloss"))}
    print(json.dumps(run_result(summary, test, tta, len(items), metrics["image_size"])))


def run_result(summary: dict, test: dict, test_tta: dict, count: int, image_size) -> dict:
    """The benchmark's JSON line: test scores beside the run's summary.json."""
    return {
        "system": "imgclf",
        "train_seconds": summary["wall_seconds"],
        "valid": {
            "acc": summary.get("best_valid_acc"),
            "logloss": summary.get("valid_logloss"),
            **({"f2": summary["best_valid_fbeta"]} if "best_valid_fbeta" in summary else {}),
        },
        "test": test,
        "test_tta": test_tta,
        "sizes": {
            "train": summary["train_images"],
            "valid": summary["valid_images"],
            "test": count,
        },
        "image_size": image_size,
        "best": summary.get("best_weights"),
        "stages": [
            {k: s.get(k) for k in ("name", "epochs", "seconds", "valid_acc", "lr", "recoveries")}
            for s in summary["stages"]
        ],
        "warnings": summary.get("stage_warnings", []),
    }


if __name__ == "__main__":
    main()
