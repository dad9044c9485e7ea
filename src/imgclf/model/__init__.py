"""The network and how it trains: a pretrained timm body with the fastai head, its layer
groups and freezing, the optimizer and the LR schedules (pure functions).

ImageClassifier is the entry point; a StagePlan tells it what one stage trains and how.
"""

from imgclf.model.backbone import create_body, data_config_for
from imgclf.model.classifier import ImageClassifier
from imgclf.model.groups import layer_groups, spread_lrs
from imgclf.model.head import create_head
from imgclf.model.plan import StagePlan
from imgclf.model.schedules import Schedule

__all__ = [
    "ImageClassifier",
    "Schedule",
    "StagePlan",
    "create_body",
    "create_head",
    "data_config_for",
    "layer_groups",
    "spread_lrs",
]
