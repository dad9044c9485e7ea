"""The page of an exported model, standalone: `imgclf export format=space` copies this file
as `app.py` beside `model.onnx` and `model.json`. It needs gradio, onnxruntime, pillow and
numpy (the folder's requirements.txt), not imgclf: a Hugging Face Space runs it as it is,
and so does any machine with `pip install -r requirements.txt && python app.py`.

The preprocessing follows model.json's description of what `imgclf predict` does (TTA
off): JPEG reduced-scale decoding, EXIF orientation, RGB, short-side resize with PIL's
filter, centre crop, pixels / 255.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402  (after the analytics switch)
import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

HERE = Path(__file__).resolve().parent
# PIL's own decompression-bomb check refuses anything above twice this many pixels.
Image.MAX_IMAGE_PIXELS = 100_000_000


def preprocess(path: str, card: dict) -> np.ndarray:
    """An image file -> the model's float32 CHW input, by model.json's steps."""
    steps, size = card["preprocessing"], card["input"]["height"]
    target = steps["resize"]["short_side"]
    image = Image.open(path)
    if image.format == "JPEG":
        width, height = image.size
        scales = [s for s in (8, 4, 2) if min(-(-width // s), -(-height // s)) >= target]
        if scales:
            image.draft("RGB", (width // scales[0], height // scales[0]))
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255,) * 4), rgba)
    image = image.convert("RGB")
    width, height = image.size
    long_side = math.floor(max(width, height) * target / min(width, height) + 0.5)
    new = (target, long_side) if width <= height else (long_side, target)
    resample = getattr(Image.Resampling, steps["resize"]["interpolation"].upper())
    pixels = np.asarray(image.resize(new, resample=resample))
    top, left = (pixels.shape[0] - size) // 2, (pixels.shape[1] - size) // 2
    crop = pixels[top : top + size, left : left + size].astype(np.float32) / 255.0
    return crop.transpose(2, 0, 1)


def classifier(folder: Path):
    """The page's function: an image file -> {class: probability}; a message for a file
    that is not an image."""
    card = json.loads((folder / "model.json").read_text())
    session = onnxruntime.InferenceSession(
        str(folder / "model.onnx"), providers=["CPUExecutionProvider"]
    )

    def classify(path: str | None) -> dict[str, float] | None:
        if not path:
            return None
        try:
            pixels = preprocess(path, card)
        except Exception:  # PIL raises many types for files that are no image
            raise gr.Error(f"{Path(path).name}: not an image this page can read") from None
        probs = session.run(None, {"images": pixels[None]})[0][0]
        return {name: float(p) for name, p in zip(card["classes"], probs, strict=True)}

    return classify, card


def build(folder: Path = HERE) -> gr.Interface:
    classify, card = classifier(folder)
    examples = sorted(str(p) for p in (folder / "examples").glob("*") if p.is_file())
    about = (folder / "card.md").read_text() if (folder / "card.md").is_file() else ""
    return gr.Interface(
        classify,
        gr.File(label="Image", file_types=None),
        gr.Label(num_top_classes=min(5, len(card["classes"])), label="Top classes"),
        title=f"{card['backbone']}: {', '.join(card['classes'][:12])}",
        article=about,
        examples=[[path] for path in examples] or None,
        api_name="classify",
        flagging_mode="never",
    )


if __name__ == "__main__":
    # The host comes from GRADIO_SERVER_NAME when set (a Space sets 0.0.0.0), else 127.0.0.1.
    build().launch(theme=gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"]))
