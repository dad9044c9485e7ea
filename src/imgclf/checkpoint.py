"""Loading our checkpoints safely: tensors and plain Python types only, never pickled code."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import torch

from imgclf.errors import UserError


def read_checkpoint(path: str | Path) -> dict:
    """A Lightning checkpoint as a dict, loaded with `weights_only=True`.

    A file that needs arbitrary unpickling (possibly code planted by whoever made it) is
    refused with a one-line error; nothing in it runs.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"refusing to load {path}: it holds pickled objects other than tensors and plain "
            f"data, which could run code ({first[:160]}); only load checkpoints you trust "
            "and re-save them as plain state dicts"
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise UserError(
            f"cannot read checkpoint {path}: {str(err).splitlines()[0][:200]}"
        ) from None


def load_classifier(path: str | Path):
    """The ImageClassifier stored in a checkpoint, in eval mode, on the CPU.

    The architecture comes from the saved hyperparameters; the pretrained weights are not
    fetched again (the checkpoint holds every tensor).
    """
    from imgclf.model import ImageClassifier

    checkpoint = read_checkpoint(path)
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    if "num_classes" not in hparams or "state_dict" not in checkpoint:
        raise UserError(f"{path} is not an imgclf ImageClassifier checkpoint")
    hparams["weights"] = "none"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*random initialisation.*")
        model = ImageClassifier(**hparams)
    model.load_state_dict(checkpoint["state_dict"])
    model.on_load_checkpoint(checkpoint)
    # Keep what the user trained with, not the "none" used to build the empty shell.
    model.hparams.weights = checkpoint["hyper_parameters"].get("weights", "auto")
    return model.eval()
