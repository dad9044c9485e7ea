"""`make bench-gpu`: the workflow on a GPU, measured -> benchmarks/results-gpu.json, .md.

python benchmarks/gpu.py                    # everything, sized for about 8 minutes on one H200
python benchmarks/gpu.py --only overhead,feeding
python benchmarks/gpu.py --tiny --device cpu   # every code path on tiny sizes, in a minute
python benchmarks/gpu.py --no-device-report    # the report of a machine without a GPU

Items (each figure a ratio of two things timed in turns, medians of the rounds, as in
`make bench`):

overhead  our ImageClassifier under the Lightning Trainer (trainer=gpu: bf16-mixed,
          channels_last) / a bare PyTorch loop with the same autocast, on batches already
          on the GPU; training and inference. Goal >= 0.95.
feeding   training images/s of a bare loop fed from JPEG files / fed from tensors already on
          the GPU, for the 500x375 Dogs-vs-Cats-like folder and 4000x3000 phone photos; both
          data paths: `data.decode=cpu` (DataLoader workers decode and warp) and
          `data.decode=gpu` (nvJPEG + the warp on the GPU). Goal >= 0.90 for 500x375.
compile   training steps with `model.body.compile()` / without, after compiling (the compile
          time is reported apart).
recipe    `imgclf train experiment=dogscats` (lesson-1 recipe, trainer=gpu) on a generated
          folder of 25,000 JPEGs: wall time of the run and of each stage, precompute and LR
          finders included, and the accuracy.
smoke     every command on the device: train (trainer=gpu, trainer=ddp with devices=1, and
          data.decode=gpu), lr-find, evaluate with TTA, predict, export, and a killed run resumed; each must
          exit 0 with sane numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/gpu.py` from a checkout
    sys.path.insert(0, str(ROOT))

ITEMS = ("overhead", "feeding", "compile", "recipe", "smoke")
NOT_MEASURED = "not measured: no device"
GOALS = {"training": 0.95, "inference": 0.95, "feeding_500x375": 0.90}


def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (dry runs)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: a code-path check")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of {ITEMS}")
    parser.add_argument("--rounds", type=int, default=None, help="A/B rounds (default 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks", help="results folder")
    parser.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data")
    parser.add_argument(
        "--no-device-report",
        action="store_true",
        help="write the report of a machine without the device, measuring nothing",
    )
    parser.add_argument("--image-size", type=int, default=None, help="default 224")
    parser.add_argument("--batch-size", type=int, default=None, help="default 256")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 20)")
    parser.add_argument("--jpegs", type=int, default=None, help="500x375 folder (default 4096)")
    parser.add_argument("--photos", type=int, default=None, help="phone photos (default 384)")
    parser.add_argument("--photo-batch-size", type=int, default=None, help="default 64")
    parser.add_argument("--photo-size", default=None, help="WxH of the photos (4000x3000)")
    parser.add_argument("--workers", type=int, default=None, help="default: the usable cores")
    parser.add_argument("--recipe-images", type=int, default=None, help="default 25000")
    parser.add_argument(
        "--recipe-decode", default="cpu", help="data.decode values for the recipe run(s): cpu,gpu"
    )
    parser.add_argument(
        "--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile item"
    )
    parser.add_argument("--recipe-overrides", nargs="*", default=[], help="extra Hydra overrides")
    args = parser.parse_args(argv)
    chosen = tuple(args.only.split(",")) if args.only else ITEMS
    unknown = set(chosen) - set(ITEMS)
    if unknown:
        parser.error(f"unknown items {sorted(unknown)}: choose from {', '.join(ITEMS)}")
    full = {
        "rounds": 3,
        "image_size": 224,
        "batch_size": 256,
        "steps": 20,
        "jpegs": 4096,
        "photos": 384,
        "photo_batch_size": 64,
        "photo_size": "4000x3000",
        "workers": usable_cores(),
        "recipe_images": 25000,
        "compile": True,
    }
    tiny = {
        "rounds": 1,
        "image_size": 32,
        "batch_size": 4,
        "steps": 2,
        "jpegs": 16,
        "photos": 12,
        "photo_batch_size": 4,
        "photo_size": "400x300",
        "workers": 0,
        "recipe_images": 24,
        "compile": False,
    }
    for key, value in (tiny if args.tiny else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if "compile" in chosen and not args.compile:
        chosen = tuple(item for item in chosen if item != "compile")
    args.items = chosen
    args.photo_wh = tuple(int(n) for n in args.photo_size.split("x"))
    args.recipe_decode = tuple(args.recipe_decode.split(","))
    return args


# -- timing helpers --------------------------------------------------------------------
def synchronize(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def in_turns(sides: dict[str, Callable[[], float]], rounds: int) -> dict[str, dict]:
    """Each side once per round, in turns; the median and every round's rate per side."""
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, measure in sides.items():
            rates[name].append(measure())
    return {name: {"median": statistics.median(r), "rounds": r} for name, r in rates.items()}


def ratio_figure(a: dict, b: dict, a_name: str, b_name: str, **extra) -> dict:
    return {
        "a": a["median"],
        "b": b["median"],
        "ratio": a["median"] / b["median"],
        "a_rounds": a["rounds"],
        "b_rounds": b["rounds"],
        "a_name": a_name,
        "b_name": b_name,
        "unit": "images/s",
        **extra,
    }


def device_info(device: str) -> dict:
    """GPU name, memory, driver, CUDA and cuDNN versions; CPU facts from `machine_info`."""
    import torch

    from benchmarks.timing import machine_info

    info = {**machine_info(), "device": device, "usable_cores": usable_cores()}
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.device(device))
        info.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            gpu_count=torch.cuda.device_count(),
            cuda_runtime=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            bf16_supported=torch.cuda.is_bf16_supported(),
        )
        try:
            driver = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.strip()
            info["driver"] = driver.splitlines()[0] if driver else None
        except (OSError, subprocess.SubprocessError):
            info["driver"] = None
    return info


# -- (a) Trainer overhead on the device ------------------------------------------------
def trainer_overrides(device: str, precision: str) -> tuple[str, ...]:
    import torch

    group = "gpu" if torch.device(device).type == "cuda" else "cpu"
    return (f"trainer={group}", f"trainer.precision={precision}")


def autocast(device: str, precision: str):
    import torch

    return torch.autocast(
        torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed"
    )


class ResidentImages:
    """`length` uint8 images already on the device (a pool of `pool` distinct ones, reused),
    handed out a batch at a time by one gather (`__getitems__`), so the loader costs one
    indexing kernel a batch and still has the batch sampler that the prediction callbacks
    read."""

    def __init__(self, device: str, length: int, pool: int, image_size: int, classes: int):
        import torch

        generator = torch.Generator().manual_seed(0)
        shape = (pool, 3, image_size, image_size)
        self.images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
        self.images = self.images.to(device)
        self.labels = torch.randint(classes, (pool,), generator=generator).to(device)
        self.length, self.pool = length, pool

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        return self.images[index % self.pool], self.labels[index % self.pool]

    def __getitems__(self, indices: list[int]):
        import torch

        index = torch.tensor(indices, device=self.images.device) % self.pool
        return self.images[index], self.labels[index]


def as_batch(batch):
    return batch


def resident_batches(device: str, count: int, batch_size: int, image_size: int, classes: int):
    """`count` batches of uint8 images already on `device`, as a DataLoader that Lightning
    and a bare loop both take."""
    from torch.utils.data import DataLoader

    dataset = ResidentImages(device, count * batch_size, batch_size, image_size, classes)
    return DataLoader(dataset, batch_size=batch_size, collate_fn=as_batch)


class TrainLoop:
    """A bare training loop (AdamW of `build_optimizer`, autocast): `rate(batches)` is the
    images/s after the first (warm-up) batch, the device synchronised at each step."""

    def __init__(self, model, device: str, precision: str) -> None:
        from benchmarks.overhead import STAGE, apply_stage

        self.model, self.device, self.precision = model, device, precision
        apply_stage(model, STAGE)

    def rate(self, batches, batch_size: int) -> float:
        import torch.nn.functional as F

        from benchmarks.timing import Clock

        model = self.model.to(self.device)
        model.train()
        optimizer = model.build_optimizer(model.plan.lrs)
        clock = Clock(1)
        for images, labels in batches:
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            with autocast(self.device, self.precision):
                loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            synchronize(self.device)
            clock.tick()
        return clock.rate(batch_size)


def bare_predict_rate(model, loader, device: str, precision: str, batch_size: int) -> float:
    import torch

    from benchmarks.timing import Clock

    model = model.to(device).eval()
    clock = Clock(1)
    with torch.inference_mode(), autocast(device, precision):
        for images, _ in loader:
            model(images).softmax(dim=1)
            synchronize(device)
            clock.tick()
    return clock.rate(batch_size)


def overhead_item(args, workdir: Path) -> dict:
    import torch

    from benchmarks.overhead import ClockCallback, project_trainer
    from benchmarks.timing import Clock
    from imgclf.model import ImageClassifier

    device, precision = args.device, "bf16-mixed"
    overrides = trainer_overrides(device, precision)

    class SyncClock(ClockCallback):
        def on_train_batch_end(self, trainer, pl_module, *rest) -> None:
            synchronize(device)
            super().on_train_batch_end(trainer, pl_module, *rest)

        def on_predict_batch_end(self, trainer, pl_module, *rest) -> None:
            synchronize(device)
            super().on_predict_batch_end(trainer, pl_module, *rest)

    torch.manual_seed(0)
    model = ImageClassifier(num_classes=10, channels_last=True)
    loop = TrainLoop(model, device, precision)
    loader = resident_batches(device, 1 + args.steps, args.batch_size, args.image_size, 10)

    def lightning_fit() -> float:
        clock = Clock(1)
        trainer = project_trainer(workdir, [SyncClock(clock)], overrides, max_epochs=1)
        trainer.fit(model, train_dataloaders=loader)
        return clock.rate(args.batch_size)

    def lightning_predict() -> float:
        clock = Clock(1)
        trainer = project_trainer(workdir, [SyncClock(clock)], overrides)
        trainer.predict(model, dataloaders=loader, return_predictions=False)
        return clock.rate(args.batch_size)

    train = in_turns(
        {"lightning": lightning_fit, "bare": lambda: loop.rate(loader, args.batch_size)},
        args.rounds,
    )
    infer = in_turns(
        {
            "lightning": lightning_predict,
            "bare": lambda: bare_predict_rate(model, loader, device, precision, args.batch_size),
        },
        args.rounds,
    )
    common = {
        "precision": precision,
        "channels_last": True,
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "steps": args.steps,
    }
    return {
        "training": ratio_figure(
            train["lightning"], train["bare"], "Lightning Trainer", "bare loop", **common
        ),
        "inference": ratio_figure(
            infer["lightning"], infer["bare"], "Trainer.predict", "bare inference loop", **common
        ),
    }


# -- (b) feeding the GPU from JPEG files -------------------------------------------------
def folder_loader(root: Path, args, decode: str, batch_size: int):
    import torch

    from benchmarks.pipeline import ours_loader

    return ours_loader(
        root,
        args.image_size,
        0.35,
        batch_size,
        args.workers,
        decode=decode,
        pin_memory=torch.device(args.device).type == "cuda",
        persistent_workers=args.workers > 0,
    )


def loader_alone_rate(loader, device: str, batch_size: int) -> float:
    """Batches moved to the device (decoded and warped there with decode=gpu), no model."""
    from benchmarks.timing import Clock

    clock = Clock(1)
    for images, _ in loader:
        images.to(device, non_blocking=True)
        synchronize(device)
        clock.tick()
    return clock.rate(batch_size)


def feeding_folder(root: Path, args, loop: TrainLoop, resident, batch: int) -> dict:
    loaders = {decode: folder_loader(root, args, decode, batch) for decode in ("cpu", "gpu")}
    for loader in loaders.values():  # start persistent workers, fill the page cache
        for _ in loader:
            pass
    sides = {
        "resident": lambda: loop.rate(resident, batch),
        "cpu": lambda: loop.rate(loaders["cpu"], batch),
        "gpu": lambda: loop.rate(loaders["gpu"], batch),
        "cpu_loader_alone": lambda: loader_alone_rate(loaders["cpu"], args.device, batch),
        "gpu_loader_alone": lambda: loader_alone_rate(loaders["gpu"], args.device, batch),
    }
    rates = in_turns(sides, args.rounds)
    common = {"images": len(loaders["cpu"].dataset), "workers": args.workers, "batch_size": batch}
    return {
        "cpu_decode": ratio_figure(
            rates["cpu"], rates["resident"], "data.decode=cpu", "tensors on the device", **common
        ),
        "gpu_decode": ratio_figure(
            rates["gpu"], rates["resident"], "data.decode=gpu", "tensors on the device", **common
        ),
        "loader_alone": {
            "cpu": rates["cpu_loader_alone"]["median"],
            "gpu": rates["gpu_loader_alone"]["median"],
            "unit": "images/s",
        },
    }


def feeding_item(args) -> dict:
    import torch

    from benchmarks import folders
    from imgclf.model import ImageClassifier

    torch.manual_seed(0)
    model = ImageClassifier(num_classes=2, channels_last=True)
    loop = TrainLoop(model, args.device, "bf16-mixed")
    processes = max(2, usable_cores())
    # The same folder as `make bench`'s pipeline figure when the sizes agree.
    dogscats = folders.make_folder(
        args.data / f"jpegs-500x375-{args.jpegs}", args.jpegs, (500, 375), processes=processes
    )
    width, height = args.photo_wh
    photos = folders.make_folder(
        args.data / f"jpegs-{width}x{height}-{args.photos}",
        args.photos,
        (width, height),
        processes=processes,
    )
    results = {}
    for name, root, count, batch in (
        ("500x375", dogscats, args.jpegs, args.batch_size),
        (f"{width}x{height}", photos, args.photos, args.photo_batch_size),
    ):
        # As many batches as an epoch of the folder gives (after drop_last), at least 2.
        steps = max(2, int(count * 0.99) // batch)
        resident = resident_batches(args.device, steps, batch, args.image_size, 2)
        results[name] = feeding_folder(root, args, loop, resident, batch)
        results[name]["image_size"] = args.image_size
    return results


# -- (c) torch.compile -------------------------------------------------------------------
def compile_item(args) -> dict:
    import torch

    from imgclf.model import ImageClassifier

    def build(compiled: bool):
        torch.manual_seed(0)
        model = ImageClassifier(num_classes=10, channels_last=True)
        if compiled:
            model.body.compile()
        return TrainLoop(model, args.device, "bf16-mixed")

    loader = resident_batches(args.device, 1 + args.steps, args.batch_size, args.image_size, 10)
    plain = build(False)
    compiled = build(True)
    started = time.perf_counter()
    compiled.rate(resident_batches(args.device, 2, args.batch_size, args.image_size, 10), 1)
    compile_seconds = time.perf_counter() - started
    rates = in_turns(
        {
            "compiled": lambda: compiled.rate(loader, args.batch_size),
            "plain": lambda: plain.rate(loader, args.batch_size),
        },
        args.rounds,
    )
    return ratio_figure(
        rates["compiled"],
        rates["plain"],
        "model.body.compile()",
        "eager",
        compile_seconds=compile_seconds,
        batch_size=args.batch_size,
        image_size=args.image_size,
        precision="bf16-mixed",
    )


# -- (d) whole commands in subprocesses ---------------------------------------------------
def device_overrides(device: str, ddp: bool = False) -> list[str]:
    import torch

    if torch.device(device).type == "cuda":
        return ["trainer=ddp", "trainer.devices=1"] if ddp else ["trainer=gpu"]
    return ["trainer=ddp_cpu", "trainer.devices=1"] if ddp else ["trainer=cpu"]


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "imgclf.cli", *args]


def run_command(args: list[str], cwd: Path) -> dict:
    env = {**os.environ, "WANDB_MODE": "offline", "NO_ALBUMENTATIONS_UPDATE": "1"}
    started = time.perf_counter()
    result = subprocess.run(command(*args), cwd=cwd, env=env, capture_output=True, text=True)
    return {
        "returncode": result.returncode,
        "seconds": round(time.perf_counter() - started, 2),
        "stdout": result.stdout,
        "stderr_tail": "\n".join(result.stderr.strip().splitlines()[-15:]),
    }


def last_line(result: dict) -> Path | None:
    lines = result["stdout"].strip().splitlines()
    return Path(lines[-1]) if result["returncode"] == 0 and lines else None


def recipe_item(args, workdir: Path) -> dict:
    from benchmarks import folders

    n_valid = 2000 if args.recipe_images >= 20000 else max(2, args.recipe_images // 6)
    root = folders.make_folder(
        args.data / f"dogscats-{args.recipe_images}",
        args.recipe_images,
        (500, 375),
        valid_share=n_valid / args.recipe_images,
        processes=max(2, usable_cores()),
    )
    runs = {}
    for decode in args.recipe_decode:
        overrides = [
            "experiment=dogscats",
            f"data.root={root}",
            "data.test_folder=test",
            f"data.decode={decode}",
            "logger=csv",
            f"paths.log_dir={workdir / 'recipe' / decode}",
            f"paths.cache_dir={workdir / 'recipe' / decode / 'cache'}",
            *device_overrides(args.device),
            *(TINY_RECIPE if args.tiny else ()),
            *args.recipe_overrides,
        ]
        result = run_command(["train", *overrides], cwd=workdir)
        run = {"returncode": result["returncode"], "wall_seconds": result["seconds"]}
        run_dir = last_line(result)
        if run_dir is None:
            run["error"] = result["stderr_tail"]
        else:
            summary = json.loads((run_dir / "summary.json").read_text())
            run.update(
                train_wall_seconds=summary["wall_seconds"],
                best_valid_acc=summary["best_valid_acc"],
                valid_logloss=summary["valid_logloss"],
                train_images=summary["train_images"],
                valid_images=summary["valid_images"],
                stages=[
                    {
                        "name": stage["name"],
                        "epochs": stage["epochs"],
                        "image_size": stage["image_size"],
                        "seconds": stage["seconds"],
                        "precompute_seconds": (stage.get("precompute") or {}).get("seconds"),
                        "lr_find_seconds": (stage.get("lr_find") or {}).get("seconds"),
                        "valid_acc": stage["valid_acc"],
                    }
                    for stage in summary["stages"]
                ],
            )
        runs[decode] = run
    return {"images": args.recipe_images, "runs": runs}


# The recipe's shape on tiny sizes (a code-path check).
TINY_RECIPE = (
    "data.image_size=32",
    "data.batch_size=4",
    "data.num_workers=0",
    "data.persistent_workers=false",
    "data.pin_memory=false",
    "lr_find.num_iter=4",
    "recipe.stages.1.epochs=1",
)

SMOKE_STAGES = (
    "recipe.stages=["
    "{name:head,freeze_to:-1,epochs:1,lr:auto,precompute:true,precompute_aug:1},"
    "{name:finetune,freeze_to:0,epochs:2,lr:auto,lr_mult:10,schedule:sgdr,n_cycles:2}]"
)


def kill_when_in_second_stage(train_args: list[str], cwd: Path, run_root: Path) -> Path | None:
    """Start `imgclf train`, SIGKILL it once it saved a checkpoint inside stage 2."""
    env = {**os.environ, "WANDB_MODE": "offline", "NO_ALBUMENTATIONS_UPDATE": "1"}
    process = subprocess.Popen(
        command("train", *train_args),
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and process.poll() is None:
            for stage1 in run_root.glob("*/checkpoints/stage1-head.ckpt"):
                last = stage1.with_name("last.ckpt")
                if last.exists() and last.stat().st_mtime_ns > stage1.stat().st_mtime_ns:
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    return stage1.parents[1]
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return None


def sane_train(run_dir: Path | None) -> dict:
    if run_dir is None:
        return {"sane": False}
    summary = json.loads((run_dir / "summary.json").read_text())
    acc, logloss = summary["best_valid_acc"], summary["valid_logloss"]
    sane = acc is not None and 0 <= acc <= 1 and logloss is not None and math.isfinite(logloss)
    return {"sane": sane, "best_valid_acc": acc, "valid_logloss": logloss}


def smoke_item(args, workdir: Path) -> dict:
    import shutil

    from benchmarks.folders import make_folder

    root = make_folder(workdir / "smoke-data", 48, (96, 96), valid_share=1 / 3, processes=1)
    (root / "test").mkdir(exist_ok=True)
    for path in sorted((root / "train" / "cats").glob("*.jpg"))[:6]:
        shutil.copy(path, root / "test" / path.name)
    size = min(args.image_size, 64)
    base = [
        "data=folder",
        f"data.root={root}",
        f"data.image_size={size}",
        "data.batch_size=8",
        f"data.num_workers={min(args.workers, 2)}",
        "logger=csv",
        "lr_find.num_iter=8",
        "recipe.finetune_image_size=null",
        SMOKE_STAGES,
        f"paths.cache_dir={workdir / 'smoke-cache'}",
    ]
    results: dict = {}

    def record(name: str, result: dict, **facts) -> None:
        entry = {"returncode": result["returncode"], "seconds": result["seconds"], **facts}
        if result["returncode"] != 0:
            entry["error"] = result["stderr_tail"]
        results[name] = entry

    logs = workdir / "smoke-logs"
    device = device_overrides(args.device)
    train = run_command(["train", *base, *device, f"paths.log_dir={logs / 'gpu'}"], workdir)
    run_dir = last_line(train)
    record("train", train, **sane_train(run_dir))
    ddp = run_command(
        ["train", *base, *device_overrides(args.device, ddp=True), f"paths.log_dir={logs / 'ddp'}"],
        workdir,
    )
    record("train_ddp_1_device", ddp, **sane_train(last_line(ddp)))
    decode_gpu = run_command(
        ["train", *base, *device, "data.decode=gpu", f"paths.log_dir={logs / 'decode-gpu'}"],
        workdir,
    )
    record("train_decode_gpu", decode_gpu, **sane_train(last_line(decode_gpu)))
    finder = run_command(
        ["lr-find", *base, *device, "lr_find.stage=finetune", f"paths.log_dir={logs / 'lr'}"],
        workdir,
    )
    finder_dir = last_line(finder)
    if finder_dir is not None:
        suggestion = json.loads((finder_dir / "summary.json").read_text())["lr_find"]["suggestion"]
        record("lr_find", finder, suggestion=suggestion, sane=0 < suggestion < 10)
    else:
        record("lr_find", finder, sane=False)
    # evaluate and predict take the run's data settings and no recipe or LR finder keys;
    # export takes only the checkpoint (and runs on the CPU).
    inference = [arg for arg in base if arg.startswith(("data", "logger", "paths"))]
    if run_dir is not None:
        evaluate = run_command(
            [
                "evaluate",
                *inference,
                *device,
                f"ckpt={run_dir}",
                "tta.n=2",
                f"paths.log_dir={logs}",
            ],
            workdir,
        )
        eval_dir = last_line(evaluate)
        facts: dict = {"sane": False}
        if eval_dir is not None:
            metrics = json.loads((eval_dir / "metrics.json").read_text())
            tta = metrics.get("tta") or {}
            facts = {"tta": tta, "sane": bool(tta) and 0 <= tta.get("accuracy", -1) <= 1}
        record("evaluate_tta", evaluate, **facts)
        out = workdir / "smoke-submission.csv"
        predict = run_command(
            [
                "predict",
                *inference,
                *device,
                f"ckpt={run_dir}",
                f"input={root / 'test'}",
                f"out={out}",
                "tta.n=2",
                f"paths.log_dir={logs}",
            ],
            workdir,
        )
        rows = len(out.read_text().strip().splitlines()) - 1 if out.exists() else 0
        record("predict", predict, rows=rows, sane=rows == 6)
        onnx = workdir / "smoke-model.onnx"
        export = run_command(
            [
                "export",
                f"ckpt={run_dir}",
                "format=onnx",
                f"out={onnx}",
                f"paths.log_dir={logs}",
            ],
            workdir,
        )
        # The weights may sit in a side file next to the graph (`<name>.onnx.data`).
        files = [path for path in (onnx, onnx.with_name(onnx.name + ".data")) if path.exists()]
        size_bytes = sum(path.stat().st_size for path in files)
        record(
            "export_onnx",
            export,
            bytes=size_bytes,
            files=[path.name for path in files],
            sane=size_bytes > 1_000_000,
        )
    killed_args = [
        *(arg for arg in base if not arg.startswith("data.batch_size=")),
        "data.batch_size=2",  # more steps: time to kill it in the middle of stage 2
        *device,
        f"paths.log_dir={logs / 'killed'}",
        "callbacks.default.step_checkpoint_every=2",
    ]
    killed = kill_when_in_second_stage(killed_args, workdir, logs / "killed" / "train")
    if killed is None:
        results["resume"] = {"returncode": None, "sane": False, "error": "no stage-2 checkpoint"}
    else:
        resumed = run_command(["train", f"resume={killed}"], workdir)
        facts = sane_train(last_line(resumed))
        summary_path = killed / "summary.json"
        if summary_path.exists():
            facts["resumed_from"] = json.loads(summary_path.read_text()).get("resumed_from")
        record("resume_killed_run", resumed, **facts)
    return results


# -- the report ----------------------------------------------------------------------------
def format_value(value, digits: int = 2, missing: str = NOT_MEASURED) -> str:
    if value is None:
        return missing
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def goal_cell(ratio, goal: float | None) -> str:
    if goal is None:
        return ""
    if ratio is None:
        return f">= {goal}"
    return f"{'met' if ratio >= goal else 'missed'} (>= {goal})"


def markdown_report(results: dict) -> str:
    machine = results.get("machine") or {}
    measured = results.get("measured", False)
    on_gpu = measured and machine.get("gpu") is not None
    missing = NOT_MEASURED if not measured else "not run"

    def fmt(value, digits: int = 2) -> str:
        return format_value(value, digits, missing)

    lines = ["# GPU benchmark results (`make bench-gpu`)", ""]
    if not measured:
        lines += [
            f"**{NOT_MEASURED}.** No GPU machine was available when these files were written,",
            "so every GPU figure below is a placeholder; run `make bench-gpu` on a machine",
            "with a GPU to fill them in. The code paths were exercised on the CPU only",
            "(`python benchmarks/gpu.py --tiny --device cpu`, run by the tests).",
            "",
        ]
    elif not on_gpu:
        lines += [
            f"**A dry run on `{machine.get('device')}`, not a GPU: these numbers check the",
            "code paths and say nothing about GPU speed.**",
            "",
        ]
    lines += ["## Machine", ""]
    if on_gpu:
        lines += [
            f"- GPU: {machine['gpu']} ({machine.get('gpu_memory_gib')} GiB), driver "
            f"{machine.get('driver')}, CUDA {machine.get('cuda_runtime')}, cuDNN "
            f"{machine.get('cudnn')}",
        ]
    elif not measured:
        lines += [f"- GPU, driver, CUDA: {NOT_MEASURED}"]
    if machine.get("cpu"):
        lines += [
            f"- CPU: {machine.get('cpu')}, {machine.get('usable_cores')} usable cores",
            f"- torch {machine.get('torch')}, torchvision {machine.get('torchvision')}, "
            f"lightning {machine.get('lightning')}, timm {machine.get('timm')}",
        ]
    settings = results.get("settings") or {}
    lines += ["", "## Figures", ""]
    lines += ["| figure | A / B | A | B | ratio | goal |", "|---|---|---|---|---|---|"]
    figures = results.get("figures") or {}
    rows = [
        ("training overhead", "training", "Trainer (trainer=gpu) / bare loop", "training"),
        ("inference overhead", "inference", "Trainer.predict / bare loop", "inference"),
    ]
    for label, key, what, goal in rows:
        f = figures.get(key) or {}
        lines.append(
            f"| {label} | {what} | {fmt(f.get('a'), 0)} | {fmt(f.get('b'), 0)} | "
            f"{fmt(f.get('ratio'))} | {goal_cell(f.get('ratio'), GOALS.get(goal))} |"
        )
    feeding = figures.get("feeding") or {}
    photo = settings.get("photo_size", "4000x3000")
    for folder in ("500x375", photo):
        for decode in ("cpu", "gpu"):
            f = (feeding.get(folder) or {}).get(f"{decode}_decode") or {}
            goal = GOALS["feeding_500x375"] if folder == "500x375" else None
            lines.append(
                f"| feeding {folder}, data.decode={decode} | JPEG files / tensors on the GPU | "
                f"{fmt(f.get('a'), 0)} | {fmt(f.get('b'), 0)} | {fmt(f.get('ratio'))} | "
                f"{goal_cell(f.get('ratio'), goal)} |"
            )
    compiled = figures.get("compile") or {}
    lines.append(
        f"| torch.compile | compiled / eager (compiling: "
        f"{fmt(compiled.get('compile_seconds'), 0)}"
        f"{' s' if compiled.get('compile_seconds') is not None else ''}) | "
        f"{fmt(compiled.get('a'), 0)} | {fmt(compiled.get('b'), 0)} | "
        f"{fmt(compiled.get('ratio'))} | |"
    )
    lines += ["", "Rates in images/s (training steps, or inference batches).", ""]
    recipe = (results.get("runs") or {}).get("recipe") or {}
    lines += ["## Lesson-1 recipe, `imgclf train experiment=dogscats`", ""]
    lines += [
        "| data.decode | wall s | stage: seconds (precompute s, LR finder s) | best valid acc |",
        "|---|---|---|---|",
    ]
    runs = recipe.get("runs") or {"cpu": {}}
    for decode, run in runs.items():
        stages = (
            "; ".join(
                f"{s['name']}: {fmt(s['seconds'], 1)} ({fmt(s['precompute_seconds'], 1)}, "
                f"{fmt(s['lr_find_seconds'], 1)})"
                for s in run.get("stages") or []
            )
            or NOT_MEASURED
        )
        lines.append(
            f"| {decode} | {fmt(run.get('wall_seconds'), 1)} | {stages} | "
            f"{fmt(run.get('best_valid_acc'), 4)} |"
        )
    lines += ["", "## Every command on the device", ""]
    lines += ["| command | exit | seconds | sane |", "|---|---|---|---|"]
    smoke = (results.get("runs") or {}).get("smoke") or {}
    names = (
        "train",
        "train_ddp_1_device",
        "train_decode_gpu",
        "lr_find",
        "evaluate_tta",
        "predict",
        "export_onnx",
        "resume_killed_run",
    )
    for name in names:
        entry = smoke.get(name) or {}
        lines.append(
            f"| {name} | {fmt(entry.get('returncode'))} | {fmt(entry.get('seconds'), 1)} | "
            f"{fmt(entry.get('sane'))} |"
        )
    if not measured:
        lines += [
            "",
            "## Defaults",
            "",
            "Without GPU figures the GPU defaults stay as they were: `trainer=gpu` (bf16-mixed,",
            "channels_last on), `experiment=dogscats` (batch 64, 8 workers, persistent workers,",
            "pinned memory, `data.decode=cpu`), `torch.compile` off. `data.decode=gpu` is there",
            "to be measured against `cpu` by the feeding rows above before it becomes a default.",
        ]
    if results.get("total_seconds") is not None:
        lines += ["", f"Total: {results['total_seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def write(results: dict, out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results-gpu.json").write_text(json.dumps(results, indent=2) + "\n")
    report = markdown_report(results)
    (out / "results-gpu.md").write_text(report)
    return report


def run(args: argparse.Namespace) -> dict:
    import torch

    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: use --device cpu --tiny for a dry run")
    results: dict = {
        "measured": True,
        "machine": device_info(args.device),
        "settings": {
            key: (str(value) if isinstance(value, Path) else value)
            for key, value in vars(args).items()
            if key not in ("out", "data")
        },
        "figures": {},
        "runs": {},
    }
    started = time.perf_counter()

    def say(what: str) -> None:
        results["total_seconds"] = time.perf_counter() - started
        write(results, args.out)
        print(f"[{time.perf_counter() - started:6.0f}s] {what}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if "overhead" in args.items:
            say("Trainer overhead (training, inference)")
            results["figures"].update(overhead_item(args, workdir / "overhead"))
        if "feeding" in args.items:
            say("feeding the device from JPEG files")
            results["figures"]["feeding"] = feeding_item(args)
        if "compile" in args.items:
            say("torch.compile")
            results["figures"]["compile"] = compile_item(args)
        if "recipe" in args.items:
            say(f"lesson-1 recipe on {args.recipe_images} JPEGs")
            results["runs"]["recipe"] = recipe_item(args, workdir)
        if "smoke" in args.items:
            say("every command")
            results["runs"]["smoke"] = smoke_item(args, workdir)
        shutil.rmtree(workdir, ignore_errors=True)
    results["total_seconds"] = time.perf_counter() - started
    say("done")
    return results


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.no_device_report:
        results = {"measured": False, "reason": NOT_MEASURED, "figures": {}, "runs": {}}
    else:
        results = run(args)
    print(write(results, args.out))
    return results


if __name__ == "__main__":
    main()
