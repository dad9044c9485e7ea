"""`make bench-quality`: the template's default command against fastai and a plain loop.

On each real data set of `quality_data.py` (digits, faces, icons) it runs, one after the
other on the same machine and at the same image size:

  imgclf  `imgclf train data=folder data.root=<set> data.image_size=<size>`: the default
          recipe, nothing tuned; then the run's best checkpoint on the labelled test split
          (`quality_eval.py`: plain and TTA x4, as `imgclf evaluate` does)
  fastai  fastai 2.8 `vision_learner(dls, "tf_efficientnet_lite0") + fine_tune(5)` with
          the same bundled weights (`quality_fastai.py`, in its own virtualenv,
          benchmarks/.venv-fastai, made here on first use with the same torch version)
  plain   a plain PyTorch loop: 1 head epoch + 5 one-cycle AdamW epochs at 2e-3, flips,
          label smoothing 0.1 (`quality_plain.py`)

and writes benchmarks/results-quality.json and results-quality.md: per set the
train/valid/test sizes, test accuracy and log-loss with and without TTA, and training wall
time of each system, and whether imgclf met the goal (test accuracy at least the better of
the other two, in no more training time than fastai).

    python benchmarks/quality.py                       # everything
    python benchmarks/quality.py --sets icons --only imgclf
    python benchmarks/quality.py --sets faces --label ema --imgclf-args "callbacks.default.ema_decay=0.998"

`--label` measures one training option: imgclf alone with `--imgclf-args`, recorded under
that label in the "Options" table (label `default`: no overrides, the row the others
are compared with), beside the systems' table rather than in it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import quality_data  # noqa: E402

SYSTEMS = ("imgclf", "fastai", "plain")
FASTAI_VENV = HERE / ".venv-fastai"
WEIGHTS = quality_data.ROOT / "lite0_body.pth"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(quality_data.BUILDERS))
    parser.add_argument("--only", default=",".join(SYSTEMS))
    parser.add_argument("--size", type=int, default=64, help="image size of every system")
    parser.add_argument("--epochs", type=int, default=5, help="unfrozen epochs of fastai/plain")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--logs", type=Path, default=ROOT / "logs" / "bench-quality")
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        help="only merge these results-quality.json files (runs split over processes) into --out",
    )
    parser.add_argument("--note", help="a remark on this run for results-quality.md")
    parser.add_argument(
        "--imgclf-args", default="", help="extra Hydra overrides for imgclf (experiments only)"
    )
    parser.add_argument(
        "--label",
        help="measure a training option: imgclf with --imgclf-args, kept in the Options table",
    )
    return parser.parse_args(argv)


def env() -> dict:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
    }


def run_json(command: list[str], log: Path) -> tuple[dict, float]:
    """Run a command, keep its output in `log`, return its last JSON line and wall seconds."""
    started = time.perf_counter()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=handle, text=True, env=env())
        handle.write(done.stdout)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}); see {log}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]), seconds


def save_weights() -> Path:
    """The bundled EfficientNet-Lite0 weights as a timm state dict, for fastai and the loop."""
    if not WEIGHTS.exists():
        import torch

        from imgclf.model.backbone import create_body

        WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
        torch.save(create_body("tf_efficientnet_lite0", "bundled").state_dict(), WEIGHTS)
    return WEIGHTS


def fastai_python() -> Path:
    """benchmarks/.venv-fastai with fastai 2.8 and the same torch/timm versions as here."""
    python = FASTAI_VENV / "bin" / "python"
    marker = FASTAI_VENV / ".installed"
    if marker.exists():
        return python
    import timm
    import torch

    torch_version = torch.__version__.split("+")[0].rsplit(".", 1)[0]
    print(f"creating {FASTAI_VENV} (fastai 2.8, torch {torch_version}.*) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(FASTAI_VENV)], check=True)
    packages = [
        "fastai>=2.8,<2.9",
        f"timm=={timm.__version__}",
        f"torch=={torch_version}.*",
        "torchvision",
    ]
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *packages], check=True)
    marker.write_text(" ".join(packages) + "\n")
    return python


def run_imgclf(data: Path, size: int, logs: Path, extra: list[str], label: str = "") -> dict:
    run_logs = logs / "imgclf" / data.name / label if label else logs / "imgclf" / data.name
    command = [
        sys.executable,
        "-m",
        "imgclf.cli",
        "train",
        "data=folder",
        f"data.root={data}",
        f"data.image_size={size}",
        f"paths.log_dir={run_logs}",
        *extra,
    ]
    started = time.perf_counter()
    log = run_logs / "train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env())
    process_seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"imgclf train failed on {data.name}; see {log}")
    run_dir = Path(log.read_text().strip().splitlines()[-1].strip())
    result, _ = run_json(
        [sys.executable, str(HERE / "quality_eval.py"), "--run", str(run_dir), "--root", str(data)],
        run_logs / "eval.log",
    )
    result.update(process_seconds=round(process_seconds, 2), run_dir=str(run_dir))
    result["command"] = " ".join(["imgclf", *command[3:]])
    return result


def run_other(system: str, data: Path, size: int, epochs: int, logs: Path) -> dict:
    python = fastai_python() if system == "fastai" else Path(sys.executable)
    script = HERE / f"quality_{system}.py"
    command = [str(python), str(script), "--root", str(data), "--size", str(size)]
    command += ["--weights", str(save_weights()), "--epochs", str(epochs)]
    result, seconds = run_json(command, logs / system / data.name / "run.log")
    result["process_seconds"] = round(seconds, 2)
    return result


def goal(systems: dict) -> dict | None:
    """imgclf's test accuracy >= the better of fastai's and plain's, in <= fastai's time."""
    if not all(name in systems for name in SYSTEMS):
        return None
    best_other = max(systems["fastai"]["test"]["acc"], systems["plain"]["test"]["acc"])
    ours = systems["imgclf"]
    accuracy_met = ours["test"]["acc"] >= best_other
    time_met = ours["train_seconds"] <= systems["fastai"]["train_seconds"]
    return {
        "best_other_test_acc": best_other,
        "accuracy_met": accuracy_met,
        "time_met": time_met,
        "met": accuracy_met and time_met,
    }


def machine() -> dict:
    import torch

    return {
        "cpu": next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        ),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "load_average_at_end": os.getloadavg(),
    }


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# Quality benchmark: imgclf's default command vs fastai vs a plain loop",
        "",
        f"Measured {results['date']} on {m['cpu']} ({m['cores']} cores, no GPU), torch "
        f"{m['torch']}, load average at the end {', '.join(f'{x:.1f}' for x in m['load_average_at_end'])}. "
        f"Image size {results['size']} px for every system; fastai `fine_tune({results['epochs']})`; "
        f"plain loop 1 + {results['epochs']} epochs. Test: the labelled held-out split (20 %), "
        "never seen in training or model selection. TTA: 4 augmented passes blended 0.75/0.25 "
        "with the plain pass. Seconds: training only (imgclf: `wall_seconds` of summary.json, "
        "LR finders and precompute included; fastai: `vision_learner` + `fine_tune`; plain: "
        "model creation + loop), on a shared machine.",
        "",
        "| set | train/valid/test | system | test acc | test acc TTA | test log-loss "
        "| log-loss TTA | train s | load avg (start, end) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    if results.get("note"):
        lines[3:3] = ["", f"Note: {results['note']}"]
    for name, entry in results["sets"].items():
        for system, r in entry["systems"].items():
            sizes = r["sizes"]
            lines.append(
                f"| {name} | {sizes['train']}/{sizes['valid']}/{sizes['test']} | {system} "
                f"| {r['test']['acc']:.3f} | {r['test_tta']['acc']:.3f} "
                f"| {r['test']['logloss']:.3f} | {r['test_tta']['logloss']:.3f} "
                f"| {r['train_seconds']:.0f} "
                f"| {', '.join(f'{x:.1f}' for x in r.get('load_average', []))} |"
            )
    lines += [
        "",
        "Goal per set: imgclf's test accuracy >= the better of fastai's and the plain "
        "loop's, in no more training time than fastai.",
        "",
    ]
    for name, entry in results["sets"].items():
        g = entry.get("goal")
        if g:
            lines.append(
                f"- {name}: accuracy {'met' if g['accuracy_met'] else 'NOT met'} "
                f"(best other {g['best_other_test_acc']:.3f}), time "
                f"{'met' if g['time_met'] else 'NOT met'}"
            )
        else:
            lines.append(f"- {name}: not every system measured")
        ours = entry["systems"].get("imgclf")
        if ours:
            stages = "; ".join(
                f"{s['name']} {s['epochs']} ep, {s['seconds']:.0f} s, valid {s['valid_acc']:.3f}"
                for s in ours["stages"]
            )
            lines.append(f"  - imgclf stages: {stages}; best weights: {ours.get('best')}")
            for warning in ours.get("warnings") or []:
                lines.append(f"  - warning: {warning}")
    return (
        "\n".join(
            lines + options_markdown(results.get("options") or {}, results.get("options_machine"))
        )
        + "\n"
    )


def options_markdown(options: dict, m: dict | None = None) -> list[str]:
    """The Options table: imgclf with one training option each, against its `default` row."""
    if not options:
        return []
    where = (
        f" Machine: {m['cpu']} ({m['cores']} cores, no GPU), torch {m['torch']}; load average "
        f"after the last option run {', '.join(f'{x:.1f}' for x in m['load_average_at_end'])}."
        if m
        else ""
    )
    lines = [
        "",
        "## Options",
        "",
        "imgclf's default command with one training option added (`--label`, "
        "`--imgclf-args`); difference in test accuracy against the `default` row of the same "
        "set. A `default_seed<N>` row is the default with `seed=N`: how far the seed alone moves "
        "the numbers. Seconds are from a shared, loaded machine: compare accuracies, not "
        "times." + where,
        "",
        "| set | option | overrides | test acc | vs default | test acc TTA | test log-loss "
        "| best valid acc | train s | load avg (start, end) | measured |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in options.items():
        base = runs.get("default", {}).get("test", {}).get("acc")
        for label, r in runs.items():
            delta = f"{r['test']['acc'] - base:+.3f}" if base is not None else "n/a"
            valid = max((s.get("valid_acc") or 0.0) for s in r.get("stages") or [{}])
            lines.append(
                f"| {name} | {label} | `{r.get('overrides') or '-'}` | {r['test']['acc']:.3f} "
                f"| {delta} | {r['test_tta']['acc']:.3f} | {r['test']['logloss']:.3f} "
                f"| {valid:.3f} | {r['train_seconds']:.0f} "
                f"| {', '.join(f'{x:.1f}' for x in r.get('load_average', []))} "
                f"| {r.get('measured', '')} |"
            )
    return lines


def run_option(args, name: str, data: Path, results: dict) -> dict:
    """imgclf on `data` with the option's overrides, recorded under `args.label`."""
    load_before = os.getloadavg()[0]
    result = run_imgclf(data, args.size, args.logs, args.imgclf_args.split(), args.label)
    result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    result["overrides"] = args.imgclf_args
    result["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results.setdefault("options", {}).setdefault(name, {})[args.label] = result
    print(f"  {args.label}: test acc {result['test']['acc']:.3f}", flush=True)
    return result


def merge(paths: list[Path], out: Path) -> dict:
    """Put the systems of several results files together (later files win), goals anew."""
    json_path = out / "results-quality.json"
    merged = json.loads(json_path.read_text()) if json_path.exists() else {"sets": {}}
    for path in paths:
        other = json.loads(path.read_text())
        for name, entry in other["sets"].items():
            target = merged["sets"].setdefault(name, {"systems": {}})
            target["sizes"] = entry.get("sizes", target.get("sizes"))
            target["systems"].update(entry["systems"])
        for key in ("date", "size", "epochs", "machine"):
            merged.setdefault(key, other.get(key))
    for entry in merged["sets"].values():
        entry["goal"] = goal(entry["systems"])
    json_path.write_text(json.dumps(merged, indent=2) + "\n")
    (out / "results-quality.md").write_text(markdown(merged))
    return merged


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.merge:
        merged = merge(args.merge, args.out)
        if args.note:
            merged["note"] = args.note
            (args.out / "results-quality.json").write_text(json.dumps(merged, indent=2) + "\n")
            (args.out / "results-quality.md").write_text(markdown(merged))
        print((args.out / "results-quality.md").read_text())
        return
    sets = [s for s in args.sets.split(",") if s]
    systems = [s for s in args.only.split(",") if s]
    json_path = args.out / "results-quality.json"
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "size": args.size,
        "epochs": args.epochs,
        "sets": {},
    }
    if json_path.exists():  # keep the other sets' results when re-running a subset
        previous = json.loads(json_path.read_text())
        results["sets"] = previous.get("sets", {})
        results["options"] = previous.get("options", {})
        if args.label:  # an option run leaves the systems' table, and its date, as they were
            kept = ("date", "note", "machine", "size", "epochs")
            results.update({k: previous[k] for k in kept if k in previous})
    save_weights()
    for name in sets:
        data = quality_data.build(name)
        entry = results["sets"].setdefault(name, {"systems": {}})
        entry["sizes"] = quality_data.counts(data)
        if args.label:
            run_option(args, name, data, results)
            results["options_machine"] = machine()
            json_path.write_text(json.dumps(results, indent=2) + "\n")
            (args.out / "results-quality.md").write_text(markdown(results))
            continue
        for system in systems:
            print(f"{name}: {system} ...", flush=True)
            load_before = os.getloadavg()[0]
            if system == "imgclf":
                extra = args.imgclf_args.split()
                result = run_imgclf(data, args.size, args.logs, extra)
            else:
                result = run_other(system, data, args.size, args.epochs, args.logs)
            # Other processes on the machine slow every system: say how busy it was.
            result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
            entry["systems"][system] = result
            print(
                f"  test acc {result['test']['acc']:.3f} (TTA {result['test_tta']['acc']:.3f}), "
                f"{result['train_seconds']:.0f} s",
                flush=True,
            )
            entry["goal"] = goal(entry["systems"])
            results["machine"] = machine()
            json_path.write_text(json.dumps(results, indent=2) + "\n")
            (args.out / "results-quality.md").write_text(markdown(results))
    print((args.out / "results-quality.md").read_text())


if __name__ == "__main__":
    main()
