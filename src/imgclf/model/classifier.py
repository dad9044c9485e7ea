"""ImageClassifier: a pretrained timm body plus the fastai head, as a LightningModule."""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch
from torch import nn
from torchmetrics import MeanMetric

from imgclf.model.backbone import create_body, data_config_for
from imgclf.model.groups import apply_freeze, layer_groups, norm_layers, set_eval
from imgclf.model.head import HEAD_FEATURES_INDEX, create_head
from imgclf.model.loss import check_class_weights, check_label_smoothing, check_task_options
from imgclf.model.mixing import batch_mixer
from imgclf.model.network import head_layers, normalize_pixels, pixel_stats
from imgclf.model.optim import GroupedAdamW, layer_param_groups
from imgclf.model.plan import StagePlan
from imgclf.model.schedules import build_scheduler
from imgclf.task import task_named

# What a model trains with when no recipe stage was set: everything, one cycle, 1e-3.
DEFAULT_LR = 1e-3


class ImageClassifier(L.LightningModule):
    """timm body (`num_classes=0`, no pooling) + concat-pool head, trained with AdamW.

    The parameters split into `n_groups` layer groups (early body, late body, head by
    default). A recipe stage's plan (`set_stage`) decides which groups train, their learning
    rates, the schedule and the input size; every stage is its own `Trainer.fit` call, so DDP wraps the
    model afresh after each freeze change. Metrics follow the course: accuracy is the
    share of images right (micro average), log-loss the mean per-image cross-entropy.
    """

    def __init__(
        self,
        num_classes: int,
        backbone: str = "tf_efficientnet_lite0",
        weights: str = "auto",
        head_hidden: Sequence[int] | int = (512,),
        head_dropout: Sequence[float] | float = (0.25, 0.5),
        n_groups: int = 3,
        weight_decay: float = 0.01,
        class_names: Sequence[str] | None = None,
        channels_last: bool = True,
        label_smoothing: float = 0.0,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        mix_prob: float = 1.0,
        class_weights: Sequence[float] | None = None,
        task: str = "single",
    ) -> None:
        super().__init__()
        # Plain Python types in hparams, so checkpoints load with torch.load(weights_only=True)
        # even when Hydra passed ListConfigs.
        head_hidden, head_dropout = head_layers(head_hidden, head_dropout)
        class_names = [str(name) for name in class_names] if class_names is not None else None
        label_smoothing = check_label_smoothing(label_smoothing)
        class_weights = check_class_weights(class_weights, num_classes)
        # The task owns loss, activation, metrics and decoding (imgclf.task).
        self.task = task_named(task)
        check_task_options(
            self.task.name, label_smoothing, mixup_alpha, cutmix_alpha, class_weights
        )
        self.save_hyperparameters()
        # Multi-label: per-class thresholds chosen on validation, kept in checkpoints.
        self.thresholds: list[float] | None = None
        # None when mixup and cutmix are off.
        self.mixer = batch_mixer(mixup_alpha, cutmix_alpha, mix_prob, num_classes)
        per_class = torch.tensor(class_weights) if class_weights else torch.empty(0)
        self.register_buffer("class_weights", per_class, persistent=False)
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
        self._add_metrics(num_classes)
        self.plan = StagePlan(name="train", lrs=(DEFAULT_LR,) * len(self.groups))
        self._held_in_eval: list[nn.Module] = []
        # The input size the model last trained at (stages may resize); saved in checkpoints
        # so evaluate, predict and export feed what the model knows.
        self.image_size: int | None = None

    def _add_metrics(self, num_classes: int) -> None:
        """The task's accuracy and the mean log-loss of each split."""
        self.train_acc = self.task.accuracy(num_classes)
        # Saved in checkpoints, so an epoch resumed in the middle reports the whole epoch.
        self.train_acc.persistent(True)
        # The epoch's mean training loss (train/loss_epoch) beside the per-step train/loss.
        self.train_loss_mean = MeanMetric()
        self.train_loss_mean.persistent(True)
        self.valid_acc = self.task.accuracy(num_classes)
        self.valid_logloss = MeanMetric()
        self.test_acc = self.task.accuracy(num_classes)
        self.test_logloss = MeanMetric()

    # -- stages --------------------------------------------------------------------------
    @property
    def group_names(self) -> list[str]:
        return [group.name for group in self.groups]

    @property
    def class_names(self) -> list[str]:
        """The class names it was trained on, or "0", "1", ... when none were given."""
        names = self.hparams.class_names
        return list(names) if names else [str(i) for i in range(self.hparams.num_classes)]

    def set_stage(self, plan: StagePlan) -> None:
        """Freeze/unfreeze for a stage and keep its LRs, schedule and input size."""
        if len(plan.lrs) != len(self.groups):
            raise ValueError(f"{len(plan.lrs)} learning rates for {len(self.groups)} layer groups")
        self.plan = plan
        # A precompute stage never runs the body: hold it entirely, statistics included.
        train_bn = plan.train_bn and not plan.on_features
        self._held_in_eval = apply_freeze(self, self.groups, plan.freeze_to, train_bn)
        if plan.norm_stats in ("frozen", "adapt") and not plan.on_features:
            self._held_in_eval = norm_layers(self.body)
        if plan.image_size is not None:
            self.image_size = int(plan.image_size)
        if self.training:  # release norms the last stage held, hold this stage's
            self.train(True)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:  # Lightning switches to train mode every epoch: keep frozen norms frozen
            set_eval(self._held_in_eval)
        return self

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["imgclf"] = {
            "image_size": self.image_size,
            "stage": self.plan.name,
            "thresholds": self.thresholds,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint.get("imgclf") or {}
        self.image_size = saved.get("image_size")
        self.thresholds = saved.get("thresholds")

    def set_thresholds(self, thresholds: Sequence[float] | None) -> None:
        """Multi-label: the per-class thresholds chosen on validation (saved in checkpoints)."""
        self.thresholds = [float(t) for t in thresholds] if thresholds is not None else None

    # -- forward and steps ---------------------------------------------------------------
    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Pixels -> the backbone's normalised floats (`normalize_pixels`)."""
        return normalize_pixels(images, self.pixel_mean, self.pixel_std)

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
        return self.head_on_features(inputs) if self.plan.on_features else self(inputs)

    def mixed(self, inputs: torch.Tensor, labels: torch.Tensor):
        """(inputs, targets): MixUp/CutMix on an image batch when on, else as they came.

        Cached features (a precompute stage) are not mixed: fastai mixes input images, and
        mixing pooled features of two images is another thing (manifold mixup at the last
        layer), not measured here; the head stage trains on its augmented views unmixed.
        """
        if self.mixer is None or self.plan.on_features:
            return inputs, labels
        if inputs.dtype == torch.uint8:  # 0..1 floats: the model's rule for float pixels
            inputs = inputs.float() / 255.0
        return self.mixer(inputs, labels)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        inputs, labels = batch
        inputs, targets = self.mixed(inputs, labels)
        logits = self.logits(inputs)
        weights = self.class_weights if self.class_weights.numel() else None
        loss = self.task.training_loss(logits, targets, self.hparams.label_smoothing, weights)
        self.train_acc(logits, labels)
        self.train_loss_mean(loss.detach())
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/loss_epoch", self.train_loss_mean, on_step=False, on_epoch=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        """Logs accuracy and log-loss; returns the probabilities (for CollectPredictions)."""
        inputs, labels = batch
        logits = self.logits(inputs)
        self.valid_acc(logits, labels)
        self.valid_logloss(self.task.sample_losses(logits, labels))
        self.log("valid/acc", self.valid_acc, prog_bar=True)
        self.log("valid/logloss", self.valid_logloss, prog_bar=True)
        return self.task.activation(logits.detach())

    def test_step(self, batch, batch_idx: int) -> torch.Tensor:
        """Probabilities of a test batch; accuracy and log-loss too when it is labelled."""
        inputs, labels = batch
        logits = self.logits(inputs)
        if bool((labels >= 0).all()):
            self.test_acc(logits, labels)
            self.test_logloss(self.task.sample_losses(logits, labels))
            self.log("test/acc", self.test_acc)
            self.log("test/logloss", self.test_logloss)
        return self.task.activation(logits.detach())

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, _ = batch
        return self.task.activation(self(images))

    # -- optimizer and schedule ----------------------------------------------------------
    def build_optimizer(self, lrs: Sequence[float]) -> GroupedAdamW:
        """AdamW with one named param group per layer group at the given learning rates."""
        groups = [(g.name, [name for name, _ in g.params]) for g in self.groups]
        return GroupedAdamW(
            layer_param_groups(self, groups, lrs), weight_decay=self.hparams.weight_decay
        )

    def configure_optimizers(self):
        optimizer = self.build_optimizer(self.plan.lrs)
        if self.plan.schedule.kind == "constant":
            return optimizer
        # Steps of this stage only: each stage is its own fit with its own schedule.
        steps_per_epoch = max(
            1, round(self.trainer.estimated_stepping_batches / self.trainer.max_epochs)
        )
        scheduler = build_scheduler(optimizer, self.plan.schedule.factor(steps_per_epoch))
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
