"""`imgclf export ckpt=PATH format=onnx|torchscript|space`: a self-contained model for
serving, or (space) a folder with the model and its web page."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from imgclf.commands.startup import check_writable, input_size_of, start_run
from imgclf.errors import UserError, one_line
from imgclf.evaluation.export import FORMATS, export_model, input_size, model_card
from imgclf.training.checkpoints import find_checkpoint, load_classifier


def export(cfg: DictConfig) -> Path:
    """The checkpoint's model as ONNX or TorchScript, and its model card (model.json)."""
    run = start_run(cfg, loggers=False, begin=False)
    run_dir = run.directory
    fmt = str(cfg.format)
    if fmt == SPACE:
        return export_space(cfg, run_dir)
    if fmt not in FORMATS:
        choices = ", ".join([*FORMATS, SPACE])
        raise UserError(f"unknown export format {fmt!r}: choose one of {choices}")
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


SPACE = "space"


def export_space(cfg: DictConfig, run_dir: Path) -> Path:
    """format=space: the folder `out` (default `<run>/space`) that serves the model with
    `python app.py` (see `imgclf.serving.space`), with the run's validation examples."""
    from imgclf.commands.startup import load_model_and_data
    from imgclf.serving.card import model_card_of
    from imgclf.serving.showcase import example_images
    from imgclf.serving.space import write_space

    out = Path(str(cfg.out)).expanduser() if cfg.get("out") else run_dir / SPACE
    check_writable(out / "app.py", "export out=")
    checkpoint = find_checkpoint(cfg.get("ckpt"))
    try:  # the examples are the run's validation images, when they are still there
        model, datamodule = load_model_and_data(cfg, scan=True)
        items = datamodule.valid_items
    except UserError as err:
        print(f"warning: no example images ({one_line(err)})")
        model, items = load_classifier(checkpoint), []
    size = input_size(model, input_size_of(cfg, model))
    classes = list(model.class_names)
    card = model_card_of(checkpoint, model, size)
    examples = example_images(items, classes, per_class=2)
    write_space(model, out, card, examples, size)
    print(f"wrote {out}: app.py, requirements.txt, model.onnx, model.json; run it with")
    print(f"  cd {out} && pip install -r requirements.txt && python app.py")
    return run_dir
