"""`imgclf predict ckpt=PATH input=DIR out=submission.csv`: a Kaggle-style submission.

One row per image: `id` (the file stem) and one probability column per class; for two
classes also the course's `id,label` file with p(second class), e.g. p(dog) for
Dogs vs. Cats. Images stream through the DataLoader; only the probabilities are kept.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
from omegaconf import DictConfig, OmegaConf

from imgclf.callbacks.clip import parse_eps
from imgclf.clipping import best_eps, clip_probs
from imgclf.data import UNLABELLED, FolderDataModule
from imgclf.errors import UserError
from imgclf.images import list_images, unreadable_reason
from imgclf.inference import (
    checkpoint_path,
    class_names,
    decode_failures_of,
    inference_trainer,
    input_size,
    load_model_and_data,
    to_tensor,
)
from imgclf.summary import write_json
from imgclf.train import finish_loggers, instantiate_dict
from imgclf.tta import predict_with_tta


def natural_key(text: str) -> list:
    """'img10' after 'img9': digit runs compare as numbers (Kaggle ids are often numbers)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def input_images(
    folder, verify: str = "header", max_pixels: int | None = None
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The readable images under `folder` (recursively) and the skipped ones with reasons."""
    if not folder:
        raise UserError("no input folder given: add input=DIR (a folder of images)")
    folder = Path(str(folder)).expanduser()
    if not folder.is_dir():
        raise UserError(f"input folder {folder} does not exist")
    paths = list_images(folder)
    if not paths:
        raise UserError(f"no images in {folder} (extensions: jpg jpeg png bmp webp tif)")
    readable, skipped = [], []
    for path in paths:
        reason = unreadable_reason(path, verify, max_pixels)
        (readable.append(path) if reason is None else skipped.append((path, reason)))
    if not readable:
        raise UserError(f"none of the {len(paths)} images in {folder} can be read")
    return readable, skipped


def write_submission(
    ids: list[str], probs: np.ndarray, classes: list[str], out: Path
) -> list[Path]:
    """`out`: id + one probability column per class, rows in natural id order. Two classes:
    also `<out stem>_label.csv` with `id,label` = p(second class). Returns the files written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    order = sorted(range(len(ids)), key=lambda i: natural_key(ids[i]))
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", *classes])
        for i in order:
            writer.writerow([ids[i], *(f"{p:.6f}" for p in probs[i])])
    written = [out]
    if len(classes) == 2:
        label_file = out.with_name(f"{out.stem}_label{out.suffix or '.csv'}")
        with open(label_file, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "label"])
            for i in order:
                writer.writerow([ids[i], f"{probs[i, 1]:.6f}"])
        written.append(label_file)
    return written


@dataclass
class Prediction:
    """Probabilities of unlabelled images: `ids[i]` (file stem), `paths[i]` and `probs[i]`
    (clipped when clip_eps is set), in input order; `skipped`: unreadable files, reasons."""

    ids: list[str]
    paths: list[Path]
    probs: np.ndarray
    classes: list[str]
    clip_eps: float | None
    tta: dict
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    # Files that failed to decode when loaded: their rows are the uninformed 1/C.
    decode_failed: list[Path] = field(default_factory=list)

    def write_submission(self, out: str | Path) -> list[Path]:
        """The Kaggle CSV (and for two classes `<out>_label.csv`); see `write_submission`."""
        return write_submission(self.ids, self.probs, self.classes, Path(out).expanduser())


def predict(
    model,
    source,
    datamodule: FolderDataModule | None = None,
    trainer: L.Trainer | None = None,
    tta_n: int = 4,
    tta_beta: float = 0.25,
    clip="auto",
    seed: int | None = None,
    image_size: int | None = None,
) -> Prediction:
    """Class probabilities for unlabelled images, with TTA and clipping.

    source: a folder (searched recursively; unreadable files skipped and listed) or a list
    of image paths. datamodule: gives the transforms, batch size and workers, and with
    `clip="auto"` the validation images on which eps is chosen (lowest log-loss on a grid);
    default a FolderDataModule on the model's settings (then clip must be a number or
    None). trainer: default `make_trainer()`. TTA as in `interpret`. image_size: default the
    size the model last trained at. Under DDP every rank must call this.
    """
    from imgclf.api import make_trainer

    eps = parse_eps(clip)
    if isinstance(source, (str, Path)):
        paths, skipped = (
            input_images(source, datamodule.verify, datamodule.max_pixels)
            if datamodule
            else input_images(source)
        )
    else:
        paths, skipped = [Path(p) for p in source], []
        if not paths:
            raise UserError("no images to predict")
    if datamodule is None:
        if eps == "auto":
            raise UserError(
                "clip='auto' chooses eps on validation images: pass datamodule=, or clip=0.05"
            )
        datamodule = FolderDataModule(".", num_workers=0)
    datamodule.set_data_config(model.data_config)
    seed = datamodule.seed if seed is None else seed
    trainer = trainer or make_trainer()
    tta = {"n": tta_n, "beta": tta_beta, "seed": seed}
    with input_size(datamodule, image_size or model.image_size):
        if eps == "auto":
            datamodule.setup("validate")
            if not datamodule.valid_items:
                raise UserError(
                    "clip=auto needs validation images; give data.root or a number, clip=0.05"
                )
            valid = predict_with_tta(trainer, model, datamodule, datamodule.valid_items, **tta)
            labels = np.array([y for _, y in datamodule.valid_items], dtype=np.int64)
            eps = best_eps(to_tensor(valid.best), to_tensor(labels).long())
        items = [(path, UNLABELLED) for path in paths]
        result = predict_with_tta(trainer, model, datamodule, items, **tta)
    probs = clip_probs(to_tensor(result.best), eps or 0.0).numpy()
    # A file that failed to decode was replaced by another image inside the loader: its
    # row would be that image's answer, so it gets the uninformed 1/C instead.
    failed = decode_failures_of(datamodule, items)
    probs[failed] = 1.0 / probs.shape[1]
    return Prediction(
        ids=[path.stem for path in paths],
        paths=paths,
        probs=probs,
        classes=class_names(model),
        clip_eps=eps,
        tta=tta,
        skipped=skipped,
        decode_failed=[paths[i] for i in failed],
    )


def predict_command(cfg: DictConfig) -> Path:
    """`imgclf predict`: `predict` on the checkpoint's model, files and predict.json."""
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    L.seed_everything(cfg.seed, workers=True)
    eps = parse_eps(cfg.clip)
    # The validation set is only needed to choose eps (clip=auto).
    model, datamodule = load_model_and_data(cfg, scan=eps == "auto")
    paths, skipped = input_images(cfg.input, datamodule.verify, datamodule.max_pixels)
    loggers = instantiate_dict(cfg.get("logger"))
    trainer = inference_trainer(cfg, loggers)
    result = predict(
        model,
        paths,
        datamodule,
        trainer,
        tta_n=cfg.tta.n,
        tta_beta=cfg.tta.beta,
        clip=cfg.clip,
        seed=cfg.seed,
        image_size=datamodule.image_size,
    )
    record: dict = {"checkpoint": str(checkpoint_path(cfg.ckpt)), "tta": result.tta}
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
        if skipped:
            print(f"skipped {len(skipped)} unreadable files (listed in {run_dir / 'predict.json'})")
        if result.decode_failed:
            print(
                f"{len(result.decode_failed)} files failed to decode; their rows are "
                f"1/{len(result.classes)} each"
            )
        if duplicates:
            print(f"warning: {duplicates} images share a file stem with another; their ids repeat")
        eps = result.clip_eps
        clip = f", clipped at eps {eps:g}" if eps else ""
        print(
            f"predicted {len(paths)} images (TTA x{cfg.tta.n}{clip}): " + ", ".join(map(str, files))
        )
    finish_loggers(loggers)
    return run_dir
