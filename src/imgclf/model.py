"""ImageClassifier: a pretrained timm body plus the fastai head, as a LightningModule."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from functools import partial

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from imgclf.groups import apply_freeze, layer_groups, set_eval, spread_lrs
from imgclf.head import HEAD_FEATURES_INDEX, create_head
from imgclf.optim import GroupedAdamW, layer_param_groups
from imgclf.recipe import Stage
from imgclf.schedules import build_scheduler, one_cycle_factor, sgdr_factor
from imgclf.weights import create_body, data_config_for

# What a model trains with when no recipe stage was set: everything, one cycle, 1e-3.
DEFAULT_STAGE = Stage(name="train", lr=1e-3, schedule="one_cycle")


def pixel_stats(values: Sequence[float]) -> torch.Tensor:
    """Per-channel mean or std on the 0..255 pixel scale, shaped to broadcast over NCHW."""
    return torch.tensor([255.0 * float(v) for v in values]).view(1, 3, 1, 1)


class ImageClassifier(L.LightningModule):
    """timm body (`num_classes=0`, no pooling) + concat-pool head, trained with AdamW.

    The parameters split into `n_groups` layer groups (early body, late body, head by
    default). A recipe stage (`set_stage`) decides which groups train, their learning
    rates and the schedule; every stage is its own `Trainer.fit` call, so DDP wraps the
    model afresh after each freeze change. Metrics follow the course: accuracy is the
    share of images right (micro average), log-loss the mean per-image cross-entropy.
    """

    def __init__(
        self,
        num_classes: int,
        backbone: str = "tf_efficientnet_lite0",
        weights: str = "auto",
        head_hidden: Sequence[int] = (512,),
        head_dropout: Sequence[float] = (0.25, 0.5),
        n_groups: int = 3,
        weight_decay: float = 0.01,
        class_names: Sequence[str] | None = None,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        # Plain Python types in hparams, so checkpoints load with torch.load(weights_only=True)
        # even when Hydra passed ListConfigs.
        head_hidden = [int(n) for n in head_hidden]
        head_dropout = [float(p) for p in head_dropout]
        class_names = [str(name) for name in class_names] if class_names is not None else None
        self.save_hyperparameters()
        self.body = create_body(backbone, weights)
        self.head = create_head(self.body.num_features, num_classes, head_hidden, head_dropout)
        self.data_config = data_config_for(self.body)
        # Batches arrive as uint8 pixels and are normalised here, on the model's device.
        # Not saved in checkpoints: they follow from the backbone's config.
        self.register_buffer("pixel_mean", pixel_stats(self.data_config["mean"]), persistent=False)
        self.register_buffer("pixel_std", pixel_stats(self.data_config["std"]), persistent=False)
        self.groups = layer_groups(self.body, self.head, n_groups)
        if channels_last:  # NHWC convolutions: faster on CPU (oneDNN) and on tensor cores
            self.body.to(memory_format=torch.channels_last)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        # Saved in checkpoints, so an epoch resumed in the middle reports the whole epoch.
        self.train_acc.persistent(True)
        self.valid_acc = MulticlassAccuracy(num_classes, average="micro")
        self.valid_logloss = MeanMetric()
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_logloss = MeanMetric()
        self.stage = DEFAULT_STAGE
        self.stage_lrs: list[float] | None = None
        # "images" normally; "features" while a precompute stage feeds cached body features.
        self.input_kind = "images"
        self._held_in_eval: list[nn.Module] = []
        # The input size the model last trained at (stages may resize); saved in checkpoints
        # so evaluate, predict and export feed what the model knows.
        self.image_size: int | None = None
        # Where a recipe stands (set by fit_recipe; saved in checkpoints for resume): the
        # 1-based index of the running stage and one summary record per stage begun so far.
        self.stage_index = 0
        self.recipe_records: list[dict] = []

    # -- stages --------------------------------------------------------------------------
    @property
    def group_names(self) -> list[str]:
        return [group.name for group in self.groups]

    def set_stage(self, stage: Stage, lrs: Sequence[float] | None = None) -> list[float]:
        """Freeze/unfreeze for `stage` and fix its per-group learning rates (returned)."""
        self.stage = stage
        if lrs is None:
            lrs = spread_lrs(stage.lr, len(self.groups), stage.lr_mult)
        self.stage_lrs = [float(lr) for lr in lrs]
        # A precompute stage never runs the body: hold it entirely, statistics included.
        train_bn = stage.train_bn and not stage.precompute
        self._held_in_eval = apply_freeze(self, self.groups, stage.freeze_to, train_bn)
        self.input_kind = "features" if stage.precompute else "images"
        if self.training:
            set_eval(self._held_in_eval)
        return self.stage_lrs

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:  # Lightning switches to train mode every epoch: keep frozen norms frozen
            set_eval(self._held_in_eval)
        return self

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["imgclf"] = {
            "image_size": self.image_size,
            "stage": self.stage.name,
            "stage_index": self.stage_index,
            "stage_lrs": list(self.stage_lrs) if self.stage_lrs is not None else None,
            "recipe_records": copy.deepcopy(self.recipe_records),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.image_size = (checkpoint.get("imgclf") or {}).get("image_size")

    # -- forward and steps ---------------------------------------------------------------
    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 pixels (what the data pipelines deliver) -> the backbone's normalised floats.
        Float input is taken as normalised already (synthetic or hand-made batches)."""
        if images.dtype != torch.uint8:
            return images
        return (images.float() - self.pixel_mean) / self.pixel_std

    def run_body(self, images: torch.Tensor) -> torch.Tensor:
        images = self.normalize(images)
        if self.hparams.get("channels_last"):
            images = images.contiguous(memory_format=torch.channels_last)
        return self.body(images)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.run_body(x))

    def head_on_features(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from pooled body features (what the precompute cache stores)."""
        return self.head[HEAD_FEATURES_INDEX:](features)

    def pooled_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.head[:HEAD_FEATURES_INDEX](self.run_body(images))

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head_on_features(inputs) if self.input_kind == "features" else self(inputs)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        inputs, labels = batch
        logits = self.logits(inputs)
        loss = F.cross_entropy(logits, labels)
        self.train_acc(logits, labels)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        """Logs accuracy and log-loss; returns the probabilities (for CollectPredictions)."""
        inputs, labels = batch
        logits = self.logits(inputs)
        self.valid_acc(logits, labels)
        self.valid_logloss(F.cross_entropy(logits, labels, reduction="none"))
        self.log("valid/acc", self.valid_acc, prog_bar=True)
        self.log("valid/logloss", self.valid_logloss, prog_bar=True)
        return logits.detach().softmax(dim=1)

    def test_step(self, batch, batch_idx: int) -> torch.Tensor:
        """Probabilities of a test batch; accuracy and log-loss too when it is labelled."""
        inputs, labels = batch
        logits = self.logits(inputs)
        if bool((labels >= 0).all()):
            self.test_acc(logits, labels)
            self.test_logloss(F.cross_entropy(logits, labels, reduction="none"))
            self.log("test/acc", self.test_acc)
            self.log("test/logloss", self.test_logloss)
        return logits.detach().softmax(dim=1)

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, _ = batch
        return self(images).softmax(dim=1)

    # -- optimizer and schedule ----------------------------------------------------------
    def build_optimizer(self, lrs: Sequence[float]) -> GroupedAdamW:
        """AdamW with one named param group per layer group at the given learning rates."""
        groups = [(g.name, [name for name, _ in g.params]) for g in self.groups]
        return GroupedAdamW(
            layer_param_groups(self, groups, lrs), weight_decay=self.hparams.weight_decay
        )

    def configure_optimizers(self):
        stage = self.stage
        lrs = self.stage_lrs or spread_lrs(stage.lr, len(self.groups), stage.lr_mult)
        optimizer = self.build_optimizer(lrs)
        if stage.schedule == "constant":
            return optimizer
        # Steps of this stage only: each stage is its own fit with its own schedule.
        steps_per_epoch = max(
            1, round(self.trainer.estimated_stepping_batches / self.trainer.max_epochs)
        )
        total = steps_per_epoch * stage.num_epochs
        if stage.schedule == "sgdr":
            factor = partial(
                sgdr_factor,
                steps_per_epoch=steps_per_epoch,
                cycle_len=stage.cycle_len,
                cycle_mult=stage.cycle_mult,
            )
        else:
            factor = partial(
                one_cycle_factor, total_steps=total, pct_start=stage.pct_start, div=stage.div
            )
        scheduler = build_scheduler(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
