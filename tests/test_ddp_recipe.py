"""The lesson1 recipe under real DDP: two CPU processes (gloo) started by Lightning."""

import json
import re
from pathlib import Path

from imgclf.testing import make_image_folder, run_cli, small_run_overrides


def test_lesson1_recipe_runs_on_two_processes_with_one_learning_rate(tmp_path):
    root = make_image_folder(tmp_path / "pets", n_train=8, n_valid=4, size=40)
    result = run_cli(
        "train",
        *small_run_overrides(root, tmp_path),
        "lr_find.num_iter=10",
        "logger=csv",
        "trainer=ddp_cpu",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in result.stdout + result.stderr
    # Both ranks print their LR finder lines; every rank must train with the same LRs.
    found = re.findall(r"LR finder \((\w+)\): valley suggests (\S+);", result.stdout)
    assert sorted(stage for stage, _ in found) == ["finetune", "finetune", "head", "head"]
    agreed = dict(found)
    assert all(agreed[stage] == lr for stage, lr in found)
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [s["name"] for s in summary["stages"]] == ["head", "finetune"]
    assert summary["epochs"] == 9
    for stage in summary["stages"]:
        assert f"{stage['lr_find']['suggestion']:.2e}" == agreed[stage["name"]]
        assert Path(stage["checkpoint"]).is_file()
    assert 0.0 <= summary["best_valid_acc"] <= 1.0
    # Only rank 0 writes the plots: one per stage, no duplicates from rank 1.
    assert sorted(p.name for p in run_dir.glob("lr_find_*.png")) == [
        "lr_find_finetune.png",
        "lr_find_head.png",
    ]
