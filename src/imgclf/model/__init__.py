"""The network and how it trains: a pretrained timm body with the fastai head, its layer
groups and freezing, the optimizer and the LR schedules (pure functions).

ImageClassifier is the entry point; a StagePlan tells it what one stage trains and how.
"""

from imgclf.lazy_exports import lazy_exports

# Every name is loaded on first use (PEP 562), so importing one module of this package
# does not import the others (a command that needs no Lightning does not load it).
_EXPORTS = {
    "create_body": "imgclf.model.backbone",
    "data_config_for": "imgclf.model.backbone",
    "ImageClassifier": "imgclf.model.classifier",
    "layer_groups": "imgclf.model.groups",
    "spread_lrs": "imgclf.model.groups",
    "create_head": "imgclf.model.head",
    "StagePlan": "imgclf.model.plan",
    "Schedule": "imgclf.model.schedules",
}

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
