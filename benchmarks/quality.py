"""`make bench-quality`: the template's default command against fastai and a plain loop.

On each real data set of `quality_data.py` (three small: digits, faces, icons; three large,
5,000 training images each: glyphs, scripts, themes), for each seed, it runs one after the
other on the same machine and at the set's image size (64 px small, 32 px large):

  imgclf  `imgclf train data=folder data.root=<set> data.image_size=<size>`: the default
          recipe, nothing tuned; then the run's best checkpoint on the labelled test split
          (`quality_eval.py`: plain and TTA x4, as `imgclf evaluate` does)
  fastai  fastai 2.8 `vision_learner(dls, "tf_efficientnet_lite0") + fine_tune(5)` with
          the same bundled weights (`quality_fastai.py`, in its own virtualenv,
          benchmarks/.venv-fastai, made here on first use with the same torch version)
  plain   a plain PyTorch loop: 1 head epoch + 5 one-cycle AdamW epochs at 2e-3, flips,
          label smoothing 0.1 (`quality_plain.py`)

and writes benchmarks/results-quality.json and results-quality.md: per set and system the
mean and spread over the seeds of test accuracy and log-loss with and without TTA and of
training wall time, imgclf's unfrozen stage against its head, and whether imgclf met the
goal (mean test accuracy at least the better of the other two, in no more training time
than fastai). The sets come in two halves: defaults are chosen on `choose` and confirmed,
unchanged, on `confirm`; the report keeps the halves apart.

The multi-label set `mosaics` (labels in a Planet-style CSV, outside the halves) runs imgclf
with `data=csv`, fastai with `ImageDataLoaders.from_csv` and the plain loop with binary
cross-entropy (`--multi`), and reports samples-F2 and exact match of the tag sets on its
test split (imgclf at its validated thresholds, fastai and the loop at 0.5); its goal is
imgclf's F2 at least the better of the other two. The single-label set `typefaces` (labels
in a Kaggle-style `labels.csv`, `id,label`, as the dog-breeds competition's) runs imgclf
with `data=csv`, fastai with `ImageDataLoaders.from_csv` and the plain loop as for the
folder sets (`--csv`), and reports test accuracy as the folder sets do.

    python benchmarks/quality.py                       # everything: imgclf x 3 seeds, the others x 1
    python benchmarks/quality.py --quick               # the inner loop: small sets, 1 seed, imgclf
    python benchmarks/quality.py --half confirm --seeds 0
    python benchmarks/quality.py --sets icons --only imgclf
    python benchmarks/quality.py --sets mosaics          # multi-label, CSV labels
    python benchmarks/quality.py --sets typefaces        # single-label, Kaggle-style labels.csv
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
import shutil
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
# Defaults are chosen on the first half and confirmed, unchanged, on the second; each half
# has small sets and one large set.
HALVES = {"choose": ("digits", "icons", "glyphs"), "confirm": ("faces", "scripts", "themes")}
QUICK_SETS = ("digits", "faces")
SEEDS = (0, 1, 2)
# The references, fastai and the plain loop, take about as long as imgclf's three seeds
# together: one seed each by default.
REFERENCE_SEEDS = (0,)
FASTAI_VENV = HERE / ".venv-fastai"
WEIGHTS = quality_data.ROOT / "lite0_body.pth"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", help="comma-separated sets (default: both halves)")
    parser.add_argument("--half", choices=[*HALVES, "all"], default="all")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="imgclf's seeds")
    parser.add_argument(
        "--reference-seeds",
        default=",".join(map(str, REFERENCE_SEEDS)),
        help="fastai's and the plain loop's seeds (default: one run each, which keeps the "
        "whole benchmark near 90 minutes on 2 cores; 0,1,2 gives their spread too)",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{', '.join(QUICK_SETS)}, seed 0, imgclf only"
    )
    parser.add_argument("--only", default=",".join(SYSTEMS))
    parser.add_argument(
        "--size", type=int, help="one image size for every set (default: each set's own)"
    )
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


def imgclf_train_command(
    data: Path, size: int, run_logs: Path, extra: list[str], seed: int | None = None
) -> list[str]:
    """imgclf's default command on a set, its run under `run_logs`."""
    return [
        sys.executable,
        "-m",
        "imgclf.cli",
        "train",
        *quality_data.imgclf_data_args(data.name, data),
        f"data.image_size={size}",
        f"paths.log_dir={run_logs}",
        # A cold feature cache: a run must not reuse the precomputed features of an earlier
        # run of the same set and seed (its time would leave the precompute out).
        f"paths.cache_dir={run_logs / 'feature-cache'}",
        *([f"seed={seed}"] if seed is not None else []),
        *extra,
    ]


def run_imgclf(
    data: Path, size: int, logs: Path, extra: list[str], label: str = "", seed: int | None = None
) -> dict:
    run_logs = logs / "imgclf" / data.name / label if label else logs / "imgclf" / data.name
    if seed is not None:
        run_logs = run_logs / f"seed{seed}"
    command = imgclf_train_command(data, size, run_logs, extra, seed)
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
    shutil.rmtree(run_logs / "feature-cache", ignore_errors=True)  # up to a few hundred MB
    result.update(process_seconds=round(process_seconds, 2), run_dir=str(run_dir))
    result["command"] = " ".join(["imgclf", *command[3:]])
    return result


def run_other(system: str, data: Path, size: int, epochs: int, logs: Path, seed: int = 42) -> dict:
    python = fastai_python() if system == "fastai" else Path(sys.executable)
    script = HERE / f"quality_{system}.py"
    command = [str(python), str(script), "--root", str(data), "--size", str(size)]
    command += ["--weights", str(save_weights()), "--epochs", str(epochs), "--seed", str(seed)]
    command += quality_data.baseline_data_args(data.name)
    result, seconds = run_json(command, logs / system / data.name / f"seed{seed}" / "run.log")
    result["process_seconds"] = round(seconds, 2)
    return result


def aggregate(runs: dict) -> dict:
    """One system's runs on one set (seed -> result) -> the mean over the seeds of each
    score, with the spread (sample standard deviation) and the per-seed values."""
    import statistics

    results = [runs[seed] for seed in sorted(runs, key=int)]
    out: dict = {"seeds": sorted(runs, key=int), "sizes": results[-1].get("sizes")}

    def stats(values: list[float]) -> dict:
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return {"mean": statistics.fmean(values), "sd": spread, "values": values}

    for split in ("test", "test_tta"):
        keys = [k for k in ("acc", "logloss", "f2", "exact") if k in results[0][split]]
        out[split] = {k: statistics.fmean(r[split][k] for r in results) for k in keys}
        out[split + "_acc"] = stats([r[split]["acc"] for r in results])
        if "f2" in keys:
            out[split + "_f2"] = stats([r[split]["f2"] for r in results])
    out["train_seconds"] = statistics.fmean(r["train_seconds"] for r in results)
    gains = [unfrozen_gain(r) for r in results if unfrozen_gain(r) is not None]
    if gains:
        out["unfrozen_gain"] = stats(gains)
    return out


def unfrozen_gain(result: dict) -> float | None:
    """imgclf's last stage's final valid accuracy minus its head stage's best: what
    unfreezing added (negative: the fine-tuned model ended below the head)."""
    stages = result.get("stages") or []
    if len(stages) < 2 or stages[-1].get("valid_acc") is None:
        return None
    head = stages[0].get("valid_acc")
    return None if head is None else stages[-1]["valid_acc"] - head


def goal(systems: dict) -> dict | None:
    """imgclf's test accuracy (multi-label: samples-F2) >= the better of fastai's and
    plain's, in <= fastai's time (means over the seeds where a set was run with several)."""
    if not all(name in systems for name in SYSTEMS):
        return None
    score = "f2" if "f2" in systems["imgclf"]["test"] else "acc"
    best_other = max(systems["fastai"]["test"][score], systems["plain"]["test"][score])
    ours = systems["imgclf"]
    accuracy_met = ours["test"][score] >= best_other
    time_met = ours["train_seconds"] <= systems["fastai"]["train_seconds"]
    return {
        "score": score,
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


def half_of(name: str) -> str:
    if name in quality_data.LABELS:
        return "labels"
    return next((half for half, names in HALVES.items() if name in names), "other")


def spread(stat: dict | None) -> str:
    """mean +- sd (n) of a stats entry, or n/a."""
    if not stat:
        return "n/a"
    n = len(stat["values"])
    return f"{stat['mean']:.3f} ± {stat['sd']:.3f}" if n > 1 else f"{stat['mean']:.3f}"


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# Quality benchmark: imgclf's default command vs fastai vs a plain loop",
        "",
        f"Measured {results['date']} on {m['cpu']} ({m['cores']} cores, no GPU), torch "
        f"{m['torch']}, load average at the end {', '.join(f'{x:.1f}' for x in m['load_average_at_end'])}. "
        "Image size per set (64 px small sets, 32 px large ones), the same for every system; "
        f"fastai `fine_tune({results['epochs']})`; plain loop 1 + {results['epochs']} epochs. "
        "Test: the labelled held-out split, never seen in training or model selection. TTA: 4 "
        "augmented passes blended 0.75/0.25 with the plain pass. Scores are means over the "
        "seeds, ± their sample standard deviation. Seconds: training only (imgclf: "
        "`wall_seconds` of summary.json, LR finders and precompute included; fastai: "
        "`vision_learner` + `fine_tune`; plain: model creation + loop). Unfrozen gain: imgclf's "
        "last stage's final valid accuracy minus its head stage's (negative: it ended below "
        "the head).",
    ]
    if results.get("note"):
        lines += ["", f"Note: {results['note']}"]
    for half in (*HALVES, "other"):  # the sets with CSV labels have their own tables
        # Sets measured only with --label options have no systems' rows.
        names = [
            n for n in results["sets"] if half_of(n) == half and results["sets"][n].get("systems")
        ]
        if not names:
            continue
        title = {"choose": "defaults chosen here", "confirm": "defaults confirmed here, unchanged"}
        lines += [
            "",
            f"## Half '{half}': {title.get(half, 'outside the halves')}",
            "",
            *accuracy_rows(results, names),
            "",
        ]
        lines += goal_lines(results, names)
    lines += labels_markdown(results)
    return (
        "\n".join(
            lines + options_markdown(results.get("options") or {}, results.get("options_machine"))
        )
        + "\n"
    )


def goal_lines(results: dict, names: list[str]) -> list[str]:
    lines = []
    for name in names:
        g = results["sets"][name].get("goal")
        if g:
            score = "F2" if g.get("score") == "f2" else "accuracy"
            lines.append(
                f"- {name}: {score} {'met' if g['accuracy_met'] else 'NOT met'} "
                f"(best other {g['best_other_test_acc']:.3f}), time "
                f"{'met' if g['time_met'] else 'NOT met'}"
            )
    return lines


ACCURACY_HEADER = [
    "| set | train/valid/test | system | seeds | test acc | test acc TTA "
    "| test log-loss | train s | unfrozen gain |",
    "|---|---|---|---|---|---|---|---|---|",
]


def accuracy_rows(results: dict, names: list[str]) -> list[str]:
    """The single-label sets' rows: test accuracy with and without TTA, log-loss, seconds."""
    lines = ACCURACY_HEADER[:]
    for name in names:
        entry = results["sets"][name]
        for system, r in entry["systems"].items():
            sizes = r.get("sizes") or entry.get("sizes") or {}
            lines.append(
                f"| {name} | {sizes.get('train')}/{sizes.get('valid')}/{sizes.get('test')} "
                f"| {system} | {len(r.get('seeds') or [0])} | {spread(r.get('test_acc'))} "
                f"| {spread(r.get('test_tta_acc'))} | {r['test']['logloss']:.3f} "
                f"| {r['train_seconds']:.0f} | {spread(r.get('unfrozen_gain'))} |"
            )
    return lines


def labels_row(name: str, system: str, r: dict, sizes: dict) -> str:
    """One system's row of the multi-label table."""
    return (
        f"| {name} | {sizes.get('train')}/{sizes.get('valid')}/{sizes.get('test')} "
        f"| {system} | {len(r.get('seeds') or [0])} | {spread(r.get('test_f2'))} "
        f"| {r['test']['exact']:.3f} | {spread(r.get('test_tta_f2'))} "
        f"| {r['test_tta']['exact']:.3f} | {r['test']['logloss']:.3f} "
        f"| {r['train_seconds']:.0f} |"
    )


def labels_markdown(results: dict) -> list[str]:
    """The sets with CSV labels: single-label ones by test accuracy, as the folder sets;
    multi-label ones by samples-F2 and exact match of the tag sets."""
    names = [
        n for n in results["sets"] if half_of(n) == "labels" and results["sets"][n].get("systems")
    ]
    if not names:
        return []
    single = [n for n in names if n not in quality_data.MULTI_LABEL]
    multi = [n for n in names if n in quality_data.MULTI_LABEL]
    lines = ["", "## Labels from a CSV"]
    if single:
        lines += [
            "",
            "Single-label, the labels in a Kaggle-style `labels.csv` (`id,label`, as the "
            "dog-breeds competition's): imgclf with `data=csv`, fastai with "
            "`ImageDataLoaders.from_csv`; scored as the folder sets are.",
            "",
            *accuracy_rows(results, single),
            "",
            *goal_lines(results, single),
        ]
    if multi:
        lines += multi_label_lines(results, multi)
    return lines


def multi_label_lines(results: dict, names: list[str]) -> list[str]:
    """The multi-label sets' table: samples-F2 and exact match of the tag sets."""
    lines = [
        "",
        "Multi-label, the tags in a Planet-style CSV. "
        "Samples-F2 (beta 2, Planet's score) and exact match (the predicted tag set is the "
        "true one) on the test split; imgclf at the thresholds it chose on validation, fastai "
        "and the plain loop at 0.5 (fastai's `accuracy_multi` default). Log-loss: mean binary "
        "cross-entropy per tag.",
        "",
        "| set | train/valid/test | system | seeds | test F2 | test exact | test F2 TTA "
        "| test exact TTA | test log-loss | train s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        entry = results["sets"][name]
        for system, r in entry["systems"].items():
            lines.append(labels_row(name, system, r, r.get("sizes") or entry.get("sizes") or {}))
    return [*lines, "", *goal_lines(results, names)]


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
    size = args.size or quality_data.IMAGE_SIZE[name]
    result = run_imgclf(data, size, args.logs, args.imgclf_args.split(), args.label)
    result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    result["overrides"] = args.imgclf_args
    result["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results.setdefault("options", {}).setdefault(name, {})[args.label] = result
    print(f"  {args.label}: test acc {result['test']['acc']:.3f}", flush=True)
    return result


def refresh(entry: dict) -> None:
    """A set's aggregates and goal, anew from its runs (system -> seed -> result)."""
    entry["systems"] = {system: aggregate(runs) for system, runs in entry["runs"].items()}
    entry["goal"] = goal(entry["systems"])


def merge(paths: list[Path], out: Path) -> dict:
    """Put the runs of several results files together (later files win), aggregates anew."""
    json_path = out / "results-quality.json"
    merged = json.loads(json_path.read_text()) if json_path.exists() else {"sets": {}}
    for path in paths:
        other = json.loads(path.read_text())
        for name, entry in other["sets"].items():
            target = merged["sets"].setdefault(name, {"runs": {}})
            target["sizes"] = entry.get("sizes", target.get("sizes"))
            for system, runs in entry["runs"].items():
                target["runs"].setdefault(system, {}).update(runs)
        for key in ("date", "epochs", "machine"):
            merged.setdefault(key, other.get(key))
    for entry in merged["sets"].values():
        refresh(entry)
    write_results(merged, out)
    return merged


def write_results(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results-quality.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results-quality.md").write_text(markdown(results))


def planned_sets(args) -> list[str]:
    if args.quick:
        return list(QUICK_SETS)
    if args.sets:
        return [s for s in args.sets.split(",") if s]
    if args.half != "all":
        return list(HALVES[args.half])
    return [name for names in HALVES.values() for name in names] + list(quality_data.LABELS)


def run_plan(
    sets: list[str], systems: list[str], seeds: list[int], reference_seeds: list[int]
) -> list[tuple[str, str, int]]:
    """(set, system, seed) in the order they run: set by set, seed by seed, imgclf with
    `seeds`, fastai and the plain loop with `reference_seeds`."""
    return [
        (name, system, seed)
        for name in sets
        for seed in sorted(set(seeds) | set(reference_seeds))
        for system in systems
        if seed in (seeds if system == "imgclf" else reference_seeds)
    ]


def run_one(args, system: str, name: str, data: Path, seed: int) -> dict:
    size = args.size or quality_data.IMAGE_SIZE[name]
    load_before = os.getloadavg()[0]
    if system == "imgclf":
        result = run_imgclf(data, size, args.logs, args.imgclf_args.split(), seed=seed)
    else:
        result = run_other(system, data, size, args.epochs, args.logs, seed=seed)
    # Other processes on the machine slow every system: say how busy it was.
    result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    result["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return result


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.merge:
        merged = merge(args.merge, args.out)
        if args.note:
            merged["note"] = args.note
            write_results(merged, args.out)
        print((args.out / "results-quality.md").read_text())
        return
    sets = planned_sets(args)
    systems = ["imgclf"] if args.quick else [s for s in args.only.split(",") if s]
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",") if s]
    reference_seeds = [int(s) for s in args.reference_seeds.split(",") if s]
    json_path = args.out / "results-quality.json"
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "sets": {}}
    results["epochs"] = args.epochs
    if json_path.exists():  # keep the other runs' results when re-running a subset
        previous = json.loads(json_path.read_text())
        results["sets"] = {k: v for k, v in previous.get("sets", {}).items() if "runs" in v}
        results["options"] = previous.get("options", {})
        if args.label:  # an option run leaves the systems' table, and its date, as they were
            kept = ("date", "note", "machine", "epochs")
            results.update({k: previous[k] for k in kept if k in previous})
    save_weights()
    plan = run_plan(sets, systems, seeds, reference_seeds)
    started = time.perf_counter()
    for step, (name, system, seed) in enumerate(plan, start=1):
        data = quality_data.build(name)
        entry = results["sets"].setdefault(name, {"runs": {}})
        entry["sizes"] = quality_data.counts(data)
        if args.label:
            if seed == seeds[0] and system == systems[0]:
                run_option(args, name, data, results)
                results["options_machine"] = machine()
                results.setdefault("machine", results["options_machine"])  # a fresh --out
                write_results(results, args.out)
            continue
        minutes = (time.perf_counter() - started) / 60
        print(
            f"[{step}/{len(plan)}, {minutes:.0f} min] {name} ({half_of(name)}): {system}, "
            f"seed {seed} ...",
            flush=True,
        )
        result = run_one(args, system, name, data, seed)
        entry["runs"].setdefault(system, {})[str(seed)] = result
        gain = unfrozen_gain(result)
        if "f2" in result["test"]:
            print(f"  test F2 {result['test']['f2']:.3f}, exact {result['test']['exact']:.3f}")
        print(
            f"  test acc {result['test']['acc']:.3f} (TTA {result['test_tta']['acc']:.3f}), "
            f"{result['train_seconds']:.0f} s"
            + (f", unfrozen stage {gain:+.3f} on its head" if gain is not None else ""),
            flush=True,
        )
        refresh(entry)
        results["machine"] = machine()
        write_results(results, args.out)
    print((args.out / "results-quality.md").read_text())
    minutes = (time.perf_counter() - started) / 60
    print(f"{len(plan)} runs in {minutes:.0f} min", flush=True)


if __name__ == "__main__":
    main()
