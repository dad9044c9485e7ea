"""`imgclf export ckpt=PATH format=onnx|torchscript`: a self-contained model for serving."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from imgclf.commands.startup import check_writable, input_size_of, start_run
from imgclf.errors import UserError
from imgclf.evaluation.export import FORMATS, export_model, input_size, model_card
from imgclf.training.checkpoints import find_checkpoint, load_classifier


def export(cfg: DictConfig) -> Path:
    """The checkpoint's model as ONNX or TorchScript, and its model card (model.json)."""
    run = start_run(cfg, loggers=False, begin=False)
    run_dir = run.directory
    fmt = str(cfg.format)
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out = Path(str(cfg.out)).expanduser() if cfg.get("out") else run_dir / f"model{FORMATS[fmt]}"
    check_writable(out, "export out=")
    model = load_classifier(find_checkpoint(cfg.get("ckpt")))
    size = input_size_of(cfg, model)
    run.begin()  # the format, out= and the checkpoint are fine: the run's files
    export_model(model, fmt, out, image_size=size)
    size = input_size(model, size)
    card = out.with_suffix(".json")
    card.write_text(json.dumps(model_card(model, fmt, size), indent=2) + "\n")
    print(f"exported {fmt} model to {out} (input float32 NCHW in [0, 1], {size}x{size}); {card}")
    return run_dir
