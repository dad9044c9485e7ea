"""notebooks/lesson1.ipynb runs top to bottom (with small settings) and is stored clean."""

from __future__ import annotations

import csv
from pathlib import Path

import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "lesson1.ipynb"

SMALL = """
# Parameters
DATA = {data!r}
RUN_DIR = {run_dir!r}
CACHE_DIR = {cache_dir!r}
IMAGE_SIZE = 32
FINETUNE_SIZE = 40
HEAD_EPOCHS = 1
N_CYCLES = 1
PER_CLASS = 3
LR_FIND_ITERS = 6
TTA_N = 1
BATCH_SIZE = 8
NUM_WORKERS = 0
"""


def parameters_cell(notebook) -> int:
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and cell.source.startswith("# Parameters"):
            return index
    raise AssertionError("the notebook has no '# Parameters' cell")


def test_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)
    # The parameters come first, so a user (and this test) can change them in one place.
    assert parameters_cell(notebook) == min(
        i for i, c in enumerate(notebook.cells) if c.cell_type == "code"
    )


def test_notebook_runs_top_to_bottom_with_small_settings(tmp_path):
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    run_dir = tmp_path / "run"
    notebook.cells[parameters_cell(notebook)].source = SMALL.format(
        data=str(tmp_path / "digits"), run_dir=str(run_dir), cache_dir=str(tmp_path / "cache")
    ).strip()
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=600,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    try:
        client.execute()
    except Exception as err:  # the cell's traceback, not only nbclient's wrapper
        pytest.fail(f"notebook failed: {str(err)[-3000:]}")

    with open(run_dir / "submission.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", *map(str, range(10))]
    test_images = sorted((tmp_path / "digits" / "test").glob("*.png"))
    assert [r[0] for r in rows[1:]] == sorted((p.stem for p in test_images), key=int)
    views = sorted(p.stem for p in (run_dir / "interpret_final" / "views").glob("*.png"))
    assert views == sorted(
        [
            "random_correct",
            "random_incorrect",
            "confident_correct",
            "confident_incorrect",
            "uncertain",
            "top_losses",
        ]
    )
    assert (run_dir / "interpret_final" / "confusion.png").is_file()
    assert list((run_dir / "checkpoints").glob("stage1-finetune.ckpt"))
    # Pictures shown inline: samples, an augmented batch, two LR finder plots, the loss
    # curves, six view grids, the confusion matrix and the new image predicted at the end.
    pictures = sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert pictures == 13
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(output.get("text", "") for output in outputs)
    assert "TTA x1" in text and "test accuracy" in text
    # Training cells show a line per stage and per epoch as they go.
    assert "stage 1/1 head: 1 epoch at 32 px" in text and "epoch 1/1 (head): train loss" in text
    assert "epoch 1/1 (finetune): train loss" in text
    assert "top 3: [(" in text  # the reloaded model's answer for a new image
    stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    assert "Warning" not in stderr and "warn(" not in stderr, stderr[-2000:]
