"""The benchmark code paths on tiny sizes: every item runs and results.json/results.md have
the promised structure. No timing is asserted (the numbers depend on the machine)."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import run  # noqa: E402
from benchmarks.timing import Clock, alternate  # noqa: E402


def test_alternate_takes_turns_and_compares_medians():
    calls = []
    rates_a, rates_b = iter([10.0, 30.0, 20.0]), iter([5.0, 5.0, 50.0])

    def a():
        calls.append("a")
        return next(rates_a)

    def b():
        calls.append("b")
        return next(rates_b)

    result = alternate(a, b, rounds=3)
    assert calls == ["a", "b", "a", "b", "a", "b"]
    assert (result["a"], result["b"], result["ratio"]) == (20.0, 5.0, 4.0)
    assert result["round_ratios"] == [2.0, 6.0, 0.4]


def test_clock_leaves_warmup_steps_out():
    clock = Clock(warmup=1)
    # stamps after each step; the warm-up step ended at 100 s, then 0.5 s a step
    clock.stamps = [100.0, 100.5, 101.0, 101.5]
    assert clock.rate(items_per_step=8) == pytest.approx(3 * 8 / 1.5)
    with pytest.raises(ValueError):
        Clock(warmup=1).rate(8)


def test_quick_skips_the_recipe_and_uses_fewer_rounds():
    args = run.parse_args(["--quick"])
    assert "recipe" not in args.items and args.rounds == 3
    full = run.parse_args([])
    assert full.items == run.ITEMS and full.rounds == 5
    with pytest.raises(SystemExit):
        run.parse_args(["--only", "nonsense"])


def test_every_benchmark_runs_on_tiny_sizes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = run.main(
        [
            "--rounds=1",
            "--steps=2",
            "--no-compile",  # compiling alone takes a minute
            "--image-size=32",
            "--batch-size=4",
            "--jpegs=24",
            "--pipeline-size=32",
            "--precompute-per-class=4",
            "--precompute-size=32",
            "--memory-images=40",
            "--memory-size=32",
            f"--out={tmp_path / 'out'}",
            f"--data={tmp_path / 'data'}",
            "--recipe-overrides",
            "data.per_class=3",
            "data.image_size=32",
            "data.num_workers=0",
            "recipe.finetune_image_size=32",
            "recipe.stages.1.epochs=1",
            "lr_find.num_iter=4",
            "logger=csv",
            "--predict-size=32",
            "--predict-overrides",
            "data.num_workers=0",
            "data.batch_size=4",
        ]
    )
    written = json.loads((tmp_path / "out" / "results.json").read_text())
    assert written == json.loads(json.dumps(results))
    assert set(written["figures"]) == {"training", "inference", "pipeline", "precompute"}
    for name, figure in written["figures"].items():
        assert figure["rounds"] == 1 and len(figure["round_ratios"]) == 1, name
        assert figure["a"] > 0 and figure["b"] > 0, name
        assert figure["ratio"] == pytest.approx(figure["a"] / figure["b"]), name
        assert figure["unit"] == "images/s"
    assert (
        written["figures"]["training"]["threads_lightning"]
        == written["figures"]["training"]["threads_bare"]
    )
    assert written["figures"]["pipeline"]["images"] >= 20
    # data.per_class caps the whole folder before the split: 2 classes x 4, a quarter held out
    assert written["figures"]["precompute"]["images"] == 6
    knobs = written["knobs"]
    assert set(knobs) >= {"channels_last", "channels_last_inference", "bf16_mixed", "workers"}
    assert "persistent_workers" in knobs and "torch_compile" not in knobs
    for name, knob in knobs.items():
        assert knob["a"] > 0 and knob["b"] > 0 and len(knob["round_ratios"]) == 1, name
    assert "**Speed knobs**" in (tmp_path / "out" / "results.md").read_text()
    recipe = written["runs"]["recipe"]
    assert 0.0 <= recipe["best_valid_acc"] <= 1.0
    assert set(recipe["stage_seconds"]) == {"head", "finetune"}
    memory = written["runs"]["memory"]
    assert memory["images"] == 40
    assert memory["peak_rss_tree_bytes"] > 100 * 2**20  # python + torch at least
    assert 0 < memory["peak_pss_tree_bytes"] <= memory["peak_rss_tree_bytes"]
    assert memory["feature_cache_bytes"] > 0
    assert written["machine"]["cores"] >= 1 and written["machine"]["torch"]
    report = (tmp_path / "out" / "results.md").read_text()
    for name in ("training", "inference", "pipeline", "precompute"):
        assert f"| {name}:" in report
    assert "**Memory**" in report and "**Demo recipe**" in report
    predict = written["runs"]["predict"]
    assert set(predict["variants"]) == {
        "default (from the cached ONNX file)",
        "TTA x4 (through torch)",
    }
    assert all(v["median_seconds"] > 0 for v in predict["variants"].values())
    assert predict["first_call_seconds"] > 0
    assert "**One image through imgclf predict**" in report
