"""`make bench-gpu` and the contention benchmark on tiny sizes, on the CPU: every code path
runs and the results files have the promised structure. No timing is asserted."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import contention, gpu  # noqa: E402


def test_gpu_benchmark_dry_run_on_the_cpu(tmp_path):
    # As `make bench-gpu` runs it: a process of its own. In the test process its loaders
    # forked workers beside the threads earlier tests left (W&B's, the hub's), and a
    # forked worker could hang on a lock one of them held at the fork.
    args = ["--tiny", "--device=cpu", f"--out={tmp_path / 'out'}", f"--data={tmp_path / 'data'}"]
    command = [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), *args]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert finished.returncode == 0, finished.stderr[-3000:]
    written = json.loads((tmp_path / "out" / "results-gpu.json").read_text())
    assert written["measured"] and written["machine"]["device"] == "cpu"
    figures = written["figures"]
    for name in ("training", "inference"):
        assert figures[name]["a"] > 0 and figures[name]["b"] > 0, name
        assert figures[name]["ratio"] == pytest.approx(figures[name]["a"] / figures[name]["b"])
        assert figures[name]["precision"] == "bf16-mixed" and figures[name]["channels_last"]
    assert set(figures["feeding"]) == {"500x375", "400x300"}
    for folder in figures["feeding"].values():
        for decode in ("cpu_decode", "gpu_decode"):
            assert folder[decode]["a"] > 0 and folder[decode]["b"] > 0
        assert folder["loader_alone"]["gpu"] > 0
    assert "compile" not in figures  # --tiny leaves torch.compile out (a minute on a CPU)
    recipe = written["runs"]["recipe"]["runs"]["cpu"]
    assert recipe["returncode"] == 0, recipe.get("error")
    assert [s["name"] for s in recipe["stages"]] == ["head", "finetune"]
    head, finetune = recipe["stages"]
    assert head["precompute_seconds"] > 0 and head["lr_find_seconds"] > 0
    assert 0 < head["precompute_seconds"] < head["seconds"]
    # lesson1's unfrozen stage takes its LR from the recipe: no LR finder there.
    assert finetune["precompute_seconds"] is None and finetune["lr_find_seconds"] is None
    assert 0 <= recipe["best_valid_acc"] <= 1
    smoke = written["runs"]["smoke"]
    assert set(smoke) == {
        "train",
        "train_ddp_1_device",
        "train_decode_gpu",
        "lr_find",
        "evaluate_tta",
        "predict",
        "export_onnx",
        "resume_killed_run",
    }
    for name, entry in smoke.items():
        assert entry["returncode"] == 0 and entry["sane"], (name, entry.get("error"))
    assert smoke["predict"]["rows"] == 6
    report = (tmp_path / "out" / "results-gpu.md").read_text()
    assert "dry run on `cpu`, not a GPU" in report
    assert "| feeding 500x375, data.decode=gpu |" in report
    assert "| resume_killed_run | 0 |" in report


def test_the_report_without_a_device_measures_nothing(tmp_path):
    gpu.main(["--no-device-report", f"--out={tmp_path}"])
    written = json.loads((tmp_path / "results-gpu.json").read_text())
    assert written == {
        "measured": False,
        "reason": "not measured: no device",
        "figures": {},
        "runs": {},
    }
    report = (tmp_path / "results-gpu.md").read_text()
    assert "not measured: no device" in report
    # every figure row is a placeholder: no number in any A, B or ratio cell
    rows = [line for line in report.splitlines() if line.startswith("| feeding")]
    assert len(rows) == 4 and all(row.count("not measured: no device") == 3 for row in rows)


def test_parse_args_sizes():
    full = gpu.parse_args([])
    assert (full.image_size, full.batch_size, full.recipe_images) == (224, 256, 25000)
    assert full.items == gpu.ITEMS and full.photo_wh == (4000, 3000)
    tiny = gpu.parse_args(["--tiny", "--device=cpu"])
    assert "compile" not in tiny.items and tiny.workers == 0
    with pytest.raises(SystemExit):
        gpu.parse_args(["--only", "nonsense"])


def test_contention_section_replaces_itself():
    section = f"{contention.START}\nnew\n{contention.END}\n"
    before = f"# title\n\n{contention.START}\nold\n{contention.END}\n\ntail\n"
    assert contention.with_section(before, section) == f"# title\n\n{section}\ntail\n"
    assert contention.with_section("# title\n", section) == f"# title\n\n{section}"


def test_contention_benchmark_runs_on_tiny_sizes(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.md").write_text("# imgclf benchmarks\n")
    results = contention.main(
        [
            "--threads=1",
            "--workers=0,1",
            "--wait-policies=default,PASSIVE",
            "--rounds=1",
            "--steps=1",
            "--image-size=32",
            "--batch-size=4",
            f"--out={tmp_path / 'out'}",
            f"--data={tmp_path / 'data'}",
        ]
    )
    assert set(results["table"]) == {"default,1,0", "default,1,1", "PASSIVE,1,0", "PASSIVE,1,1"}
    for row in results["table"].values():
        assert row["idle"] > 0 and row["busy"] > 0
        assert row["busy_over_idle"] == pytest.approx(row["busy"] / row["idle"])
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert markdown.startswith("# imgclf benchmarks\n")
    assert markdown.count("**CPU contention**") == 1 and "| PASSIVE | 1 | 1 |" in markdown
    saved = json.loads((tmp_path / "out" / "results-contention.json").read_text())
    assert saved["table"].keys() == results["table"].keys()
