"""Export a trained model for serving: ONNX or TorchScript, with a JSON model card.

The exported model takes float32 RGB images, NCHW, values in [0, 1], at the size the
model last trained at (any batch size), and returns class probabilities (N x C). The
backbone's normalisation and the softmax are inside it. The ONNX file is self-contained
(weights inside, no `.onnx.data` side file). The JSON card beside it (`model.json`)
describes the exact preprocessing `imgclf predict` applies (decode, short-side resize with
PIL's filter, centre crop, scaling), so a client reproduces its probabilities.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from imgclf.data.preprocess import model_transform
from imgclf.data.resize import PIL_FILTERS
from imgclf.data.transforms import min_decode_side
from imgclf.errors import UserError
from imgclf.evaluation.prediction import decode_thresholds

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


class ExportedClassifier(nn.Module):
    """Normalise, body, head, the task's activation (softmax, or sigmoid for multi-label):
    pixels in [0, 1] -> probabilities."""

    def __init__(self, body: nn.Module, head: nn.Module, mean, std, activation: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.head = head
        self.activation = activation
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.activation(self.head(self.body((images - self.mean) / self.std)))


def input_size(model, image_size: int | None = None) -> int:
    """The export's input size: as given, else the size the model last trained at, else
    its backbone's pretrained size."""
    return int(image_size or model.image_size or model.data_config["input_size"])


def exportable(model) -> ExportedClassifier:
    """The plain nn.Module to export (no Lightning in it)."""
    config = model.data_config
    activation = model.task.activation_layer()
    wrapped = ExportedClassifier(model.body, model.head, config["mean"], config["std"], activation)
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
    with torch.no_grad(), quiet_exporter():
        if fmt == "onnx":
            torch.onnx.export(
                wrapped,
                (example,),
                str(out),
                input_names=["images"],
                output_names=["probabilities"],
                dynamic_shapes={"images": {0: torch.export.Dim("batch")}},
                dynamo=True,
                external_data=False,  # one self-contained file, no model.onnx.data
                verbose=False,
            )
        else:
            torch.jit.save(torch.jit.trace(wrapped, example), str(out))
    return out


def cache_onnx(network, checkpoint: Path, recorded_eps: float | None) -> Path | None:
    """Write `network` (the checkpoint's, loaded) as the ONNX file that later predictions of
    `checkpoint` run without torch (`onnx_predict.read_cached_model`), and its card; returns
    the ONNX path, or None where it cannot be written (a read-only folder, a network the
    exporter cannot trace): predictions then simply stay on torch.

    torch's TorchScript-based exporter (`dynamo=False`) writes lite0 in about 0.7 s on two
    CPU cores, the dynamo exporter of `export_model` in about 12 s: this runs inside a
    prediction, so it uses the quick one. Both give the probabilities of the torch path to
    1e-5 (tests/test_trained_run.py)."""
    from imgclf.evaluation.onnx_predict import CachedModel, cache_paths
    from imgclf.training.checkpoints import atomic_write

    if not network.image_size:  # the torch path would take data.image_size: no fixed input
        return None
    onnx, card_path = cache_paths(Path(checkpoint))
    config = network.data_config
    thresholds = decode_thresholds(network)
    cached = CachedModel(
        onnx=onnx,
        classes=list(network.class_names),
        task=network.task.name,
        image_size=int(network.image_size),
        interpolation=str(config["interpolation"]),
        crop_pct=float(config["crop_pct"]),
        recorded_eps=recorded_eps,
        thresholds=None if thresholds is None else [float(t) for t in thresholds],
    )
    wrapped, size = exportable(network), int(network.image_size)

    def write(handle) -> None:
        torch.onnx.export(
            wrapped,
            (torch.rand(2, 3, size, size),),
            handle,
            input_names=["images"],
            output_names=["probabilities"],
            dynamic_axes={"images": {0: "batch"}, "probabilities": {0: "batch"}},
            dynamo=False,
        )

    try:
        with torch.no_grad(), quiet_exporter():
            atomic_write(onnx, write)
        card = json.dumps(cached.card(Path(checkpoint)), indent=2).encode()
        atomic_write(card_path, lambda handle: handle.write(card))
    except Exception:  # an optimisation only: the prediction itself has succeeded
        return None
    return onnx


@contextlib.contextmanager
def quiet_exporter():
    """No exporter chatter: warnings about tracing and opsets, the optimiser's per-pass
    INFO log lines (initializer_deduplication, ...) and its progress prints."""
    loggers = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir", "torch.onnx")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def preprocessing(model, size: int) -> dict:
    """The exact steps from an image file to the exported model's input, as `imgclf
    predict` (TTA off) and the Python API do them (`data/preprocess.py::preprocess`:
    `load_rgb` at the transform's smallest side, then the evaluation transform). Written so
    that PIL and numpy reproduce them."""
    config = model.data_config
    # The resize's short side is also the smallest side the decode may reduce a JPEG to.
    target = min_decode_side(model_transform(config, size))
    return {
        "decode": "8-bit RGB; EXIF orientation applied; transparency composited onto white; "
        "grayscale, palette and CMYK converted to RGB; 16-bit images scaled by 255/65535",
        "jpeg_dct_scaling": "JPEG files decode at libjpeg's reduced scale 1/s: s is the "
        f"largest of 8, 4, 2 with ceil(width / s) >= {target} and ceil(height / s) >= "
        f"{target}, else 1 (PIL: image.draft('RGB', (width // s, height // s)) before "
        "converting)",
        "resize": {
            "short_side": target,
            "long_side": f"floor(long * {target} / short + 0.5)",
            "interpolation": config["interpolation"],
            "library": "PIL Image.resize(resample=Image.Resampling."
            f"{PIL_FILTERS[config['interpolation']].name}) on the 8-bit RGB image",
        },
        "center_crop": {
            "height": size,
            "width": size,
            "top": f"(height - {size}) // 2",
            "left": f"(width - {size}) // 2",
        },
        "to_input": "float32 = uint8 pixel / 255, RGB channel order, HWC -> CHW, batch first",
        "normalisation": "inside the model: (x - mean) / std with the mean and std below",
        "crop_pct": config["crop_pct"],
    }


def model_card(model, fmt: str, size: int) -> dict:
    config = model.data_config
    return {
        "format": fmt,
        "classes": model.class_names,
        "input": {
            "name": "images",
            "dtype": "float32",
            "layout": "NCHW",
            "channel_order": "RGB",
            "range": [0.0, 1.0],
            "height": size,
            "width": size,
        },
        "preprocessing": preprocessing(model, size),
        "output": {
            "name": "probabilities",
            "shape": ["N", len(model.class_names)],
            "meaning": model.task.output_meaning,
        },
        "task": model.task.name,
        **thresholds_entry(model),
        "mean": list(config["mean"]),
        "std": list(config["std"]),
        "backbone": model.hparams.backbone,
    }


def thresholds_entry(model) -> dict:
    """Multi-label: the per-class thresholds chosen on validation (0.5 until chosen)."""
    thresholds = decode_thresholds(model)
    if thresholds is None:
        return {}
    return {"thresholds": dict(zip(model.class_names, thresholds, strict=True))}
