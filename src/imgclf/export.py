"""`imgclf export ckpt=PATH format=onnx|torchscript`: a self-contained model for serving.

The exported model takes float32 RGB images, NCHW, values in [0, 1], at the size the
model last trained at (any batch size), and returns class probabilities (N x C). The
backbone's normalisation and the softmax are inside it, so a client only resizes and
scales pixels by 1/255. A JSON file beside it records classes, size and mean/std.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from imgclf.checkpoint import load_classifier
from imgclf.errors import UserError
from imgclf.inference import checkpoint_path, class_names

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


class ExportedClassifier(nn.Module):
    """Normalise, body, head, softmax: pixels in [0, 1] -> probabilities."""

    def __init__(self, body: nn.Module, head: nn.Module, mean, std) -> None:
        super().__init__()
        self.body = body
        self.head = head
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.body((images - self.mean) / self.std)).softmax(dim=1)


def exportable(model) -> tuple[ExportedClassifier, int]:
    """The plain nn.Module to export (no Lightning in it) and its input size."""
    size = int(model.image_size or model.data_config["input_size"])
    config = model.data_config
    wrapped = ExportedClassifier(model.body, model.head, config["mean"], config["std"])
    return wrapped.eval(), size


def export_model(model, fmt: str, out: Path) -> Path:
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    wrapped, size = exportable(model)
    example = torch.rand(2, 3, size, size)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter about tracing and opsets
        if fmt == "onnx":
            torch.onnx.export(
                wrapped,
                (example,),
                str(out),
                input_names=["images"],
                output_names=["probabilities"],
                dynamic_shapes={"images": {0: torch.export.Dim("batch")}},
                dynamo=True,
                verbose=False,
            )
        else:
            torch.jit.save(torch.jit.trace(wrapped, example), str(out))
    return out


def model_card(model, fmt: str, size: int) -> dict:
    config = model.data_config
    return {
        "format": fmt,
        "classes": class_names(model),
        "input": {
            "name": "images",
            "dtype": "float32",
            "layout": "NCHW, RGB",
            "range": [0.0, 1.0],
            "height": size,
            "width": size,
            "note": "resize to height x width and divide 8-bit pixels by 255; "
            "the model normalises with mean/std itself",
        },
        "output": {"name": "probabilities", "shape": ["N", len(class_names(model))]},
        "mean": list(config["mean"]),
        "std": list(config["std"]),
        "backbone": model.hparams.backbone,
    }


def export(cfg: DictConfig) -> Path:
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    fmt = str(cfg.format)
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    model = load_classifier(checkpoint_path(cfg.get("ckpt")))
    if cfg.get("image_size"):
        model.image_size = int(cfg.image_size)
    out = Path(str(cfg.out)).expanduser() if cfg.get("out") else run_dir / f"model{FORMATS[fmt]}"
    export_model(model, fmt, out)
    _, size = exportable(model)
    card = out.with_suffix(".json")
    card.write_text(json.dumps(model_card(model, fmt, size), indent=2) + "\n")
    print(f"exported {fmt} model to {out} (input float32 NCHW in [0, 1], {size}x{size}); {card}")
    return run_dir
