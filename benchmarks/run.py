"""`make bench`: run the benchmarks, write benchmarks/results.json and results.md.

python benchmarks/run.py            # everything (about 8 minutes on 2 idle CPU cores)
python benchmarks/run.py --quick    # fewer rounds, no demo recipe run
python benchmarks/run.py --only training,pipeline
python benchmarks/run.py --gpu      # the GPU benchmark (benchmarks/gpu.py, make bench-gpu)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/run.py` from a checkout
    sys.path.insert(0, str(ROOT))

from benchmarks.report import markdown_report  # noqa: E402
from benchmarks.timing import machine_info  # noqa: E402

ITEMS = ("training", "inference", "pipeline", "precompute", "knobs", "recipe", "memory", "predict")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, skip the recipe")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of {ITEMS}")
    parser.add_argument("--rounds", type=int, default=None, help="A/B rounds per figure")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks", help="results folder")
    parser.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    # Sizes; the tests shrink them to seconds.
    parser.add_argument("--image-size", type=int, default=128, help="overhead benchmarks")
    parser.add_argument("--batch-size", type=int, default=32, help="overhead benchmarks")
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="include torch.compile in the knobs (compiling takes about a minute)",
    )
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round")
    parser.add_argument("--jpegs", type=int, default=2000, help="pipeline folder size")
    parser.add_argument("--pipeline-size", type=int, default=224)
    parser.add_argument("--precompute-per-class", type=int, default=100)
    parser.add_argument("--precompute-size", type=int, default=224)
    parser.add_argument("--memory-images", type=int, default=20000)
    parser.add_argument("--memory-size", type=int, default=32)
    parser.add_argument(
        "--recipe-overrides", nargs="*", default=[], help="extra Hydra overrides (tests)"
    )
    parser.add_argument("--predict-size", type=int, default=96, help="predict latency run")
    parser.add_argument(
        "--predict-overrides", nargs="*", default=[], help="extra Hydra overrides of its run"
    )
    args = parser.parse_args(argv)
    chosen = tuple(args.only.split(",")) if args.only else ITEMS
    unknown = set(chosen) - set(ITEMS)
    if unknown:
        parser.error(f"unknown items {sorted(unknown)}: choose from {', '.join(ITEMS)}")
    if args.quick and not args.only:
        chosen = tuple(item for item in chosen if item != "recipe")
    args.items = chosen
    args.rounds = args.rounds or (3 if args.quick else 5)
    return args


def write(results: dict, out: Path) -> str:
    """results.json and results.md; called after every item, so a cut-short run keeps
    what it measured."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    report = markdown_report(results)
    contention = out / "results-contention.json"
    if contention.exists():  # benchmarks/contention.py's section stays in results.md
        from benchmarks.contention import markdown_section, with_section

        report = with_section(report, markdown_section(json.loads(contention.read_text())))
    (out / "results.md").write_text(report)
    return report


def run(args: argparse.Namespace) -> dict:
    import torch

    from benchmarks import folders

    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict = {"machine": machine_info(), "settings": {}, "figures": {}, "runs": {}}
    results["settings"] = {
        key: (str(value) if isinstance(value, Path) else value)
        for key, value in vars(args).items()
        if key not in ("out", "data")
    }
    figures, runs = results["figures"], results["runs"]
    started = time.perf_counter()

    def say(what: str) -> None:
        results["total_seconds"] = time.perf_counter() - started
        write(results, args.out)
        print(f"[{time.perf_counter() - started:6.0f}s] {what}", flush=True)

    if "training" in args.items or "inference" in args.items:
        from benchmarks.overhead import overhead_benchmarks

        say("training / inference overhead")
        overhead = overhead_benchmarks(
            args.rounds, args.batch_size, args.image_size, args.steps, args.steps
        )
        figures.update({k: v for k, v in overhead.items() if k in args.items})
    if "pipeline" in args.items:
        from benchmarks.pipeline import pipeline_benchmark

        say("data pipeline")
        root = folders.dogscats_jpegs(args.jpegs, args.data)
        figures["pipeline"] = pipeline_benchmark(root, args.rounds, size=args.pipeline_size)
    if "precompute" in args.items:
        from benchmarks.precompute_speed import precompute_benchmark

        say("precompute")
        root = folders.dogscats_jpegs(args.jpegs, args.data)
        figures["precompute"] = precompute_benchmark(
            root, args.rounds, args.precompute_per_class, size=args.precompute_size
        )
    if "knobs" in args.items:
        from benchmarks.knobs import knob_benchmarks

        say("speed knobs")
        root = folders.dogscats_jpegs(args.jpegs, args.data)
        # Three rounds: the knobs are effects to document, not goals to meet.
        rounds = min(args.rounds, 3)
        results["knobs"] = knob_benchmarks(
            root, rounds, args.batch_size, args.image_size, args.steps, args.compile
        )
    with tempfile.TemporaryDirectory() as tmp:
        from benchmarks import runs as whole_runs

        if "recipe" in args.items:
            from imgclf.data.demo import build_digits_demo

            say("demo recipe (imgclf train experiment=digits)")
            digits = build_digits_demo(args.data / "digits")
            (Path(tmp) / "recipe").mkdir()
            runs["recipe"] = whole_runs.recipe_benchmark(
                digits, Path(tmp) / "recipe", extra=tuple(args.recipe_overrides)
            )
        if "memory" in args.items:
            say(f"memory ({args.memory_images} images)")
            root = folders.small_images(args.memory_images, args.data)
            (Path(tmp) / "memory").mkdir()
            runs["memory"] = whole_runs.memory_benchmark(
                root, Path(tmp) / "memory", image_size=args.memory_size
            )
        if "predict" in args.items:
            from benchmarks.predict_latency import predict_benchmark
            from imgclf.data.demo import build_digits_demo

            say("one image through imgclf predict")
            digits = build_digits_demo(args.data / "digits")
            (Path(tmp) / "predict").mkdir()
            runs["predict"] = predict_benchmark(
                digits,
                Path(tmp) / "predict",
                args.rounds,
                image_size=args.predict_size,
                extra=tuple(args.predict_overrides),
            )
    results["total_seconds"] = time.perf_counter() - started
    say("done")
    return results


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    if "--gpu" in argv:  # `run.py --gpu [gpu.py options]`: the GPU benchmark
        from benchmarks import gpu

        return gpu.main([arg for arg in argv if arg != "--gpu"])
    args = parse_args(argv)
    warnings.filterwarnings("ignore")
    results = run(args)
    print(write(results, args.out))
    return results


if __name__ == "__main__":
    main()
