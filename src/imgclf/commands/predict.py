"""`imgclf predict ckpt=RUN input=PATH`: class probabilities of a folder, one image, a glob
or a list of images; a Kaggle-style submission, and for a few images the top classes."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from imgclf.commands.startup import (
    check_writable,
    inference_trainer,
    input_size_of,
    instantiate_user,
    load_model_and_data,
    start_run,
    tta_arguments,
    tta_count,
)
from imgclf.data.settings import checked_settings
from imgclf.errors import UserError
from imgclf.evaluation.clip_setting import parse_eps, recorded_eps
from imgclf.evaluation.inputs import input_images, is_one_file
from imgclf.evaluation.onnx_predict import CachedModel, predict_with_onnx, read_cached_model
from imgclf.reporting.files import write_json
from imgclf.training.checkpoints import find_checkpoint, load_network, read_checkpoint

if TYPE_CHECKING:
    from imgclf.data.loading import ImageLoading

# Trainer settings under which a plain loop gives what Lightning's predict loop gives.
PLAIN_PRECISIONS = ("32-true", "32", 32)


def without_lightning(cfg: DictConfig) -> bool:
    """Whether the passes can run without a Trainer: one process on the CPU in 32-bit
    precision, and no logger to start. Then neither Lightning nor torchmetrics is imported,
    which saves seconds of start-up on a one-image prediction."""
    trainer = cfg.get("trainer") or {}
    return (
        str(trainer.get("accelerator", "auto")) == "cpu"
        and str(trainer.get("devices", 1)) == "1"
        and str(trainer.get("num_nodes", 1)) == "1"
        and trainer.get("precision", "32-true") in PLAIN_PRECISIONS
        and not cfg.get("logger")
        and int(os.environ.get("WORLD_SIZE", "1")) == 1
    )


def predict_command(cfg: DictConfig) -> Path:
    """`predict` on the checkpoint's model, the submission files and predict.json.

    `tta.n=auto` (the default) makes no TTA passes for one image file and 4 otherwise.
    Without TTA, in one CPU process, a checkpoint with a current ONNX cache (training
    leaves best.ckpt's; a prediction through torch writes one) is run from that file
    (`evaluation/onnx_predict.py`): no torch is imported. `clip=auto` takes the
    eps the run chose on its last validation before the checkpoint was saved; only a
    checkpoint without one has eps chosen on `data`'s validation images (TTA included), as
    `imgclf evaluate` does."""
    if cfg.get("out"):  # before anything is read or computed
        check_writable(Path(str(cfg.out)).expanduser(), "predict out=")
    plain = without_lightning(cfg)
    checkpoint = find_checkpoint(cfg.get("ckpt"))
    tta_n = tta_count(cfg.tta.n, one_image=is_one_file(cfg.input))
    eps = parse_eps(cfg.clip)
    cached = cached_model(cfg, checkpoint, tta_n, eps) if plain else None
    run = start_run(cfg, begin=False, lightning=not plain, seed=cached is None)
    chosen_on, saved = None, None
    if cached is not None:
        saved = cached.recorded_eps
    elif eps == "auto" or plain:
        saved = recorded_eps(read_checkpoint(checkpoint))
    if eps == "auto" and saved is not None:
        eps, chosen_on = saved, f"the run's validation in training ({checkpoint.name})"
    tta = {"n": tta_n, "beta": cfg.tta.beta, "seed": cfg.seed}
    valid_count = 0
    if cached is not None:
        result = predict_cached(cfg, run, cached, eps, tta)
    elif plain:
        result, valid_count = predict_in_process(cfg, run, checkpoint, eps, tta, saved)
    else:
        result, valid_count = predict_with_trainer(cfg, run, eps, tta_n)
    record: dict = {"checkpoint": str(checkpoint), "tta": result.tta}
    if eps == "auto":
        chosen_on = f"{valid_count} validation images"
    if chosen_on:
        record["clip_chosen_on"] = chosen_on
    if is_first(run):
        write_outputs(cfg, run.directory, result, record)
    return run.finish()


def runs_from_onnx(cfg: DictConfig) -> bool:
    """Whether `predict_command` will run on the checkpoint's cached ONNX file (then no
    Trainer and no data module is built, and their settings are not checked against them);
    a setting it cannot read is for the command itself to report."""
    try:
        checkpoint = find_checkpoint(cfg.get("ckpt"))
        tta_n = tta_count(cfg.tta.n, one_image=is_one_file(cfg.input))
        return cached_model(cfg, checkpoint, tta_n, parse_eps(cfg.clip)) is not None
    except (UserError, ValueError, TypeError):
        return False


def cached_model(cfg: DictConfig, checkpoint: Path, tta_n: int, eps) -> CachedModel | None:
    """The checkpoint's cached ONNX model, where it gives what the torch path would: no TTA
    passes, the size it was cached at, and an eps that needs no validation pass."""
    if tta_n != 0:
        return None
    cached = read_cached_model(checkpoint)
    if cached is None or (cfg.get("image_size") and int(cfg.image_size) != cached.image_size):
        return None
    if eps == "auto" and cached.recorded_eps is None:
        return None
    return cached


def is_first(run) -> bool:
    from imgclf.commands.startup import is_rank_zero

    return is_rank_zero(run.lightning)


def predict_with_trainer(cfg: DictConfig, run, eps, tta_n: int):
    """The passes through the configured Trainer (devices, DDP, loggers)."""
    from imgclf.evaluation.prediction import predict

    # The validation set is only needed to choose eps (clip=auto).
    model, datamodule = load_model_and_data(cfg, scan=eps == "auto")
    paths, skipped = input_images(cfg.input, datamodule.verify, datamodule.max_pixels)
    run.begin()  # the checkpoint and the input are fine: the run's files and loggers
    trainer = inference_trainer(cfg, run.loggers)
    arguments = {**tta_arguments(cfg, model), "tta_n": tta_n, "clip": eps}
    result = predict(model, paths, datamodule, trainer, **arguments)
    result.skipped = skipped
    return result, len(datamodule.valid_items)


def predict_in_process(cfg: DictConfig, run, checkpoint: Path, eps, tta: dict, saved_eps):
    """The passes in this process, without Lightning: the checkpoint's network and the
    data settings' loaders. Only eps still to choose (`auto`) scans the data's folders.
    The network is then cached as ONNX for the next prediction without TTA."""
    from imgclf.evaluation.export import cache_onnx
    from imgclf.evaluation.prediction import predict_paths, validation_eps
    from imgclf.evaluation.tta import network_pass

    model = load_network(checkpoint)
    loading, valid_count = loading_of(cfg.data), 0
    if eps == "auto":
        loading = scanned_data(cfg, model)
        valid_count = len(loading.valid_items)
    loading.set_data_config(model.data_config)
    paths, skipped = input_images(cfg.input, loading.verify, loading.max_pixels)
    run.begin()
    size = input_size_of(cfg, model) or loading.image_size
    run_pass = partial(network_pass, model)
    if eps == "auto":
        eps = validation_eps(run_pass, model, loading, size, tta)
    result = predict_paths(run_pass, model, paths, loading, size, tta, eps, skipped)
    if read_cached_model(checkpoint) is None:
        cache_onnx(model, checkpoint, saved_eps)
    return result, valid_count


def predict_cached(cfg: DictConfig, run, cached: CachedModel, eps, tta: dict):
    """The one pass through the cached ONNX file, with the data settings' file checks."""
    data = OmegaConf.to_container(cfg.get("data") or {}, resolve=True)
    max_pixels = data_max_pixels(data)
    paths, skipped = input_images(cfg.input, data.get("verify", "header"), max_pixels)
    run.begin()
    return predict_with_onnx(cached, paths, eps, tta, skipped, max_pixels)


def loading_of(data: DictConfig) -> ImageLoading:
    """The loaders of a data config (`data.*`), without scanning its folders."""
    import inspect

    from imgclf.data.loading import ImageLoading

    settings = OmegaConf.to_container(data, resolve=True)
    known = set(inspect.signature(ImageLoading).parameters)
    chosen = {key: value for key, value in settings.items() if key in known}
    chosen["max_pixels"] = data_max_pixels(settings)
    return ImageLoading(**chosen)


def data_max_pixels(settings: dict) -> int | None:
    """`data.max_pixels` as an int, once the data settings have passed their checks."""
    return checked_settings(
        settings.get("verify", "header"),
        settings.get("augment", "side_on"),
        settings.get("max_pixels"),
        settings.get("valid_pct", 0.2),
        settings.get("min_scale", 0.35),
    )


def scanned_data(cfg: DictConfig, model):
    """The configured data module, its validation set scanned, checked against the
    model's classes (clip=auto chooses eps there)."""
    datamodule = instantiate_user(cfg.data)
    datamodule.set_data_config(model.data_config)
    datamodule.setup("validate")
    if model.class_names != datamodule.classes:
        raise UserError(
            f"the checkpoint was trained on classes {model.class_names[:10]}, but "
            f"{datamodule.root} has {datamodule.classes[:10]}: pass the training data "
            "(data=..., data.root=...)"
        )
    return datamodule


def write_outputs(cfg: DictConfig, run_dir: Path, result, record: dict) -> None:
    """The submission files and predict.json, and what the console shows."""
    out = Path(str(cfg.out)).expanduser() if cfg.get("out") else run_dir / "submission.csv"
    files = result.write_submission(out)
    paths = result.paths
    record.update(
        images=len(paths),
        skipped_files=len(result.skipped),
        skipped=[f"{path} ({why})" for path, why in result.skipped],
        duplicate_ids=len(paths) - len(set(result.ids)),
        decode_failed=[str(path) for path in result.decode_failed],
        clip_eps=result.clip_eps,
        files=[str(f) for f in files],
    )
    write_json(run_dir / "predict.json", record)
    print_outcome(result, record, run_dir / "predict.json")
    for line in top_classes(result, cfg.get("top_k", 3), cfg.get("show", 10)):
        print(line)


def print_outcome(result, record: dict, listing: Path) -> None:
    """What was predicted and written, and what went wrong with which files."""
    if record["skipped_files"]:
        print(f"skipped {record['skipped_files']} unreadable files (listed in {listing})")
    if result.decode_failed:
        print(
            f"{len(result.decode_failed)} files failed to decode; their rows are "
            f"1/{len(result.classes)} each"
        )
    if record["duplicate_ids"]:
        print(
            f"warning: {record['duplicate_ids']} images share a file stem with another; "
            "their ids repeat"
        )
    clip = f", clipped at eps {result.clip_eps:g}" if result.clip_eps else ""
    files = ", ".join(record["files"])
    print(f"predicted {record['images']} images (TTA x{result.tta['n']}{clip}): {files}")


def top_classes(result, top_k: int, show: int) -> list[str]:
    """For the first `show` images, one line each: the path and its `top_k` classes with
    probabilities, most likely first (`photo.jpg: dogs 0.93, cats 0.07`); then how many
    more the submission holds."""
    lines = []
    for path, probs in list(zip(result.paths, result.probs, strict=True))[: max(0, show)]:
        order = probs.argsort()[::-1][: max(1, top_k)]
        ranked = ", ".join(f"{result.classes[i]} {probs[i]:.4f}" for i in order)
        lines.append(f"{path}: {ranked}")
    if len(result.paths) > len(lines):
        lines.append(f"... and {len(result.paths) - len(lines)} more in the submission")
    return lines
