"""Export a trained model for serving: ONNX or TorchScript, with a JSON model card.

The exported model takes float32 RGB images, NCHW, values in [0, 1], at the size the
model last trained at (any batch size), and returns class probabilities (N x C). The
backbone's normalisation and the softmax are inside it, so a client only resizes and
scales pixels by 1/255. A JSON file beside it records classes, size and mean/std.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from imgclf.errors import UserError

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


def input_size(model, image_size: int | None = None) -> int:
    """The export's input size: as given, else the size the model last trained at, else
    its backbone's pretrained size."""
    return int(image_size or model.image_size or model.data_config["input_size"])


def exportable(model) -> ExportedClassifier:
    """The plain nn.Module to export (no Lightning in it)."""
    config = model.data_config
    wrapped = ExportedClassifier(model.body, model.head, config["mean"], config["std"])
    return wrapped.eval()


def export_model(model, fmt: str, out: str | Path, image_size: int | None = None) -> Path:
    """`model` as ONNX (`fmt="onnx"`) or TorchScript (`"torchscript"`) at `out`, taking
    `image_size` px inputs (default: `input_size(model)`); returns the path."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out = Path(out)
    wrapped, size = exportable(model), input_size(model, image_size)
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
        "classes": model.class_names,
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
        "output": {"name": "probabilities", "shape": ["N", len(model.class_names)]},
        "mean": list(config["mean"]),
        "std": list(config["std"]),
        "backbone": model.hparams.backbone,
    }
