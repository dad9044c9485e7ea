"""`imgclf lr-find`: the LR range test for one recipe stage; plot, suggestion, summary.json."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from imgclf.commands.startup import build_data_and_model, start_run
from imgclf.commands.train import check_image_sizes, recipe_of
from imgclf.errors import UserError
from imgclf.reporting import write_json
from imgclf.training.checkpoints import find_checkpoint, read_checkpoint
from imgclf.training.recipe import Stage
from imgclf.training.runner import find_stage_lrs, stage_loaders


def pick_stage(stages: list[Stage], wanted) -> Stage:
    """`lr_find.stage`: a name, an index, or None for the first stage with lr auto."""
    if wanted is None:
        return next((s for s in stages if s.lr == "auto"), stages[0])
    for i, stage in enumerate(stages):
        if str(wanted) in (stage.name, str(i)):
            return stage
    raise UserError(
        f"no stage {wanted!r} in the recipe; stages: {', '.join(s.name for s in stages)}"
    )


def lr_find_command(cfg: DictConfig) -> Path:
    run = start_run(cfg, begin=False)
    stage = pick_stage(recipe_of(cfg), cfg.lr_find.get("stage"))
    datamodule, model = build_data_and_model(cfg)
    if cfg.get("ckpt"):  # sweep from a trained run's weights
        state = read_checkpoint(find_checkpoint(cfg.ckpt))
        model.load_state_dict(state["state_dict"])
    check_image_sizes(model, datamodule, [stage])
    run.begin()  # the stage, data, model and weights are fine: the run's files and loggers
    trainer: L.Trainer = instantiate(cfg.trainer, logger=run.loggers or False)
    image_size = stage.image_size or datamodule.image_size
    cache_dir = Path(cfg.paths.cache_dir)
    loaders, precomputed = stage_loaders(trainer, model, datamodule, stage, image_size, cache_dir)
    settings = OmegaConf.to_container(cfg.lr_find, resolve=True)
    _, found = find_stage_lrs(
        trainer, model, loaders["train_dataloaders"], stage, run.directory, settings, "lr_find.png"
    )
    record: dict = {"stage": stage.name, "lr_find": found}
    if precomputed:
        record["precompute"] = precomputed
    write_json(run.directory / "summary.json", record)
    return run.finish()
