"""notebooks/lesson1.ipynb runs top to bottom (with small settings), trains exactly the
recipe of `make train` (read from configs/), and is stored clean."""

from __future__ import annotations

import csv
from pathlib import Path

import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "lesson1.ipynb"

# Small sizes on top of `make train`'s config, as the notebook's OVERRIDES.
OVERRIDES = [
    "data.image_size=32",
    "recipe.finetune_image_size=40",
    "recipe.stages.0.epochs=1",
    "recipe.stages.1.epochs=1",
    "data.per_class=3",
    "data.batch_size=8",
    "lr_find.num_iter=6",
]
SMALL = """
# Parameters
DATA = {data!r}
RUN_DIR = {run_dir!r}
CACHE_DIR = {cache_dir!r}
OVERRIDES = {overrides!r}
TTA_N = 1
"""


def make_train_stages(overrides: list[str]):
    """The stages `imgclf train experiment=digits <overrides>` (make train) runs."""
    from imgclf.commands.config_check import compose_checked
    from imgclf.commands.configs import config_dir
    from imgclf.commands.train import recipe_of

    return recipe_of(compose_checked(config_dir(), "train", ["experiment=digits", *overrides]))


def test_the_notebook_reads_the_recipe_from_the_configs():
    """No stage, learning rate or size typed into the notebook: it asks `from_config` for
    `make train`'s experiment."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert '"experiment=digits"' in code and "from_config(" in code
    assert "Stage(" not in code and "lr=" not in code and "image_size=" not in code


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
        data=str(tmp_path / "digits"),
        run_dir=str(run_dir),
        cache_dir=str(tmp_path / "cache"),
        overrides=OVERRIDES,
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
    # Pictures shown inline: samples, an augmented batch, the LR finder plot, the loss
    # curves, six view grids, the confusion matrix and the new image predicted at the end.
    pictures = sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert pictures == 12
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(output.get("text", "") for output in outputs)
    assert "TTA x1" in text and "test accuracy" in text
    # Exactly the stages make train runs, with the same overrides.
    for stage in make_train_stages(OVERRIDES):
        assert repr(stage) in text, repr(stage)
    # Training cells show a line per stage and per epoch as they go.
    assert "stage 1/1 head: 1 epoch at 32 px" in text and "epoch 1/1 (head): train loss" in text
    # One Trainer for both stages, as imgclf train: the epochs count on across them.
    assert "epoch 2/2 (finetune): train loss" in text and "finetune: 1 epoch at 40 px" in text
    assert "top 3: [(" in text  # the reloaded model's answer for a new image
    stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    assert "Warning" not in stderr and "warn(" not in stderr, stderr[-2000:]
