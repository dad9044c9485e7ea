"""One image through `imgclf predict`, as a user runs it: the wall time of the whole
command (interpreter start-up, imports, model load, prediction, files written), timed over
several rounds on a small run trained first.

Two commands: the default (TTA x4, clip=auto: the eps the run chose on its validation set
in training, saved in the checkpoint) and the quickest answer for one photo
(`tta.n=0 clip=null`). Both run without Lightning (trainer=cpu, no logger). Goal: one image
in under 3 s on 2 idle cores.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks.runs import check, imgclf_command, run_dir_of, run_measured

GOAL_SECONDS = 3.0
VARIANTS = {"default": (), "no TTA, no clipping": ("tta.n=0", "clip=null")}


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
    variants = {}
    for name, overrides in VARIANTS.items():
        command = imgclf_command(
            "predict", f"ckpt={run}", f"input={image}", f"paths.log_dir={workdir / 'logs'}",
            *overrides,
        )  # fmt: skip
        seconds = [
            check(run_measured(command, cwd=workdir), f"imgclf predict ({name})")["wall_seconds"]
            for _ in range(rounds)
        ]
        variants[name] = {
            "command": "imgclf predict ckpt=<run> input=<one image> " + " ".join(overrides),
            "median_seconds": statistics.median(seconds),
            "round_seconds": seconds,
            "goal_met": statistics.median(seconds) < GOAL_SECONDS,
        }
    return {"image_size": image_size, "goal_seconds": GOAL_SECONDS, "variants": variants}


def markdown_lines(result: dict) -> list[str]:
    """The report's paragraph on one-image predict latency."""
    parts = [
        f"`{v['command'].strip()}` {v['median_seconds']:.1f} s"
        f" (goal < {result['goal_seconds']:.0f} s: {'yes' if v['goal_met'] else 'NO'})"
        for v in result["variants"].values()
    ]
    return [
        f"**One image through imgclf predict** (the whole command, median of rounds; a run "
        f"at {result['image_size']} px): " + "; ".join(parts) + ".",
        "",
    ]
