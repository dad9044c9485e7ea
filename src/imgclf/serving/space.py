"""`imgclf export format=space`: a folder that serves the model anywhere, imgclf not
needed: app.py (a copy of `space_app.py`), requirements.txt, model.onnx, model.json (the
export card: classes, input, preprocessing), card.md (the run's model card), a few
example images, and README.md with the front matter a Hugging Face Space reads."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from imgclf.evaluation.export import export_model, input_size, model_card
from imgclf.serving.card import card_markdown

# What app.py imports; pinned to the versions this checkout runs, so the folder behaves
# as tested.
SPACE_PACKAGES = ("gradio", "onnxruntime", "pillow", "numpy")


def space_readme(card: dict) -> str:
    """README.md of the folder: the Space's settings (front matter) and how to run it."""
    title = f"{card['backbone']} image classifier"
    return "\n".join(
        [
            "---",
            f"title: {title}",
            "sdk: gradio",
            f"sdk_version: {version('gradio')}",
            "app_file: app.py",
            "---",
            "",
            f"# {title}",
            "",
            "Made with `imgclf export format=space`. Run it on any machine:",
            "",
            "    pip install -r requirements.txt",
            "    python app.py",
            "",
            "or push this folder to a Hugging Face Space (Gradio SDK).",
            "",
            card_markdown(card),
            "",
        ]
    )


def write_space(model, out: Path, card: dict, examples: list[tuple[Path, str]], size=None) -> Path:
    """The folder (see the module doc) at `out`; `card`: the run card (`run_card`),
    `examples`: (image, class) pairs copied into examples/."""
    out.mkdir(parents=True, exist_ok=True)
    size = input_size(model, size)
    export_model(model, "onnx", out / "model.onnx", image_size=size)
    (out / "model.json").write_text(json.dumps(model_card(model, "onnx", size), indent=2) + "\n")
    (out / "card.md").write_text(card_markdown(card) + "\n")
    (out / "README.md").write_text(space_readme(card))
    shutil.copyfile(Path(__file__).with_name("space_app.py"), out / "app.py")
    (out / "requirements.txt").write_text("\n".join(map(pinned, SPACE_PACKAGES)) + "\n")
    folder = out / "examples"
    folder.mkdir(exist_ok=True)
    for index, (path, label) in enumerate(examples):
        name = label.replace(" ", "+")  # a multi-label example: its tags
        shutil.copyfile(path, folder / f"{index:02d}_{name}{Path(path).suffix.lower()}")
    return out


def pinned(name: str) -> str:
    """`name==<installed version>`, or the bare name when it is not installed here."""
    try:
        return f"{name}=={version(name)}"
    except PackageNotFoundError:
        return name
