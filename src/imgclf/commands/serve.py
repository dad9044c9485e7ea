"""`imgclf serve ckpt=RUN`: the run's web page (see `imgclf.serving`) until Ctrl-C."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig

from imgclf.commands.startup import input_size_of, load_model_and_data, start_run
from imgclf.errors import UserError, one_line
from imgclf.training.checkpoints import find_checkpoint


def serve(cfg: DictConfig) -> Path:
    """Load the checkpoint and its data settings, build the page and serve it."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from imgclf.serving.card import model_card_of
    from imgclf.serving.classify import FileClassifier
    from imgclf.serving.page import build_page, launch_page
    from imgclf.serving.showcase import error_pictures, example_images

    checked = checked_settings(cfg)
    run = start_run(cfg, loggers=False)
    checkpoint = find_checkpoint(cfg.get("ckpt"))
    model, datamodule, items = model_data_and_examples(cfg)
    size = input_size_of(cfg, model) or datamodule.image_size
    classes = list(model.class_names)
    classifier = FileClassifier(
        model, datamodule.eval_transform(size), classes, datamodule.max_pixels
    )
    card = model_card_of(checkpoint, model, size)
    examples = example_images(items, classes, int(cfg.examples_per_class))
    run_dir = Path(card["run_directory"]) if card["run_directory"] else None
    page = build_page(classifier, card, examples, error_pictures(run_dir), int(cfg.top_k))
    shown = [str(path.parent) for path, _ in examples] + ([str(run_dir)] if run_dir else [])
    url = launch_page(page, allowed_paths=shown, **checked)
    print(f"serving {checkpoint} at {url} (Ctrl-C stops)", flush=True)
    page.block_thread()
    return run.finish()


def model_data_and_examples(cfg: DictConfig):
    """The model, its data module and the validation items the examples come from. The
    validation folder is read only for the examples: a run whose data has moved is still
    served, without them (a warning says why)."""
    if cfg.examples_per_class > 0:
        try:
            model, datamodule = load_model_and_data(cfg, scan=True)
            return model, datamodule, datamodule.valid_items
        except UserError as err:
            print(f"warning: no example images ({one_line(err)})", flush=True)
    model, datamodule = load_model_and_data(cfg, scan=False)
    return model, datamodule, []


def checked_settings(cfg: DictConfig) -> dict:
    """host, port and the upload limit, with a one-line error for a wrong value."""
    port, limit = cfg.port, cfg.max_upload_mb
    if not isinstance(port, int) or not 0 < port < 65536:
        raise UserError(f"port must be a number from 1 to 65535, got {port!r}")
    if not isinstance(limit, (int, float)) or limit <= 0:
        raise UserError(f"max_upload_mb must be a positive number, got {limit!r}")
    return {"host": str(cfg.host), "port": port, "max_upload_mb": float(limit)}
