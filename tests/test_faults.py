"""Faults: a stopped, killed or repeated run never loses or mixes results.

The stop tests run `imgclf train` in a subprocess and send it a real signal in the middle of
an epoch of the second stage, then resume and compare with an uninterrupted run.
"""

import csv
import errno
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.cli import run_cli, start_cli
from helpers.folders import make_image_folder
from helpers.resume_run import STEPS_PER_EPOCH, last_line, overrides, wait_for_a_step_in_stage_two
from lightning.pytorch.loggers import WandbLogger
from omegaconf import OmegaConf
from PIL import Image

from imgclf import cli
from imgclf.cli import main
from imgclf.commands.run_lock import LOCK_NAME, lock_run_directory, release_run_lock
from imgclf.data import FolderDataModule
from imgclf.data.images import unreadable_reason
from imgclf.errors import UserError, one_line
from imgclf.model.backbone import read_state_dict
from imgclf.reporting.loggers import SafeWandbLogger, resolve_mode, wandb_logger
from imgclf.reporting.run_log import RunLogFile
from imgclf.training.checkpoints import atomic_torch_save, load_classifier, read_checkpoint
from imgclf.training.precompute import remove_dead_partials
from imgclf.training.resume import resume_checkpoint


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory) -> tuple[Path, Path]:
    """The image folder and an uninterrupted deterministic two-stage run on it."""
    workdir = tmp_path_factory.mktemp("faults")
    root = make_image_folder(workdir / "pets", n_train=5, n_valid=3, size=40)
    return root, last_line(run_cli("train", *overrides(root, workdir, "whole"), cwd=workdir))


def stop_in_second_stage(args: list[str], cwd: Path, run_root: Path, signum: int):
    """Start `imgclf train`, send `signum` after a training step of stage 2; return the run
    directory, the exit status and what it wrote on stderr."""
    with open(cwd / "stderr.txt", "w") as stderr:
        process = start_cli("train", *args, cwd=cwd, stderr=stderr)
        try:
            run_dir = wait_for_a_step_in_stage_two(process, run_root)
            process.send_signal(signum)
            process.wait(timeout=300)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return run_dir, process.returncode, (cwd / "stderr.txt").read_text()


def files_and_times(run_dir: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}


@pytest.mark.slow  # trains (a real run, stopped and resumed)
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_saves_stops_and_resumes_exactly(whole_run, tmp_path, signum, status):
    root, whole = whole_run
    args = overrides(root, tmp_path, "stopped")
    run_dir, code, stderr = stop_in_second_stage(
        args, tmp_path, tmp_path / "stopped" / "train", signum
    )

    assert code == status, stderr[-3000:]
    assert "Traceback" not in stderr and not (run_dir / "summary.json").exists()
    saved = run_dir / "checkpoints" / "interrupted.ckpt"
    lines = stderr.strip().splitlines()
    assert lines[-2] == f"interrupted: saved {saved}"
    assert lines[-1].startswith("imgclf train ".join(["resume with: ", ""]))
    assert lines[-1].endswith(f"resume={saved}")
    # Saved at the end of a training batch of stage 2, in the middle of an epoch.
    checkpoint = read_checkpoint(saved)
    assert checkpoint["callbacks"]["RecipeProgress"]["stage_index"] == 2
    assert STEPS_PER_EPOCH < checkpoint["global_step"] < 3 * STEPS_PER_EPOCH
    assert checkpoint["global_step"] % STEPS_PER_EPOCH != 0

    result = run_cli("train", *args, f"resume={saved}", cwd=tmp_path)
    assert last_line(result) == run_dir
    expected = read_checkpoint(whole / "checkpoints" / "stage2-finetune.ckpt")
    got = read_checkpoint(run_dir / "checkpoints" / "stage2-finetune.ckpt")
    assert got["global_step"] == expected["global_step"] == 3 * STEPS_PER_EPOCH
    torch.testing.assert_close(got["state_dict"], expected["state_dict"], rtol=1e-6, atol=1e-7)
    # No lost batch and no lost validation: every epoch's metrics, as uninterrupted.
    whole_summary = json.loads((whole / "summary.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3]  # counted from 1
    for got_epoch, expected_epoch in zip(summary["history"], whole_summary["history"], strict=True):
        assert got_epoch.pop("stage", None) == expected_epoch.pop("stage", None)
        assert got_epoch == pytest.approx(expected_epoch, rel=1e-6, abs=1e-7)

    # The CSV log was continued: the validation of the first stage, before the stop, is there.
    with open(run_dir / "csv" / "metrics.csv", newline="") as stream:
        rows = [row for row in csv.DictReader(stream) if row.get("valid/acc")]
    assert [int(float(row["epoch"])) for row in rows] == [1, 2, 3]

    # last.ckpt closes the finished run; resuming it says so and rewrites nothing.
    last = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 3 * STEPS_PER_EPOCH
    assert last["callbacks"]["RecipeProgress"]["stages_done"] == 2
    before = files_and_times(run_dir)
    again = run_cli("train", *args, f"resume={run_dir}", cwd=tmp_path)
    assert last_line(again) == run_dir
    assert "ends a finished run: nothing to do" in again.stdout
    assert files_and_times(run_dir) == before  # cli.log included


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.bach_size=8"], "data.bach_size: no such setting; did you mean data.batch_size?"),
        (["recipe=foo"], "recipe=foo: no such recipe option; choose one of: fine_tune, lesson1"),
        (["trainer.max_epochs=1"], "the recipe sets the epochs: recipe.stages.<i>.epochs=N"),
        (["data.image_size=abc"], "data.image_size='abc': must be a whole number >= 1 or auto"),
        (["data.image_size=Auto"], "data.image_size='Auto': must be a whole number >= 1 or auto"),
        (["seed=abc"], "seed='abc': must be a whole number >= 0"),
        (["data.batch_size=0"], "data.batch_size=0: must be a whole number >= 1"),
        (["data.num_workers=1.5"], "data.num_workers=1.5: must be a whole number >= 0 or auto"),
    ],
)
def test_config_mistakes_are_one_line_and_exit_2(overrides, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["imgclf"])
    monkeypatch.setenv("IMGCLF_COMMAND", "")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *overrides, f"paths.log_dir={tmp_path / 'logs'}"])
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert not (tmp_path / "logs").exists()  # nothing was started


def test_the_help_example_is_a_valid_config():
    from imgclf.cli import USAGE, config_dir
    from imgclf.commands.config_check import compose_checked

    example = next(line for line in USAGE.splitlines() if line.strip().startswith("imgclf train"))
    overrides = [o for o in example.split()[2:] if not o.startswith("data.root=")]
    cfg = compose_checked(config_dir(), "train", overrides)
    assert cfg.recipe.stages[1].epochs == 3


def test_a_run_directory_in_use_stops_a_second_run_at_once(tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    lock = run_dir / LOCK_NAME
    owner = {"pid": os.getppid(), "host": socket.gethostname()}  # a process that runs
    lock.write_text(json.dumps(owner))
    held = os.open(lock, os.O_RDONLY)  # its OS lock, as the running owner holds it
    fcntl.flock(held, fcntl.LOCK_EX)
    # What the running owner has written so far.
    for name in ("cli.log", "config.yaml", ".hydra/config.yaml", ".hydra/overrides.yaml"):
        (run_dir / name).write_text(f"the owner's {name}\n")
    before = files_and_times(run_dir)
    monkeypatch.setattr(sys, "argv", ["imgclf"])
    monkeypatch.setenv("IMGCLF_COMMAND", "")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", f"hydra.run.dir={run_dir}", f"paths.log_dir={tmp_path / 'logs'}"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2
    assert lines == [
        f"error: {run_dir} is in use by another run (pid {owner['pid']} on {owner['host']}); "
        "wait for it to end, or use another directory"
    ]
    os.close(held)
    # Nothing of the directory was touched: not the owner's lock, config, overrides or log.
    assert files_and_times(run_dir) == before
    assert json.loads(lock.read_text()) == owner
    assert (run_dir / "cli.log").read_text() == "the owner's cli.log\n"


def test_the_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path, capsys):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], stdout=-1)
    dead_pid = int(gone.stdout)
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead_pid, "host": socket.gethostname()}))
    lock = lock_run_directory(tmp_path)
    assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert capsys.readouterr().err == (
        f"warning: taking over the stale lock {lock} of pid {dead_pid} on {socket.gethostname()}\n"
    )
    release_run_lock(lock, os.getpid())
    assert not lock.exists()


@pytest.mark.slow  # needs the trained run of `whole_run`
def test_a_resume_that_does_not_fit_leaves_the_run_as_it_was(whole_run, tmp_path):
    root, whole = whole_run
    others = make_image_folder(tmp_path / "birds", n_train=2, n_valid=1, classes=("owl", "jay"))
    kept = ["config.yaml", "cli.log", *(f".hydra/{n}" for n in HYDRA_FILES)]
    before = {whole / name: (whole / name).read_bytes() for name in kept}
    times = files_and_times(whole)
    stage1 = whole / "checkpoints" / "stage1-head.ckpt"  # a run still to finish from there
    # With W&B asked for too: its logger, which records a run id, is not built either.
    result = run_cli(
        "train", f"resume={stage1}", f"data.root={others}", "logger=wandb", cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    # The config is compared with the run's first: another data folder is not this run.
    assert lines[-1].startswith(
        f"error: resume: data.root was '{root}' in {whole} and is '{others}' now;"
    )
    assert "Traceback" not in result.stderr
    # Neither rewritten nor appended to: config, .hydra/ and the log (cli.log) are as they were.
    assert {p: p.read_bytes() for p in before} == before
    assert files_and_times(whole) == times
    # The plain resume still works: the run is finished.
    again = run_cli("train", f"resume={whole}", cwd=tmp_path)
    assert again.returncode == 0 and "ends a finished run: nothing to do" in again.stdout


def test_resuming_a_run_directory_takes_the_newer_of_last_and_interrupted(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    last, stopped = checkpoints / "last.ckpt", checkpoints / "interrupted.ckpt"
    for path, seconds in ((last, 100), (stopped, 200)):  # a signal after the step checkpoint
        path.write_bytes(b"")
        os.utime(path, (seconds, seconds))
    assert resume_checkpoint(tmp_path) == stopped
    os.utime(last, (300, 300))  # the resumed run went on past the stop
    assert resume_checkpoint(tmp_path) == last
    assert resume_checkpoint(stopped) == stopped  # a file given is taken as it is
    last.unlink()
    assert resume_checkpoint(tmp_path) == stopped


HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")


def test_a_run_writes_config_and_hydra_files_as_hydra_would(whole_run):
    root, whole = whole_run
    assert sorted(p.name for p in (whole / ".hydra").iterdir()) == sorted(HYDRA_FILES)
    given = overrides(root, whole.parents[2], "whole")
    saved = OmegaConf.load(whole / ".hydra" / "overrides.yaml")
    assert list(saved) == given
    # .hydra/config.yaml as composed (interpolations kept), config.yaml resolved.
    composed = OmegaConf.to_container(OmegaConf.load(whole / ".hydra" / "config.yaml"))
    assert composed["paths"]["output_dir"] == "${hydra:runtime.output_dir}"
    assert OmegaConf.load(whole / "config.yaml").paths.output_dir == str(whole)
    hydra = OmegaConf.load(whole / ".hydra" / "hydra.yaml").hydra
    assert hydra.runtime.output_dir == str(whole) and list(hydra.overrides.task) == given
    assert (whole / "cli.log").is_file()


def test_the_run_log_is_held_back_until_the_run_starts(tmp_path):
    path = tmp_path / "run" / "cli.log"
    handler = RunLogFile(path)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("imgclf.test_run_log")
    log.addHandler(handler)
    try:
        path.parent.mkdir()
        log.warning("before %s", "the start")
        assert not path.exists()  # a command refused now leaves no trace
        handler.start()
        log.warning("after the start")
    finally:
        log.removeHandler(handler)
        handler.close()
    assert path.read_text() == "WARNING before the start\nWARNING after the start\n"


class Code:
    def __reduce__(self):
        return (os.system, ("true",))


def test_error_texts_about_files_are_true(tmp_path):
    random_bytes = tmp_path / "random.ckpt"
    random_bytes.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(UserError) as err:
        read_checkpoint(random_bytes)
    assert str(err.value).startswith(f"{random_bytes} is not a checkpoint")

    code = tmp_path / "code.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": Code()}, code)
    with pytest.raises(UserError) as err:
        read_checkpoint(code)
    assert "refused: contains code (it would call posix.system" in str(err.value)
    assert "weights_only" not in str(err.value) and "\n" not in str(err.value)

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(UserError) as err:
        read_state_dict(garbage)
    assert str(err.value).startswith(f"{garbage} is not a weights file")
    with pytest.raises(UserError) as err:
        read_state_dict(code)
    assert "refused: contains code" in str(err.value) and "weights_only" not in str(err.value)


def test_a_checkpoint_with_foreign_or_mismatched_hparams_is_one_line(tmp_path):
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"num_classes": 2, "colour": 1}}, foreign)
    with pytest.raises(UserError, match="not an imgclf ImageClassifier checkpoint: .*colour"):
        load_classifier(foreign)
    head = {"head.8.weight": torch.zeros(3, 512), "head.8.bias": torch.zeros(3)}
    wrong = tmp_path / "wrong.ckpt"
    hparams = {"backbone": "resnet18", "num_classes": 2, "weights": "none"}
    torch.save({"state_dict": head, "hyper_parameters": hparams}, wrong)
    with pytest.raises(UserError, match="its weights do not fit the model") as err:
        load_classifier(wrong)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("verify", ["none", "header", "full"])
def test_a_fifo_is_skipped_at_every_verify_level(verify, tmp_path):
    root = make_image_folder(tmp_path / "pets", n_train=3, n_valid=1, size=32)
    fifo = root / "train" / "cats" / "pipe.jpg"
    os.mkfifo(fifo)  # opening it for reading would block forever
    datamodule = FolderDataModule(root, num_workers=0, verify=verify)
    with pytest.warns(UserWarning, match="skipped 1 unreadable files"):
        datamodule.setup("fit")
    assert datamodule.skipped == [(fifo, "not a regular file (FIFO)")]
    assert fifo not in [path for path, _ in datamodule.train_items + datamodule.valid_items]


def test_the_decode_budget_counts_bytes_not_pixels(tmp_path):
    deep = tmp_path / "deep.png"
    Image.fromarray(np.full((100, 100), 40000, dtype=np.uint16)).save(deep)
    plain = tmp_path / "plain.png"
    Image.fromarray(np.zeros((100, 100, 3), dtype=np.uint8)).save(plain)
    # 10,000 pixels are under the limit of 12,000; a 16-bit image needs 40 kB to decode,
    # above the 36 kB of an 8-bit RGB image of 12,000 pixels.
    assert unreadable_reason(plain, "header", max_pixels=12_000) is None
    reason = unreadable_reason(deep, "header", max_pixels=12_000)
    assert reason == (
        "too large: 100x100 I;16 needs 0.00 GB to decode, above the 0.00 GB of "
        "data.max_pixels 12,000 RGB pixels"
    )
    assert unreadable_reason(deep, "header", max_pixels=10_000 * 2) is None


def test_leftover_partial_caches_of_dead_processes_are_removed(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], stdout=-1)
    dead = tmp_path / f"abc123.partial-{int(gone.stdout)}"
    live = tmp_path / f"abc123.partial-{os.getpid()}"
    dead.mkdir()
    live.mkdir()
    (dead / "features.pt").write_bytes(b"half")
    assert remove_dead_partials(tmp_path) == [dead]
    assert not dead.exists() and live.exists()


def test_a_hidden_class_folder_is_named_in_the_scan_warning(tmp_path):
    root = make_image_folder(tmp_path / "pets", n_train=3, n_valid=1, size=32)
    shutil.copytree(root / "train" / "cats", root / "train" / ".birds")
    datamodule = FolderDataModule(root, num_workers=0)
    with pytest.warns(UserWarning, match=r"ignored hidden folders in .*train \(not classes\): "):
        datamodule.setup("fit")
    assert datamodule.classes == ["cats", "dogs"]


def test_wandb_falls_back_to_offline_at_once_without_a_server(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "")  # set but empty: as if unset
    assert resolve_mode("auto") == ("offline", "no W&B credentials found")
    assert "WANDB_MODE" not in os.environ
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    assert resolve_mode("auto") == (
        "offline",
        f"W&B credentials found, but 127.0.0.1:{port} cannot be reached",
    )


def test_forced_online_wandb_without_a_server_falls_back_to_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    unreachable = f"but 127.0.0.1:{port} cannot be reached"
    assert resolve_mode("online") == ("offline", f"logger.wandb.mode=online, {unreachable}")
    monkeypatch.setenv("WANDB_MODE", "online")
    assert resolve_mode("auto") == ("offline", f"WANDB_MODE=online, {unreachable}")
    logger = wandb_logger(mode="online", save_dir=str(tmp_path), project="p")
    assert logger._wandb_init["mode"] == "offline"
    assert os.environ["WANDB_MODE"] == "offline"  # wandb reads it too


def test_a_wandb_failure_is_one_warning_and_training_goes_on(tmp_path, monkeypatch):
    def no_server(self):
        raise RuntimeError("CommError: Run initialization has timed out\nmore lines")

    monkeypatch.setattr(WandbLogger, "experiment", property(no_server))
    logger = SafeWandbLogger(mode="offline", save_dir=str(tmp_path))
    with pytest.warns(UserWarning) as caught:
        logger.log_hyperparams({"lr": 0.1})
        logger.log_metrics({"valid/acc": 1.0}, step=1)
        logger.experiment.summary.update({"best": 1})
        logger.experiment.finish()
    assert [str(w.message) for w in caught] == [
        "W&B failed (RuntimeError: CommError: Run initialization has timed out); "
        "training goes on without W&B"
    ]


def test_a_resumed_run_continues_its_wandb_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    first = wandb_logger(save_dir=str(tmp_path), project="p")
    again = wandb_logger(save_dir=str(tmp_path), project="p")
    assert first._wandb_init["id"] == again._wandb_init["id"]
    assert again._wandb_init["resume"] == "allow"
    assert (tmp_path / "wandb-run-id").read_text().strip() == first._wandb_init["id"]


def test_a_full_disk_names_the_file_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    last = tmp_path / "last.ckpt"
    atomic_torch_save({"w": torch.ones(3)}, last)

    def fill_the_disk(obj, handle):
        handle.write(b"x" * 100)
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 512 vs 448")

    monkeypatch.setattr(torch, "save", fill_the_disk)
    with pytest.raises(UserError) as err:
        atomic_torch_save({"w": torch.zeros(3)}, last)
    assert str(err.value) == (
        f"no space left on device writing {last} (the previous last.ckpt, if any, is kept); "
        "free some space and resume"
    )
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    torch.testing.assert_close(read_checkpoint(last)["w"], torch.ones(3))


def test_a_full_disk_outside_a_checkpoint_is_one_line_too(tmp_path, capsys, monkeypatch):
    picture = tmp_path / "history.png"

    def fill_the_disk(cfg):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(picture))

    monkeypatch.setitem(cli.HYDRA_COMMANDS, "train", (fill_the_disk, "train"))
    monkeypatch.setattr(sys, "argv", ["imgclf"])
    monkeypatch.setenv("IMGCLF_COMMAND", "")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", f"paths.log_dir={tmp_path / 'logs'}"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: no space left on device writing {picture}; free some space and resume"
    ]


@pytest.mark.parametrize("command", ["predict", "export"])
def test_an_unwritable_output_stops_before_any_work(command, tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "out.csv"  # under a file: no folder can be made there
    monkeypatch.setattr(sys, "argv", ["imgclf"])
    monkeypatch.setenv("IMGCLF_COMMAND", "")
    with pytest.raises(SystemExit) as exit_info:
        main([command, "ckpt=no-such.ckpt", f"out={out}", f"paths.log_dir={tmp_path / 'logs'}"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2
    assert lines == [f"error: cannot write {command} out= {out}: {blocker} is not a folder"]


def test_a_user_error_from_a_loader_worker_is_one_line():
    wrapped = UserError(
        "Caught UserError in DataLoader worker process 0.\n"
        "Original Traceback (most recent call last):\n"
        '  File "worker.py", line 349, in _worker_loop\n'
        "    data = fetcher.fetch(index)\n"
        "imgclf.errors.UserError: every image of the train split failed to decode"
    )
    assert one_line(wrapped) == "every image of the train split failed to decode"
    assert one_line(UserError("plain")) == "plain"
