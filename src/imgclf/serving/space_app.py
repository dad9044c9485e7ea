"""The page of an exported model, standalone: `imgclf export format=space` copies this file
as `app.py` beside `model.onnx` and `model.json`. It needs gradio, onnxruntime, pillow and
numpy (the folder's requirements.txt), not imgclf: a Hugging Face Space runs it as it is,
and so does any machine with `pip install -r requirements.txt && python app.py`.

The preprocessing follows model.json's description of what `imgclf predict` does (TTA
off): JPEG reduced-scale decoding, EXIF orientation, RGB, short-side resize with PIL's
filter, centre crop, pixels / 255. The model outputs probabilities (its activation is part
of it); the answer is the top class, or for a multi-label model every tag at or above its
threshold in model.json.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Memory bounds for a page that runs for weeks, as `imgclf serve` sets them (its
# serving/page.py says why): Gradio's event records for its monitoring view, the sessions'
# copies of the page's settings, the queue's records per session.
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "100")
SESSIONS_KEPT, QUEUED_SESSIONS_KEPT = 20, 2000

import gradio as gr  # noqa: E402  (after the analytics switch)
import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402
from gradio.utils import LRUCache  # noqa: E402
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


def decoded(probs: np.ndarray, card: dict) -> list[int]:
    """The label indices to show as the answer, most probable first: the top class, or
    for a multi-label model (`"task": "multi"`) every tag at or above its threshold
    (model.json's `thresholds`), as `imgclf predict` decodes them."""
    if card.get("task") != "multi":
        return [int(np.argmax(probs))]
    limits = np.array([card["thresholds"][name] for name in card["classes"]])
    return sorted(np.flatnonzero(probs >= limits).tolist(), key=lambda i: -probs[i])


def label_value(probs: np.ndarray, card: dict, top_k: int = 5) -> dict:
    """Gradio's Label data: the heading is the answer (the top class, or the predicted
    tags, space-separated, "" when none); the bars are those labels, then the most probable
    others, `top_k` in all (or every predicted tag, when there are more)."""
    names, chosen = card["classes"], decoded(probs, card)
    rest = [int(i) for i in np.argsort(-probs, kind="stable") if i not in chosen]
    shown = [*chosen, *rest][: max(top_k, len(chosen))]
    return {
        "label": " ".join(names[i] for i in chosen),
        "confidences": [{"label": names[i], "confidence": float(probs[i])} for i in shown],
    }


def classifier(folder: Path):
    """The page's function: an image file -> the bars' data (`label_value`); a message for
    a file that is not an image."""
    card = json.loads((folder / "model.json").read_text())
    session = onnxruntime.InferenceSession(
        str(folder / "model.onnx"), providers=["CPUExecutionProvider"]
    )

    def classify(path: str | None) -> dict | None:
        if not path:
            return None
        try:
            pixels = preprocess(path, card)
        except Exception:  # PIL raises many types for files that are no image
            raise gr.Error(f"{Path(path).name}: not an image this page can read") from None
        probs = session.run(None, {"images": pixels[None]})[0][0]
        return label_value(probs, card)

    return classify, card


def build(folder: Path = HERE) -> gr.Blocks:
    classify, card = classifier(folder)
    examples = sorted(str(p) for p in (folder / "examples").glob("*") if p.is_file())
    about = (folder / "card.md").read_text() if (folder / "card.md").is_file() else ""
    multi = card.get("task") == "multi"
    title = f"{card['backbone']}: {', '.join(card['classes'][:12])}"
    with gr.Blocks(title=title) as page:
        gr.Markdown(f"# {title}")
        with gr.Row():
            with gr.Column():
                image = gr.File(label="Image", file_types=None)
                button = gr.Button("Classify", variant="primary")
            bars = gr.Label(label="Predicted tags, then the others" if multi else "Top classes")
        if examples:
            gr.Examples([[path] for path in examples], inputs=[image])
        gr.Markdown(about)
        # The function returns the Label data itself (postprocess off): Gradio's own
        # postprocessing would head a tag set with its most probable tag.
        button.click(classify, image, bars, api_name="classify", postprocess=False)
        image.change(classify, image, bars, api_name=False, postprocess=False)
    # Gradio (6.31) keeps an empty record for every session its queue has answered; keep
    # the last QUEUED_SESSIONS_KEPT, as it does for the sessions' message queues.
    page._queue.pending_messages_per_session.max_size = QUEUED_SESSIONS_KEPT
    page._queue.pending_event_ids_session = LRUCache(QUEUED_SESSIONS_KEPT)
    return page


if __name__ == "__main__":
    # The host comes from GRADIO_SERVER_NAME when set (a Space sets 0.0.0.0), else 127.0.0.1.
    build().launch(
        theme=gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"]),
        state_session_capacity=SESSIONS_KEPT,
    )
