"""CPU contention: training images/s with and without a competing busy process, for
combinations of torch intra-op threads and DataLoader workers.

python benchmarks/contention.py                  # about 10 minutes on 2 cores
python benchmarks/contention.py --threads 1,2 --workers 0,1,2 --wait-policies default

What is timed: training steps of `ImageClassifier` (every layer trainable, AdamW, 32-bit,
channels_last) fed by the project's train loader on the digits demo folder, at the unfrozen
stage's settings of `make train` (96 px, batch 32, min_scale 0.7, no flips): images/s after
the first batch (so the workers' start-up is left out). The competitor is a pure-Python busy
loop in another process (one core's worth of work, like another job on the machine). For
each round, every (threads, workers) combination is measured without and then with the
competitor (A, B in turns); the figures are medians of the rounds. The load average at each
measurement is recorded: other jobs on the machine show up there.

OpenMP's wait policy is a third axis: torch's CPU threads wait for work by spinning
(`default`) or by sleeping (`OMP_WAIT_POLICY=PASSIVE`). It must be set before the OpenMP
runtime starts, so each policy gets its own measuring process (started with that environment
and kept for the whole run); the rounds still take turns across all of them.

Writes benchmarks/results-contention.json and the contention section of results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

START, END = "<!-- contention:start -->", "<!-- contention:end -->"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="torch intra-op threads to try")
    parser.add_argument("--workers", default="0,1,2", help="DataLoader workers to try")
    parser.add_argument(
        "--wait-policies",
        default="default,PASSIVE",
        help="OMP_WAIT_POLICY values (default: unset)",
    )
    parser.add_argument("--competitors", type=int, default=1, help="busy processes (B side)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per measurement")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks")
    parser.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data")
    args = parser.parse_args(argv)
    args.thread_list = [int(n) for n in args.threads.split(",")]
    args.worker_list = [int(n) for n in args.workers.split(",")]
    args.policy_list = args.wait_policies.split(",")
    return args


def start_competitors(count: int) -> list[subprocess.Popen]:
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    time.sleep(0.3)  # let them get going
    return busy


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
        process.wait()


class Measure:
    """Training images/s on the digits folder for given threads and workers."""

    def __init__(self, root: Path, args: argparse.Namespace) -> None:
        import torch

        from benchmarks.overhead import STAGE, apply_stage
        from imgclf.model import ImageClassifier

        torch.manual_seed(0)
        self.model = ImageClassifier(num_classes=10, channels_last=True)
        apply_stage(self.model, STAGE)
        self.root, self.args = root, args

    def loader(self, workers: int):
        from imgclf.data import FolderDataModule

        datamodule = FolderDataModule(
            self.root,
            image_size=self.args.image_size,
            batch_size=self.args.batch_size,
            num_workers=workers,
            do_flip=False,
            min_scale=0.7,
        )
        datamodule.setup("fit")
        datamodule.set_data_config(self.model.data_config)
        return datamodule.train_dataloader()

    def rate(self, threads: int, workers: int) -> float:
        import torch
        import torch.nn.functional as F

        from benchmarks.timing import Clock

        torch.set_num_threads(threads)
        model = self.model.train()
        optimizer = model.build_optimizer(model.plan.lrs)
        clock = Clock(1)
        for step, (images, labels) in enumerate(self.loader(workers)):
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            clock.tick()
            if step >= self.args.steps:
                break
        return clock.rate(self.args.batch_size)


def serve(conn, root: Path, settings: dict) -> None:
    """A measuring process: (threads, workers) in, images/s out, until None."""
    warnings.filterwarnings("ignore")
    measure = Measure(root, argparse.Namespace(**settings))
    measure.rate(1, 0)  # warm-up: first allocations, page cache
    conn.send("ready")
    while (request := conn.recv()) is not None:
        conn.send(measure.rate(*request))


class PolicyProcess:
    """A measuring process started with OMP_WAIT_POLICY=`policy` (`default`: unset)."""

    def __init__(self, policy: str, root: Path, args: argparse.Namespace) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        saved = os.environ.pop("OMP_WAIT_POLICY", None)
        if policy != "default":
            os.environ["OMP_WAIT_POLICY"] = policy
        try:
            # Not a daemon: it starts DataLoader workers of its own.
            self.process = context.Process(target=serve, args=(child, root, vars(args)))
            self.process.start()
        finally:
            os.environ.pop("OMP_WAIT_POLICY", None)
            if saved is not None:
                os.environ["OMP_WAIT_POLICY"] = saved
        if self.conn.recv() != "ready":
            raise RuntimeError(f"the measuring process for {policy} did not start")

    def rate(self, threads: int, workers: int) -> float:
        self.conn.send((threads, workers))
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send(None)
        self.process.join(timeout=60)


def run(args: argparse.Namespace) -> dict:
    from benchmarks.timing import machine_info
    from imgclf.data.demo import build_digits_demo

    root = build_digits_demo(args.data / "digits")
    processes = {policy: PolicyProcess(policy, root, args) for policy in args.policy_list}
    combos = [
        (p, t, w) for p in args.policy_list for t in args.thread_list for w in args.worker_list
    ]
    rates: dict[str, dict[str, list[float]]] = {
        f"{p},{t},{w}": {"idle": [], "busy": []} for p, t, w in combos
    }
    loads = []
    started = time.perf_counter()
    try:
        for round_index in range(args.rounds):
            for policy, threads, workers in combos:
                key = f"{policy},{threads},{workers}"
                measure = processes[policy]
                loads.append(os.getloadavg()[0])
                rates[key]["idle"].append(measure.rate(threads, workers))
                busy = start_competitors(args.competitors)
                try:
                    rates[key]["busy"].append(measure.rate(threads, workers))
                finally:
                    stop(busy)
                print(
                    f"[{time.perf_counter() - started:5.0f}s] round {round_index + 1} "
                    f"OMP_WAIT_POLICY {policy} threads {threads} workers {workers}: "
                    f"{rates[key]['idle'][-1]:.1f} / {rates[key]['busy'][-1]:.1f} images/s",
                    flush=True,
                )
    finally:
        for process in processes.values():
            process.close()
    table = {}
    for (policy, threads, workers), key in zip(combos, rates, strict=True):
        idle = statistics.median(rates[key]["idle"])
        busy = statistics.median(rates[key]["busy"])
        table[key] = {
            "wait_policy": policy,
            "threads": threads,
            "workers": workers,
            "idle": idle,
            "busy": busy,
            "busy_over_idle": busy / idle,
            "idle_rounds": rates[key]["idle"],
            "busy_rounds": rates[key]["busy"],
        }
    return {
        "machine": machine_info(),
        "settings": {key: value for key, value in vars(args).items() if key not in ("out", "data")},
        "load_average_1min": {
            "min": min(loads),
            "median": statistics.median(loads),
            "max": max(loads),
        },
        "seconds": time.perf_counter() - started,
        "table": table,
    }


def markdown_section(results: dict) -> str:
    settings, table = results["settings"], results["table"]
    best_idle = max(row["idle"] for row in table.values())
    best_busy = max(row["busy"] for row in table.values())
    load = results["load_average_1min"]
    lines = [
        START,
        "",
        f"**CPU contention** (`benchmarks/contention.py`): training images/s (all layers, "
        f"{settings['image_size']} px, batch {settings['batch_size']}, the digits demo "
        f"through the train loader) without and with {settings['competitors']} busy "
        "process(es) beside it, measured in turns, medians of "
        f"{settings['rounds']} rounds.",
        "",
        "| OMP_WAIT_POLICY | torch threads | loader workers | as found | one busy process "
        "added | added / as found |",
        "|---|---|---|---|---|---|",
    ]
    for row in table.values():
        idle = f"{row['idle']:.1f}" + (" (best)" if row["idle"] == best_idle else "")
        busy = f"{row['busy']:.1f}" + (" (best)" if row["busy"] == best_busy else "")
        lines.append(
            f"| {row.get('wait_policy', 'default')} | {row['threads']} | {row['workers']} | "
            f"{idle} | {busy} | "
            f"{row['busy_over_idle']:.2f} |"
        )
    machine = results["machine"]
    lines += [
        "",
        f"Machine: {machine['cpu']}, {machine['usable_cores']} usable cores, torch "
        f"{machine['torch']}. 1-minute load average during the run: min {load['min']:.2f}, "
        f"median {load['median']:.2f}, max {load['max']:.2f}. 'As found' is the machine as "
        "it was: a load average well above 0 before a measurement means other jobs were "
        f"running beside it. {results['seconds']:.0f} s.",
        "",
        END,
    ]
    return "\n".join(lines) + "\n"


def with_section(markdown: str, section: str) -> str:
    """`markdown` with its contention section replaced by `section` (appended if none)."""
    if START in markdown and END in markdown:
        before = markdown.split(START)[0]
        after = markdown.split(END, 1)[1].lstrip("\n")
        return before + section + ("\n" + after if after else "")
    return markdown.rstrip("\n") + "\n\n" + section


def write(results: dict, out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results-contention.json").write_text(json.dumps(results, indent=2) + "\n")
    section = markdown_section(results)
    report = out / "results.md"
    report.write_text(with_section(report.read_text() if report.exists() else "", section))
    return section


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    warnings.filterwarnings("ignore")
    results = run(args)
    print(write(results, args.out))
    return results


if __name__ == "__main__":
    main()
