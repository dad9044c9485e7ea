"""ImageClassifier: a pretrained timm body plus the fastai head, as a LightningModule."""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from imgclf.head import create_head
from imgclf.optim import param_groups
from imgclf.weights import create_body, data_config_for

SCHEDULERS = ("one_cycle", "cosine", "constant")


class ImageClassifier(L.LightningModule):
    """timm body (`num_classes=0`, no pooling) + concat-pool head, trained with AdamW.

    Metrics follow the course: accuracy is the share of images right (micro average)
    and log-loss is the mean per-image cross-entropy, the Kaggle Dogs-vs-Cats score.
    """

    def __init__(
        self,
        num_classes: int,
        backbone: str = "tf_efficientnet_lite0",
        weights: str = "auto",
        head_hidden: Sequence[int] = (512,),
        head_dropout: Sequence[float] = (0.25, 0.5),
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        scheduler: str = "one_cycle",
        pct_start: float = 0.25,
        class_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if scheduler not in SCHEDULERS:
            raise ValueError(
                f"unknown scheduler {scheduler!r}: choose one of {', '.join(SCHEDULERS)}"
            )
        # Plain Python types in hparams, so checkpoints load with torch.load(weights_only=True)
        # even when Hydra passed ListConfigs.
        head_hidden = [int(n) for n in head_hidden]
        head_dropout = [float(p) for p in head_dropout]
        class_names = [str(name) for name in class_names] if class_names is not None else None
        self.save_hyperparameters()
        self.body = create_body(backbone, weights)
        self.head = create_head(self.body.num_features, num_classes, head_hidden, head_dropout)
        self.data_config = data_config_for(self.body)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.valid_acc = MulticlassAccuracy(num_classes, average="micro")
        self.valid_logloss = MeanMetric()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        self.train_acc(logits, labels)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        images, labels = batch
        logits = self(images)
        self.valid_acc(logits, labels)
        self.valid_logloss(F.cross_entropy(logits, labels, reduction="none"))
        self.log("valid/acc", self.valid_acc, prog_bar=True)
        self.log("valid/logloss", self.valid_logloss, prog_bar=True)

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, _ = batch
        return self(images).softmax(dim=1)

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.AdamW(param_groups(self, hp.weight_decay), lr=hp.lr)
        if hp.scheduler == "constant":
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        if hp.scheduler == "one_cycle":
            # fastai's fit_one_cycle: warm up from lr/25, anneal to lr/1e5, momentum cycled.
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer,
                max_lr=hp.lr,
                total_steps=total,
                pct_start=hp.pct_start,
                div_factor=25.0,
                final_div_factor=1e5,
            )
        else:
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
