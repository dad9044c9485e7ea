"""`imgclf predict ckpt=RUN input=PATH`: class probabilities of a folder, one image, a glob
or a list of images; a Kaggle-style submission, and for a few images the top classes."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from imgclf.commands.startup import (
    check_writable,
    inference_trainer,
    load_model_and_data,
    start_run,
    tta_arguments,
)
from imgclf.evaluation.clipping import parse_eps
from imgclf.evaluation.prediction import input_images, predict
from imgclf.reporting import write_json
from imgclf.training.checkpoints import find_checkpoint


def predict_command(cfg: DictConfig) -> Path:
    """`predict` on the checkpoint's model, the submission files and predict.json."""
    run = start_run(cfg, begin=False)
    run_dir = run.directory
    if cfg.get("out"):  # before any prediction is computed
        check_writable(Path(str(cfg.out)).expanduser(), "predict out=")
    eps = parse_eps(cfg.clip)
    # The validation set is only needed to choose eps (clip=auto).
    model, datamodule = load_model_and_data(cfg, scan=eps == "auto")
    paths, skipped = input_images(cfg.input, datamodule.verify, datamodule.max_pixels)
    run.begin()  # the checkpoint and the input are fine: the run's files and loggers
    trainer = inference_trainer(cfg, run.loggers)
    result = predict(model, paths, datamodule, trainer, **tta_arguments(cfg, model))
    record: dict = {"checkpoint": str(find_checkpoint(cfg.ckpt)), "tta": result.tta}
    if eps == "auto":
        record["clip_chosen_on"] = f"{len(datamodule.valid_items)} validation images"

    if trainer.is_global_zero:
        out = Path(str(cfg.out)).expanduser() if cfg.get("out") else run_dir / "submission.csv"
        files = result.write_submission(out)
        duplicates = len(paths) - len(set(result.ids))
        record.update(
            images=len(paths),
            skipped_files=len(skipped),
            skipped=[f"{path} ({why})" for path, why in skipped],
            duplicate_ids=duplicates,
            decode_failed=[str(path) for path in result.decode_failed],
            clip_eps=result.clip_eps,
            files=[str(f) for f in files],
        )
        write_json(run_dir / "predict.json", record)
        print_outcome(result, record, run_dir / "predict.json")
        for line in top_classes(result, cfg.get("top_k", 3), cfg.get("show", 10)):
            print(line)
    return run.finish()


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
