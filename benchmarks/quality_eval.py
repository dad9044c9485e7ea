"""Test-split scores of an `imgclf train` run, for the quality benchmark.

Loads the run's `checkpoints/best.ckpt` (what `imgclf evaluate` and `export` take) and
predicts the labelled `test/<class>/` images of the data set with the Python API's
`interpret` (plain pass and TTA x4, as `imgclf evaluate` does on `valid/`). Prints one JSON
line.

    python benchmarks/quality_eval.py --run logs/train/<run> --root <set>
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from imgclf import FolderDataModule, interpret, load_classifier, make_trainer
from imgclf.data.images import list_images


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    model = load_classifier(args.run / "checkpoints" / "best.ckpt")
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
    summary = json.loads((args.run / "summary.json").read_text())
    metrics = result.metrics
    print(
        json.dumps(
            {
                "system": "imgclf",
                "train_seconds": summary["wall_seconds"],
                "valid": {"acc": summary["best_valid_acc"], "logloss": summary["valid_logloss"]},
                "test": {
                    "acc": metrics["plain"]["accuracy"],
                    "logloss": metrics["plain"]["logloss"],
                },
                "test_tta": {
                    "acc": metrics["tta"]["accuracy"],
                    "logloss": metrics["tta"]["logloss"],
                },
                "sizes": {
                    "train": summary["train_images"],
                    "valid": summary["valid_images"],
                    "test": len(items),
                },
                "image_size": metrics["image_size"],
                "best": summary.get("best_weights"),
                "stages": [
                    {
                        k: s.get(k)
                        for k in ("name", "epochs", "seconds", "valid_acc", "lr", "recoveries")
                    }
                    for s in summary["stages"]
                ],
                "warnings": summary.get("stage_warnings", []),
            }
        )
    )


if __name__ == "__main__":
    main()
