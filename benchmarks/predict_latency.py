"""One image through `imgclf predict`, as a user runs it: the wall time of the whole
command (interpreter start-up, imports, model load, prediction, files written), timed over
several rounds on a small run trained first.

The run's first prediction is timed once (training left best.ckpt's network cached as ONNX
beside it); then, over the rounds, the default command (one image: `tta.n=auto` makes no
TTA passes, so it runs from the cached ONNX file without importing torch; clip=auto: the
eps the run chose in training) and the same image with TTA x4 (`tta.n=4`, through torch). All run without Lightning (trainer=cpu, no logger). Goal: one
image in under 3 s on 2 idle cores.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks.runs import check, imgclf_command, run_dir_of, run_measured

GOAL_SECONDS = 3.0
DEFAULT = "default (from the cached ONNX file)"
# The goal is the default command's; TTA x4 shows what the passes through torch cost.
VARIANTS = {DEFAULT: (), "TTA x4 (through torch)": ("tta.n=4",)}


def train_small_run(root: Path, workdir: Path, image_size: int, extra: tuple[str, ...]) -> Path:
    """A quick two-stage run on `root` (10 images a class) to predict with."""
    command = imgclf_command(
        "train",
        "data=folder",
        f"data.root={root}",
        f"data.image_size={image_size}",
        "data.per_class=10",
        "recipe=fine_tune",
        "recipe.stages.1.epochs=1",
        "logger=csv",
        f"paths.log_dir={workdir / 'logs'}",
        f"paths.cache_dir={workdir / 'cache'}",
        *extra,
    )
    return run_dir_of(check(run_measured(command, cwd=workdir), "training the run")["stdout"])


def predict_benchmark(
    root: Path, workdir: Path, rounds: int, image_size: int = 96, extra: tuple[str, ...] = ()
) -> dict:
    """Median wall seconds of `imgclf predict ckpt=<run> input=<one image>` per variant."""
    run = train_small_run(root, workdir, image_size, extra)
    image = next(path for path in sorted((root / "train").rglob("*")) if path.is_file())

    def command(*overrides: str) -> list[str]:
        return imgclf_command(
            "predict", f"ckpt={run}", f"input={image}", f"paths.log_dir={workdir / 'logs'}",
            *overrides,
        )  # fmt: skip

    first = check(run_measured(command(), cwd=workdir), "the first imgclf predict")
    variants = {}
    for name, overrides in VARIANTS.items():
        seconds = [
            check(run_measured(command(*overrides), cwd=workdir), f"imgclf predict ({name})")[
                "wall_seconds"
            ]
            for _ in range(rounds)
        ]
        variants[name] = {
            "command": "imgclf predict ckpt=<run> input=<one image> " + " ".join(overrides),
            "median_seconds": statistics.median(seconds),
            "round_seconds": seconds,
            "goal_met": statistics.median(seconds) < GOAL_SECONDS if name == DEFAULT else None,
        }
    return {
        "image_size": image_size,
        "goal_seconds": GOAL_SECONDS,
        "first_call_seconds": first["wall_seconds"],
        "variants": variants,
    }


def markdown_lines(result: dict) -> list[str]:
    """The report's paragraph on one-image predict latency."""
    parts = [
        f"`{v['command'].strip()}` {v['median_seconds']:.1f} s"
        + (
            ""
            if v["goal_met"] is None
            else f" (goal < {result['goal_seconds']:.0f} s: {'yes' if v['goal_met'] else 'NO'})"
        )
        for v in result["variants"].values()
    ]
    first = result.get("first_call_seconds")
    first_text = (
        f" The run's first prediction after training: {first:.1f} s." if first is not None else ""
    )
    return [
        f"**One image through imgclf predict** (the whole command, median of rounds; a run "
        f"at {result['image_size']} px): " + "; ".join(parts) + "." + first_text,
        "",
    ]
