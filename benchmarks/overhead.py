"""Lightning's cost: our ImageClassifier under the Trainer versus a bare PyTorch loop.

Both sides get the same model, optimizer (`build_optimizer`, one param group per layer
group), batches of synthetic tensors from the same DataLoader, input size and threads.
The Trainer runs with the project's own trainer and callback defaults (progress bar, LR
monitor, logging every `log_every_n_steps`) and a CSV logger, as `imgclf train` does;
only checkpoint writing is left out. Rates are images per second after a warm-up step.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.timing import Clock, alternate
from imgclf.cli import config_dir
from imgclf.commands.startup import instantiate_dict
from imgclf.model import ImageClassifier
from imgclf.training.recipe import Stage

STAGE = Stage(name="bench", freeze_to=0, lr=1e-3, schedule="constant")


def apply_stage(model: ImageClassifier, stage: Stage) -> None:
    """Freeze and set the LRs of a stage with numeric LRs, at the data's image size."""
    model.set_stage(stage.plan(stage.group_lrs(len(model.groups)), None))


class ClockCallback(Callback):
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.threads: int | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.clock.tick()
        self.threads = torch.get_num_threads()

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dl_idx=0):
        self.clock.tick()
        self.threads = torch.get_num_threads()


def project_trainer(
    workdir: Path, extra_callbacks: list, hydra_overrides: tuple[str, ...] = (), **overrides
) -> L.Trainer:
    """A Trainer from configs/ (trainer=cpu, callbacks=default, logger=csv, then
    `hydra_overrides` such as `trainer=gpu`), as a run gets it, minus checkpoint files."""
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["logger=csv", f"paths.output_dir={workdir}", *hydra_overrides],
        )
    callbacks = [
        callback
        for callback in instantiate_dict(cfg.callbacks)
        if not isinstance(callback, L.pytorch.callbacks.ModelCheckpoint)
    ]
    loggers = instantiate_dict(cfg.logger)
    return instantiate(
        cfg.trainer,
        callbacks=[*callbacks, *extra_callbacks],
        logger=loggers,
        enable_checkpointing=False,
        **overrides,
    )


def synthetic_loader(steps: int, batch_size: int, image_size: int, classes: int) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(steps * batch_size, 3, image_size, image_size, generator=generator)
    labels = torch.randint(classes, (steps * batch_size,), generator=generator)
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size)


def bare_train(model: ImageClassifier, loader: DataLoader, warmup: int) -> float:
    apply_stage(model, STAGE)
    model.train()
    optimizer = model.build_optimizer(model.plan.lrs)
    clock = Clock(warmup)
    for images, labels in loader:
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        clock.tick()
    return clock.rate(loader.batch_size)


def lightning_train(model: ImageClassifier, loader: DataLoader, warmup: int, workdir: Path):
    apply_stage(model, STAGE)
    clock = Clock(warmup)
    callback = ClockCallback(clock)
    trainer = project_trainer(workdir, [callback], max_epochs=1)
    trainer.fit(model, train_dataloaders=loader)
    return clock.rate(loader.batch_size), callback.threads


@torch.inference_mode()
def bare_predict(model: ImageClassifier, loader: DataLoader, warmup: int) -> float:
    model.eval()
    clock = Clock(warmup)
    outputs = []
    for images, _ in loader:
        outputs.append(model(images).softmax(dim=1))
        clock.tick()
    return clock.rate(loader.batch_size)


def lightning_predict(model: ImageClassifier, loader: DataLoader, warmup: int, workdir: Path):
    clock = Clock(warmup)
    callback = ClockCallback(clock)
    trainer = project_trainer(workdir, [callback])
    trainer.predict(model, dataloaders=loader)
    return clock.rate(loader.batch_size), callback.threads


def overhead_benchmarks(
    rounds: int, batch_size: int, image_size: int, train_steps: int, predict_steps: int
) -> dict:
    """{"training": ..., "inference": ...}: Trainer rate / bare-loop rate, alternated."""
    warmup = 1
    torch.manual_seed(0)
    model = ImageClassifier(num_classes=10)
    threads: dict[str, int | None] = {}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        loader = synthetic_loader(warmup + train_steps, batch_size, image_size, 10)

        def trained() -> float:
            rate, threads["training"] = lightning_train(model, loader, warmup, workdir)
            return rate

        results["training"] = alternate(trained, lambda: bare_train(model, loader, warmup), rounds)
        loader = synthetic_loader(warmup + predict_steps, batch_size, image_size, 10)

        def predicted() -> float:
            rate, threads["inference"] = lightning_predict(model, loader, warmup, workdir)
            return rate

        results["inference"] = alternate(
            predicted, lambda: bare_predict(model, loader, warmup), rounds
        )
    for name, result in results.items():
        result.update(
            a_name="Lightning Trainer",
            b_name="bare PyTorch loop",
            unit="images/s",
            batch_size=batch_size,
            image_size=image_size,
            steps=train_steps if name == "training" else predict_steps,
            threads_bare=torch.get_num_threads(),
            threads_lightning=threads[name],
        )
    return results
