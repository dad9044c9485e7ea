"""The `clip:` setting (auto, a number, or off) and the eps a run recorded in its checkpoint.
Needs no torch: `imgclf predict` through the cached ONNX file reads both."""

from __future__ import annotations

from imgclf.errors import UserError

# The course's Dogs-vs-Cats clip: p in [0.05, 0.95].
DEFAULT_EPS = 0.05


def recorded_eps(checkpoint: dict) -> float | None:
    """The eps that `clip: auto` chose on the last validation before `checkpoint` was saved
    (ClipProbabilities' state in a Lightning checkpoint dict); None if none was chosen."""
    state = (checkpoint.get("callbacks") or {}).get("ClipProbabilities") or {}
    eps = state.get("chosen_eps")
    return None if eps is None else float(eps)


def parse_eps(eps) -> float | str | None:
    """`clip:` config value: auto, a number in [0, 0.5), or null/false/0 for no clipping."""
    if eps is None or eps is False or str(eps).lower() in ("none", "null", "false", "off"):
        return None
    if str(eps).lower() == "auto":
        return "auto"
    if str(eps).lower() == "course":
        return DEFAULT_EPS
    try:
        value = float(eps)
    except (TypeError, ValueError):
        raise UserError(f"clip must be auto, a number like 0.05, or null; got {eps!r}") from None
    if not 0.0 <= value < 0.5:
        raise UserError(f"clip eps must be in [0, 0.5), got {value}")
    return value
