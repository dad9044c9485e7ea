"""Whole `imgclf train` runs in a subprocess: the demo recipe end to end, and the peak
memory of a precompute run on a large folder.

Peak memory is sampled with psutil over the run and all its children (DataLoader workers)
every 0.5 s (reading PSS is not free): the sum of their proportional set sizes (PSS: a page shared by n processes
counts 1/n in each, so the sum is the real footprint; forked workers share most of their
pages with the main process) is what the goal is about; the sum of their resident sets
(RSS, shared pages counted in every process) is an upper bound. The kernel's `ru_maxrss`
from wait4 is reported too, with a caveat: it includes the RSS the forked child had before
it exec'ed, i.e. the size of the calling benchmark process.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil


def imgclf_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "imgclf.cli", *args]


def run_measured(command: list[str], cwd: Path, interval: float = 0.5) -> dict:
    """Run `command`; its wall time, exit code, stdout/stderr and peak memory."""
    env = {**os.environ, "WANDB_MODE": "offline", "NO_ALBUMENTATIONS_UPDATE": "1"}
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    # Drain the pipes in threads so a chatty child never blocks on a full pipe.
    output: dict[str, str] = {}

    def drain(name: str, stream) -> None:
        output[name] = stream.read()

    threads = [
        threading.Thread(target=drain, args=(name, stream))
        for name, stream in (("stdout", process.stdout), ("stderr", process.stderr))
    ]
    for thread in threads:
        thread.start()
    peak_tree = peak_pss = 0
    root = psutil.Process(process.pid)
    while True:
        # wait4 reaps the child and gives its own resource usage, its waited-for children
        # included: ru_maxrss is the kernel's high-water mark of the largest of them.
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            returncode = os.waitstatus_to_exitcode(status)
            break
        with contextlib.suppress(psutil.Error):  # processes come and go while we look
            rss = pss = 0
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    memory = proc.memory_full_info()
                    rss += memory.rss
                    pss += memory.pss
            peak_tree = max(peak_tree, rss)
            peak_pss = max(peak_pss, pss)
        time.sleep(interval)
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    process.returncode = returncode
    return {
        "returncode": returncode,
        "wall_seconds": wall,
        "peak_rss_tree_bytes": peak_tree,
        "peak_pss_tree_bytes": peak_pss,
        "max_single_process_rss_bytes": usage.ru_maxrss * 1024,
        "stdout": output.get("stdout", ""),
        "stderr": output.get("stderr", ""),
    }


def run_dir_of(stdout: str) -> Path:
    """`imgclf train` prints its run directory last."""
    return Path(stdout.strip().splitlines()[-1])


def check(result: dict, what: str) -> dict:
    if result["returncode"] != 0:
        tail = "\n".join(result["stderr"].strip().splitlines()[-15:])
        raise RuntimeError(f"{what} failed (exit {result['returncode']}):\n{tail}")
    return result


def recipe_benchmark(digits_root: Path, workdir: Path, extra: tuple[str, ...] = ()) -> dict:
    """`imgclf train experiment=digits` end to end: wall time, accuracy, per-stage seconds."""
    command = imgclf_command(
        "train",
        "experiment=digits",
        f"data.root={digits_root}",
        f"paths.log_dir={workdir / 'logs'}",
        f"paths.cache_dir={workdir / 'cache'}",
        *extra,
    )
    result = check(run_measured(command, cwd=workdir), "imgclf train experiment=digits")
    summary = json.loads((run_dir_of(result["stdout"]) / "summary.json").read_text())
    return {
        "command": "imgclf train experiment=digits",
        "wall_seconds": result["wall_seconds"],
        "train_wall_seconds": summary["wall_seconds"],
        "best_valid_acc": summary["best_valid_acc"],
        "valid_logloss": summary["valid_logloss"],
        "stage_seconds": {stage["name"]: stage["seconds"] for stage in summary["stages"]},
        "train_images": summary["train_images"],
        "valid_images": summary["valid_images"],
        "peak_rss_tree_bytes": result["peak_rss_tree_bytes"],
    }


def memory_benchmark(
    root: Path, workdir: Path, image_size: int = 32, epochs: int = 2, extra: tuple[str, ...] = ()
) -> dict:
    """Peak memory of `imgclf train` with a precompute head stage on a large folder."""
    stage = (
        f"{{name: head, freeze_to: -1, epochs: {epochs}, lr: 0.001, "
        "precompute: true, precompute_aug: 1}"
    )
    command = imgclf_command(
        "train",
        "data=folder",
        f"data.root={root}",
        f"data.image_size={image_size}",
        "data.batch_size=64",
        "data.num_workers=2",
        "logger=csv",
        f"recipe.stages=[{stage}]",
        f"paths.log_dir={workdir / 'logs'}",
        f"paths.cache_dir={workdir / 'cache'}",
        *extra,
    )
    result = check(run_measured(command, cwd=workdir), "imgclf train (memory)")
    summary = json.loads((run_dir_of(result["stdout"]) / "summary.json").read_text())
    cache_bytes = sum(p.stat().st_size for p in (workdir / "cache").rglob("*.npy"))
    return {
        "command": "imgclf train, one precompute head stage",
        "images": summary["train_images"] + summary["valid_images"],
        "image_size": image_size,
        "epochs": epochs,
        "wall_seconds": result["wall_seconds"],
        "peak_rss_tree_bytes": result["peak_rss_tree_bytes"],
        "peak_pss_tree_bytes": result["peak_pss_tree_bytes"],
        "max_single_process_rss_bytes": result["max_single_process_rss_bytes"],
        "feature_cache_bytes": cache_bytes,
        "best_valid_acc": summary["best_valid_acc"],
    }
