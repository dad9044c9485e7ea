"""The `imgclf` command: `imgclf train|lr-find|evaluate|predict|export|serve [overrides]`,
`imgclf demo`.

Subcommands that take a config hand their arguments to Hydra, so `imgclf train --help`
lists the config groups and `group=option key=value` overrides work as in any Hydra app.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from imgclf.commands.configs import config_dir
from imgclf.errors import (
    TrainingInterrupted,
    UserError,
    missing_setting_message,
    no_space_message,
    one_line,
)

# The shell's exit status for a program stopped by SIGINT (128 + 2) and SIGTERM (128 + 15).
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

USAGE = """usage: imgclf <command> [hydra overrides]

commands:
  train    fine-tune a pretrained backbone on an image folder (see `imgclf train --help`)
  lr-find  LR range test for a recipe stage: plot, suggestion (see `imgclf lr-find --help`)
  evaluate metrics, TTA, clipping, misclassification views on the validation set (ckpt=RUN)
  predict  class probabilities and a Kaggle-style CSV (ckpt=RUN input=DIR|FILE|GLOB)
  export   ONNX or TorchScript model with normalisation and softmax (ckpt=RUN format=onnx)
  serve    a web page for the model: upload images, see classes and mistakes (ckpt=RUN)
  demo     build the embedded handwritten-digits demo folder (default: data/digits);
           `demo mosaics`: the multi-label digit mosaics (data/mosaics)

example:
  imgclf train data=folder data.root=~/data/dogscats data.image_size=128 recipe=fine_tune recipe.stages.1.epochs=3
  imgclf train data=folder data.root=~/data/dogscats
  imgclf predict ckpt=logs/train/<run> input=photo.jpg
"""


def single_console_log() -> None:
    """Print each Lightning message once. The `lightning` package attaches its own console
    handler and also propagates to the root logger, where Hydra already writes to the
    console and to cli.log; dropping Lightning's handler leaves Hydra's two."""
    import logging

    import lightning  # noqa: F401  (attaches the handler on import)

    from imgclf.reporting.quiet import quiet_third_party

    logging.getLogger("lightning").handlers.clear()
    quiet_third_party()


def quiet_console(task: Callable, cfg) -> None:
    """Third-party notices filtered; and for a command that uses Lightning, each of its
    messages printed once (`single_console_log`, which imports it)."""
    if needs_lightning(task, cfg):
        single_console_log()
    else:
        from imgclf.reporting.quiet import quiet_third_party

        quiet_third_party()


def needs_lightning(task: Callable, cfg) -> bool:
    """Whether the command imports Lightning (all but `predict` in one CPU process, which
    runs without it: `imgclf.commands.predict.without_lightning`)."""
    if task is not predict_task:
        return True
    from imgclf.commands.predict import without_lightning

    return not without_lightning(cfg)


def predict_built_as(cfg) -> dict:
    """`imgclf predict` without Lightning builds no Trainer, and loaders from `data.*`
    (`ImageLoading`): its config is checked against what it builds, which imports no
    Lightning either. Run from the checkpoint's cached ONNX file, it builds neither (and
    importing ImageLoading would import torch)."""
    from imgclf.commands.predict import runs_from_onnx, without_lightning

    if not without_lightning(cfg):
        return {}
    if runs_from_onnx(cfg):
        return {"trainer": None, "data": None}
    return {"trainer": None, "data": "imgclf.data.loading.ImageLoading"}


def is_first_process() -> bool:
    """Rank 0 of a multi-process run (torchrun sets RANK; Lightning's own launcher sets
    LOCAL_RANK and NODE_RANK), or a single process."""
    if "RANK" in os.environ:
        return int(os.environ["RANK"]) == 0
    return (
        int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0
    )


def interrupted_exit(stop, launched_rank: bool) -> None:
    """Rank 0 (or the only process) says what was saved and how to resume; every process
    exits with the signal's status. A rank that Lightning's launcher started exits 0 after a
    stop all ranks agreed on: the launcher reports the status for the job, and it kills every
    rank, itself included (SIGKILL, status 137), as soon as one of its children ends non-zero."""
    if is_first_process():
        print(stop.message, file=sys.stderr, flush=True)
    sys.exit(0 if launched_rank and stop.every_rank else stop.exit_code)


def stopped_in_set_up(cfg) -> str:
    """What a stop before training (or before a command's work) saved: nothing new."""
    command = os.environ.get("IMGCLF_COMMAND") or "the command"
    if cfg.get("resume"):
        return (
            "interrupted before training went on: nothing new was saved; resume with: "
            f"imgclf train resume={cfg.resume}"
        )
    if command == "train":
        return "interrupted before training began: nothing was saved; run the command again"
    return f"interrupted: imgclf {command} did not finish (no output is complete); run it again"


def run_hydra(task: Callable, config_name: str, argv: list[str], launched_rank=False) -> None:
    """Run `task(cfg)` as a Hydra app on `argv`, turning UserError (and a config Hydra would
    reject, checked first) into a one-line message. `launched_rank`: this process is a DDP
    rank that Lightning's launcher started (with only the overrides)."""
    import hydra

    from imgclf.processes import Terminated, install_sigterm_handler

    # A refused command removes the empty run directory Hydra made for it, never one that
    # was there before (a run to resume, a folder named with hydra.run.dir=).
    keep_directory = run_dir_existed(argv)

    @hydra.main(version_base="1.3", config_path=str(config_dir()), config_name=config_name)
    def app(cfg) -> float | None:
        from imgclf.commands.startup import discard_unstarted_run
        from imgclf.commands.sweep import in_multirun, report_failed_trial

        quiet_console(task, cfg)
        install_sigterm_handler()
        try:
            directory, value = task(cfg)
        except TrainingInterrupted as stop:  # a signal stops a sweep too
            interrupted_exit(stop, launched_rank)
        except KeyboardInterrupt as stop:  # before training (scan, set-up): nothing to save
            discard_unstarted_run(Path(cfg.paths.output_dir), keep_directory)
            if is_first_process():
                print(stopped_in_set_up(cfg), file=sys.stderr, flush=True)
            sys.exit(EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED)
        except Exception as err:
            if in_multirun():
                report_failed_trial(err)
                raise  # the sweeper marks the trial failed (and goes on, as configured)
            # Ours, or a full disk while writing a picture, a log, a CSV: one line.
            if isinstance(err, UserError):
                message = one_line(err)
            else:
                message = missing_setting_message(err) or no_space_message(err)
            if message is None:
                raise
            discard_unstarted_run(Path(cfg.paths.output_dir), keep_directory)
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)
        if directory is not None and is_first_process():
            # The last line we print is the run directory, for scripts and for humans.
            print(directory, flush=True)
        return value  # what a sweeper (`-m`) optimises; None for a single run

    check_overrides(config_name, argv)
    # Keep the real program path in argv[0]: Lightning's DDP launcher re-runs it, with
    # argv[1:], for every other rank; the subcommand travels in IMGCLF_COMMAND.
    sys.argv = [sys.argv[0], *argv]
    if {"-m", "--multirun"} & set(argv):
        run_sweep(app)
    else:
        app()


def run_sweep(app: Callable) -> None:
    """Hydra's multirun: the sweeper's own errors as one line (each trial reports its own)."""
    from imgclf.reporting.quiet import quiet_third_party

    quiet_third_party()  # the sweeper imports Optuna before the first trial
    # Hydra prints the sweeper's errors as a traceback and exits 1; raised, they come here.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        app()
    except ValueError as err:
        if "No trials are completed" in str(err):  # Optuna: no best trial to report
            raise UserError(
                "the search ended without a completed trial: every trial failed (each "
                "'trial N failed' line above says why)"
            ) from None
        raise


def run_dir_existed(argv: list[str]) -> bool:
    """Whether `hydra.run.dir=` names a directory that exists before the command runs."""
    values = [arg.split("=", 1)[1].strip("'\"") for arg in argv if arg.startswith("hydra.run.dir=")]
    return bool(values) and Path(values[-1]).expanduser().exists()


def check_overrides(config_name: str, argv: list[str]) -> None:
    """Config mistakes as one line (exit status 2) before Hydra starts: the overrides of a
    single run, or of a sweep (`-m`: its fixed values and the keys it searches)."""
    from imgclf.commands.config_check import compose_checked, sweep_checked

    options = [arg for arg in argv if arg.startswith("-")]
    overrides = [arg for arg in argv if not arg.startswith("-")]
    if not options:
        built_as = predict_built_as if config_name == "predict" else None
        compose_checked(config_dir(), config_name, overrides, built_as=built_as)
    elif set(options) <= {"-m", "--multirun"}:
        sweep_checked(config_dir(), config_name, overrides)
    # other options (--help, --cfg, ...): Hydra's own


# Each task returns (the directory to print last, the value a sweeper optimises).
def train_task(cfg) -> tuple[Path, float | None]:
    from imgclf.commands.train import train

    value = train(cfg)
    return Path(cfg.paths.output_dir), value


def lr_find_task(cfg) -> tuple[Path, None]:
    from imgclf.commands.lr_find import lr_find_command

    return lr_find_command(cfg), None


def evaluate_task(cfg) -> tuple[Path, None]:
    from imgclf.commands.evaluate import evaluate

    return evaluate(cfg), None


def predict_task(cfg) -> tuple[Path, None]:
    from imgclf.commands.predict import predict_command

    return predict_command(cfg), None


def export_task(cfg) -> tuple[Path, None]:
    from imgclf.commands.export import export

    return export(cfg), None


def serve_task(cfg) -> tuple[Path, None]:
    from imgclf.commands.serve import serve

    return serve(cfg), None


# command -> (task, Hydra entry config)
HYDRA_COMMANDS = {
    "train": (train_task, "train"),
    "lr-find": (lr_find_task, "lr_find"),
    "evaluate": (evaluate_task, "evaluate"),
    "predict": (predict_task, "predict"),
    "export": (export_task, "export"),
    "serve": (serve_task, "serve"),
}


def hydra_argv(command: str, argv: list[str]) -> list[str]:
    """The overrides Hydra gets: `~` and `$VAR` expanded in values, and the saved overrides
    of the run named by `resume=` (train) or `ckpt=` (the other commands) put first."""
    from imgclf.commands.arguments import expand_paths, run_overrides

    argv = expand_paths(argv)
    if command == "train":
        from imgclf.training.resume import resume_argv

        return resume_argv(argv)
    return run_overrides(argv, command)


def demo_command(argv: list[str]) -> None:
    """`imgclf demo [root]`: the digits; `imgclf demo mosaics [root]`: the multi-label one."""
    from imgclf.data.demo import build_digits_demo
    from imgclf.data.mosaic_demo import build_mosaic_demo

    if argv and argv[0] == "mosaics":
        root = build_mosaic_demo(argv[1] if len(argv) > 1 else "data/mosaics")
    else:
        root = build_digits_demo(argv[0] if argv else "data/digits")
    print(root)


COMMANDS = (*HYDRA_COMMANDS, "demo")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    relaunched = os.environ.get("IMGCLF_COMMAND")
    launched_rank = bool(relaunched and "LOCAL_RANK" in os.environ)
    launched_rank = launched_rank and (not argv or argv[0] not in COMMANDS)
    if launched_rank:
        argv = [relaunched, *argv]  # a DDP rank started by Lightning with only the overrides
    elif argv and argv[0] in COMMANDS:
        os.environ["IMGCLF_COMMAND"] = argv[0]
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    command, rest = argv[0], argv[1:]
    try:
        if command in HYDRA_COMMANDS:
            task, config_name = HYDRA_COMMANDS[command]
            run_hydra(task, config_name, hydra_argv(command, rest), launched_rank)
        elif command == "demo":
            demo_command(rest)
        else:
            print(f"error: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
            sys.exit(2)
    except UserError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # while the config is read, before anything started
        print("interrupted before anything started: nothing was saved", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
