"""imgclf: transfer-learning image classification the fast.ai way, on Lightning, Hydra and timm."""

import os

# albumentations asks PyPI for a newer version on import; a template must never phone home.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
