"""Why does the unfrozen stage end worse than the head? Small, quick runs on one data set.

Trains the head stage once (precomputed features), then several variants of the unfrozen
stage from that same head, and prints per variant the LRs, the valid accuracy after each
epoch and the seconds. Variants are given as `name:key=value,key=value` stage overrides:

    python benchmarks/quality_diagnose.py --root benchmarks/data/quality/icons --size 64 \
        "sgdr_valley:lr=auto,lr_mult=100,schedule=sgdr" "oc_2e-3:lr=2e-3,lr_mult=10"
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import yaml

from imgclf import FolderDataModule, ImageClassifier, fit_recipe, make_trainer
from imgclf.training.recipe import parse_stage


def variant(text: str) -> tuple[str, dict]:
    name, _, body = text.partition(":")
    keys = {}
    for pair in filter(None, body.split(",")):
        key, _, value = pair.partition("=")
        try:
            keys[key] = float(value) if "." in value or "e" in value else int(value)
        except ValueError:
            keys[key] = yaml.safe_load(value)
    return name, keys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--head", default="lr=auto,epochs=2", help="head stage overrides")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("logs/diagnose"))
    parser.add_argument("variants", nargs="*")
    args = parser.parse_args()

    data = FolderDataModule(args.root, image_size=args.size, num_workers=args.workers)
    data.setup()
    model = ImageClassifier(num_classes=len(data.classes), class_names=data.classes)
    data.set_data_config(model.data_config)
    head_keys = variant("head:" + args.head)[1]
    head = parse_stage(
        {"name": "head", "freeze_to": -1, "precompute": True, "precompute_aug": 2, **head_keys}, 0
    )
    trainer = make_trainer(args.out / "head", accelerator="cpu")
    started = time.perf_counter()
    records = fit_recipe(model, data, [head], trainer=trainer, run_dir=args.out / "head")
    history = trainer.callbacks[2].history
    print(
        json.dumps(
            {
                "variant": "head",
                "lr": records[0]["lr"]["head"],
                "acc": [round(h["valid/acc"], 3) for h in history],
                "seconds": round(time.perf_counter() - started, 1),
            }
        ),
        flush=True,
    )
    state = copy.deepcopy(model.state_dict())
    for text in args.variants:
        name, keys = variant(text)
        stage = parse_stage({"name": "finetune", "freeze_to": 0, **keys}, 1)
        model.load_state_dict(state)
        trainer = make_trainer(args.out / name, accelerator="cpu")
        started = time.perf_counter()
        records = fit_recipe(model, data, [stage], trainer=trainer, run_dir=args.out / name)
        history = trainer.callbacks[2].history
        print(
            json.dumps(
                {
                    "variant": name,
                    "lr": {k: f"{v:.1e}" for k, v in records[0]["lr"].items()},
                    "acc": [round(h["valid/acc"], 3) for h in history],
                    "logloss": round(history[-1]["valid/logloss"], 3),
                    "seconds": round(time.perf_counter() - started, 1),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
