"""What a hyperparameter search (`imgclf train -m hparams_search=...`, a Hydra sweeper)
needs from a command: the value it optimises, and failed trials reported, not lost.

The sweeper reads the task function's return value; Optuna's marks a trial whose job raised
as failed and (with `max_failure_rate`) goes on, but logs only "Error executing job", so
each trial says here what went wrong, as lightning-hydra-template's `task_wrapper` does.
"""

from __future__ import annotations

import logging
import math
import sys

from imgclf.errors import UserError, one_line

# summary.json keys a sweeper can optimise (`optimized_metric`).
OPTIMIZABLE = (
    "best_valid_acc",
    "final_valid_acc",
    "valid_logloss",
    "valid_logloss_clipped",
    "best_valid_fbeta",  # multi-label runs
)

log = logging.getLogger(__name__)


def check_optimized_metric(name: str | None) -> None:
    """A one-line error before any work for a name train cannot return."""
    if name is not None and name not in OPTIMIZABLE:
        raise UserError(f"optimized_metric={name!r}: choose one of {', '.join(OPTIMIZABLE)}")


def optimized_value(summary: dict, name: str | None) -> float | None:
    """`summary[name]` as a float for the sweeper; None without a name. A run without that
    value (no validation) or with a NaN raises: the sweeper then marks the trial failed,
    where a returned NaN would stop Optuna 2.10's sweeper altogether."""
    if name is None:
        return None
    check_optimized_metric(name)
    value = summary.get(name)
    if value is None or not math.isfinite(float(value)):
        raise UserError(f"optimized_metric {name}: the run ended without a finite value ({value})")
    return float(value)


def in_multirun() -> bool:
    """Whether this process runs Hydra's multirun (`-m`): a sweep of trials."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def report_failed_trial(err: BaseException) -> None:
    """Say which trial failed and why (a UserError in one line, anything else with its
    traceback, in the trial's cli.log too), and close a W&B run the trial left open, so the
    next trial starts its own."""
    from hydra.core.hydra_config import HydraConfig

    from imgclf.reporting.run_log import start_run_log

    # A trial that failed in its checks (before its run began) still keeps its reason in
    # its own cli.log: the trial's directory is its own, never another run's.
    start_run_log()
    job = HydraConfig.get().job
    where = HydraConfig.get().runtime.output_dir
    log.error(
        "trial %s failed (%s): %s",
        job.num,
        where,
        one_line(err),
        exc_info=None if isinstance(err, UserError) else err,
    )
    wandb = sys.modules.get("wandb")  # imported only when a W&B logger was built
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=1)
