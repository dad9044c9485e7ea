"""Speed knobs: each one's effect, as the rate with the knob set / the rate without it.

Model knobs (channels_last, bf16 mixed precision, torch.compile) time training steps of
`ImageClassifier` (all layers trainable, AdamW) on one synthetic uint8 batch, and
channels_last also inference batches. Each variant is built once, so torch.compile's
compilation happens once and is reported apart (`compile_seconds`); the timed steps come
after a warm-up step. Loader knobs (workers, persistent workers, pinned memory) time the
project's train DataLoader on the generated JPEG folder.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.overhead import STAGE, apply_stage
from benchmarks.pipeline import epoch_rate, ours_loader
from benchmarks.timing import alternate
from imgclf.model import ImageClassifier


def build_model(channels_last: bool = False, compile_body: bool = False) -> ImageClassifier:
    torch.manual_seed(0)
    model = ImageClassifier(num_classes=10, channels_last=channels_last)
    apply_stage(model, STAGE)
    if compile_body:
        model.body.compile()
    return model


class TrainSteps:
    """Timed optimizer steps of one model on a fixed batch; the first call's first step
    (allocation, compilation) is timed apart as `first_step_seconds`."""

    def __init__(self, model: ImageClassifier, images, labels, bf16: bool = False) -> None:
        self.model, self.images, self.labels, self.bf16 = model, images, labels, bf16
        self.optimizer = model.build_optimizer(model.plan.lrs)
        started = time.perf_counter()
        self.step()
        self.first_step_seconds = time.perf_counter() - started

    def step(self) -> None:
        self.model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            loss = F.cross_entropy(self.model.logits(self.images), self.labels)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def rate(self, steps: int) -> float:
        self.step()  # warm-up
        started = time.perf_counter()
        for _ in range(steps):
            self.step()
        return steps * len(self.images) / (time.perf_counter() - started)


@torch.inference_mode()
def inference_rate(model: ImageClassifier, images, steps: int) -> float:
    model.eval()
    model(images)  # warm-up
    started = time.perf_counter()
    for _ in range(steps):
        model(images)
    return steps * len(images) / (time.perf_counter() - started)


def model_knobs(
    rounds: int, batch_size: int, image_size: int, steps: int, compile_body: bool = True
) -> dict:
    generator = torch.Generator().manual_seed(0)
    shape = (batch_size, 3, image_size, image_size)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    labels = torch.randint(10, (batch_size,), generator=generator)
    plain = TrainSteps(build_model(), images, labels)
    nhwc = TrainSteps(build_model(channels_last=True), images, labels)
    bf16 = TrainSteps(build_model(), images, labels, bf16=True)
    results = {
        "channels_last": alternate(lambda: nhwc.rate(steps), lambda: plain.rate(steps), rounds),
        "channels_last_inference": alternate(
            lambda: inference_rate(nhwc.model, images, steps),
            lambda: inference_rate(plain.model, images, steps),
            rounds,
        ),
        "bf16_mixed": alternate(lambda: bf16.rate(steps), lambda: plain.rate(steps), rounds),
    }
    if compile_body:
        # An empty inductor cache: compile_seconds is what a user's first run pays.
        previous = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
        with tempfile.TemporaryDirectory() as cache:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
            compiled = TrainSteps(build_model(compile_body=True), images, labels)
        if previous is None:
            del os.environ["TORCHINDUCTOR_CACHE_DIR"]
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = previous
        results["torch_compile"] = alternate(
            lambda: compiled.rate(steps), lambda: plain.rate(steps), rounds
        )
        results["torch_compile"]["compile_seconds"] = compiled.first_step_seconds
    for name, result in results.items():
        result.update(
            unit="images/s",
            what="inference" if name.endswith("inference") else "training",
            batch_size=batch_size,
            image_size=image_size,
            steps=steps,
        )
    return results


def train_loader(root: Path, workers: int, **settings):
    """The pipeline figure's loader (224 px, min_scale 0.35, batch 32) with `settings`."""
    return ours_loader(root, 224, 0.35, 32, workers, **settings)


def loader_knobs(root: Path, rounds: int) -> dict:
    """workers 2 / 0 on the whole folder; persistent workers on short epochs (128 images,
    where the workers' start-up each epoch weighs most); pinned memory only with a GPU."""
    results = {
        "workers": alternate(
            lambda: epoch_rate(train_loader(root, 2)),
            lambda: epoch_rate(train_loader(root, 0)),
            rounds,
        )
    }
    results["workers"].update(a_name="2 workers", b_name="0 workers (main process)")
    persistent = train_loader(root, 2, persistent_workers=True, per_class=64)
    fresh = train_loader(root, 2, per_class=64)
    epoch_rate(persistent)  # the first epoch starts the workers either way
    results["persistent_workers"] = alternate(
        lambda: epoch_rate(persistent), lambda: epoch_rate(fresh), rounds
    )
    if torch.cuda.is_available():
        results["pin_memory"] = alternate(
            lambda: epoch_rate(train_loader(root, 2, pin_memory=True)),
            lambda: epoch_rate(train_loader(root, 2)),
            rounds,
        )
    for result in results.values():
        result.update(unit="images/s", what="train loader epoch, 224 px")
    return results


def knob_benchmarks(
    root: Path, rounds: int, batch_size: int, image_size: int, steps: int, compile_body: bool
) -> dict:
    """{knob: alternate() result with A = knob set, B = the default without it}."""
    models = model_knobs(rounds, batch_size, image_size, steps, compile_body)
    return {**models, **loader_knobs(root, rounds)}
