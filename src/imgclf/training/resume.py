"""Resuming a killed run: `imgclf train resume=RUN_DIR|CHECKPOINT [overrides]`.

`resume=RUN_DIR` takes RUN_DIR/checkpoints/last.ckpt, or interrupted.ckpt when that is
newer. A checkpoint inside a run directory (`<run>/checkpoints/*.ckpt`) continues that run in
place: the same directory, the run's own overrides (from `<run>/.hydra/overrides.yaml`, the
ones given now win), checkpoints, summary and CSV/TensorBoard logs. A checkpoint anywhere else starts a new run directory.

The checkpoint says where the recipe stood (the state of the RecipeProgress callback): the
running stage, its learning rates (so its LR finder is not run again) and the summary
records of the stages before it, which are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from imgclf.errors import UserError
from imgclf.training.checkpoints import INTERRUPTED, LAST, find_checkpoint, read_checkpoint
from imgclf.training.progress import RecipeProgress


@dataclass
class ResumePoint:
    checkpoint: Path
    stage_index: int  # 1-based: the stage that was running
    stage_lrs: list[float] | None
    records: list[dict] = field(default_factory=list)  # one per stage begun, the last one running
    stages_done: int = 0  # stages that had finished when the checkpoint was saved
    hparams: dict = field(default_factory=dict)  # the model's (backbone, classes, ...)
    shapes: dict = field(default_factory=dict)  # parameter name -> shape

    def finished(self, num_stages: int) -> bool:
        """The checkpoint was saved at the end of the recipe's last stage."""
        return self.stages_done >= num_stages


def resume_checkpoint(path: str | Path) -> Path:
    """The checkpoint to resume from: the file itself, or in a run directory the newer of
    checkpoints/last.ckpt and checkpoints/interrupted.ckpt (a signal saves the latter after
    the batch in flight, later than the last step checkpoint)."""
    try:
        checkpoint = find_checkpoint(Path(str(path)).expanduser().absolute(), (LAST, INTERRUPTED))
    except UserError as err:
        raise UserError(f"resume: {err}") from None
    stopped = checkpoint.with_name(INTERRUPTED)
    in_run = checkpoint.name == LAST and Path(str(path)).expanduser().is_dir()
    if in_run and stopped.is_file() and stopped.stat().st_mtime_ns > checkpoint.stat().st_mtime_ns:
        return stopped
    return checkpoint


def run_dir_of(checkpoint: Path) -> Path | None:
    """The run directory a checkpoint belongs to (`<run>/checkpoints/x.ckpt`), else None."""
    folder = checkpoint.parent
    if folder.name == "checkpoints" and (folder.parent / "config.yaml").is_file():
        return folder.parent
    return None


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def resume_argv(argv: list[str]) -> list[str]:
    """`imgclf train` overrides with `resume=...` expanded: the run's saved overrides first
    (the ones given now replace them key by key), and the run directory as Hydra's output."""
    values = [o.split("=", 1)[1] for o in argv if "=" in o and override_key(o) == "resume"]
    if not values or values[-1] in ("", "null", "None"):
        return argv
    checkpoint = resume_checkpoint(values[-1])
    run_dir = run_dir_of(checkpoint)
    if run_dir is None:
        return argv
    saved_file = run_dir / ".hydra" / "overrides.yaml"
    saved = yaml.safe_load(saved_file.read_text()) if saved_file.is_file() else []
    given = {override_key(o) for o in argv}
    merged = [o for o in saved or [] if override_key(o) not in given] + list(argv)
    if "hydra.run.dir" not in given:
        merged.append(f'hydra.run.dir="{run_dir}"')
    return merged


def load_resume_point(path: str | Path) -> ResumePoint:
    """Read where a run stood from its checkpoint (weights-only load)."""
    checkpoint = resume_checkpoint(path)
    state = read_checkpoint(checkpoint)
    progress = (state.get("callbacks") or {}).get(RecipeProgress.__qualname__) or {}
    if "loops" not in state or not progress.get("stage_index"):
        raise UserError(
            f"resume: {checkpoint} is not a training checkpoint of an imgclf recipe "
            "(no loop state or no stage index)"
        )
    return ResumePoint(
        checkpoint=checkpoint,
        stage_index=int(progress["stage_index"]),
        stage_lrs=progress.get("stage_lrs"),
        records=list(progress.get("records") or []),
        stages_done=int(progress.get("stages_done") or 0),
        hparams=dict(state.get("hyper_parameters") or {}),
        shapes={k: tuple(v.shape) for k, v in (state.get("state_dict") or {}).items()},
    )


def check_resume_fits(resume: ResumePoint, model) -> None:
    """The model built from the config now must be the one the checkpoint holds: same
    backbone, same classes, same tensors. A one-line error otherwise, before anything of the
    run is rewritten (instead of a `size mismatch` traceback from the loading)."""
    where = f"resume: {resume.checkpoint} was trained"
    saved, now = resume.hparams, dict(model.hparams)
    if saved.get("backbone") and saved["backbone"] != now.get("backbone"):
        raise UserError(
            f"{where} with model.backbone={saved['backbone']}, not {now.get('backbone')}: "
            "resume with the run's own model"
        )
    if saved.get("class_names") and list(saved["class_names"]) != list(now["class_names"]):
        raise UserError(
            f"{where} on classes {list(saved['class_names'])[:10]}, but the data now has "
            f"{list(now['class_names'])[:10]}: resume with the run's own data"
        )
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for name in sorted(set(shapes) | set(resume.shapes)):
        if shapes.get(name) != resume.shapes.get(name):
            raise UserError(
                f"{where} with a different model: {name} is {resume.shapes.get(name)} there "
                f"and {shapes.get(name)} now (model settings differ from the run's)"
            )
