"""The Gradio page: a Classify tab (files in, bars and a table out, examples to click, the
model card) and a tab with the run's mistakes. Its `classify` event is the HTTP API.

Offline by construction: analytics are off (also `GRADIO_ANALYTICS_ENABLED=False`, set
before Gradio is imported) and the theme uses the system's fonts, so the browser fetches
nothing but the page's own files from the server. Its memory is bounded: Gradio keeps
only a few sessions and events (`SESSIONS_KEPT`, `GRADIO_ANALYTICS_MAX_EVENTS`), its queue
keeps the records of the last `QUEUED_SESSIONS_KEPT` sessions (`bound_queued_sessions`),
and files are classified on one thread (`FileClassifier`).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Gradio's queue keeps a record of every event for its monitoring view, the last 10,000 by
# default (about 1.4 kB each, measured); the page needs none of them.
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "100")

import gradio as gr  # noqa: E402  (after the analytics switch)
import numpy as np  # noqa: E402
from gradio.utils import LRUCache  # noqa: E402

from imgclf.errors import UserError, one_line  # noqa: E402
from imgclf.serving.card import card_markdown  # noqa: E402
from imgclf.serving.classify import Answer, FileClassifier, label_value  # noqa: E402

SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]
MONO_FONTS = ["ui-monospace", "Consolas", "monospace"]
# Gradio keeps a copy of the page's component settings for every session (browser tab or
# API client) it has seen, 10,000 by default: about 25 kB each here, never freed before
# that, so the server grows with every new client. The page keeps nothing per session
# (no gr.State, no updated components), so a few suffice: an evicted session that comes
# back gets a fresh copy.
SESSIONS_KEPT = 20
# Gradio's queue keeps a message queue for each of the last 2,000 sessions that sent an
# event (about 3.5 kB each); the same number bounds its other per-session record.
QUEUED_SESSIONS_KEPT = 2000


def offline_theme() -> gr.themes.Base:
    """Gradio's default look with system fonts (its default loads Google Fonts)."""
    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)


def results_markdown(answers: list[Answer], classes: list[str], top_k: int, tags=False) -> str:
    """One row per file, or why it has none. Single-label: its top classes with their
    probabilities (8 decimals). Multi-label (`tags`): the predicted tags (at or above their
    thresholds) with their probabilities, then every other tag's."""
    if not answers:
        return "Upload one or more images (or drop them above)."
    header = "| file | predicted tags | other tags |" if tags else "| file | top classes |"
    rows = [header, "|---|---|---|" if tags else "|---|---|"]
    for answer in answers:
        name = answer.name.replace("|", "\\|")
        if answer.probs is None:
            rows.append(f"| {name} | **not classified:** {answer.error} |" + (" |" if tags else ""))
        elif tags:
            others = [i for i in ranked_indices(answer.probs) if i not in answer.chosen]
            shown = listed(answer.probs, classes, answer.chosen) or "none"
            rest = listed(answer.probs, classes, others) or "none"
            rows.append(f"| {name} | {shown} | {rest} |")
        else:
            rows.append(
                f"| {name} | {listed(answer.probs, classes, ranked_indices(answer.probs)[:top_k])} |"
            )
    return "\n".join(rows)


def ranked_indices(probs) -> list[int]:
    return [int(i) for i in np.argsort(-probs, kind="stable")]


def listed(probs, classes: list[str], indices: list[int]) -> str:
    return ", ".join(f"{classes[i]} {probs[i]:.8f}" for i in indices)


def upload_paths(files) -> list[str]:
    """Gradio's upload value (None, one path, or a list of paths or file objects) as paths."""
    if not files:
        return []
    files = files if isinstance(files, (list, tuple)) else [files]
    return [str(getattr(f, "name", f)) for f in files]


def first_label(answers: list[Answer], classes: list[str], top_k: int) -> dict | None:
    """The bars: the first classified file's decoded labels and probabilities."""
    for answer in answers:
        if answer.probs is not None:
            return label_value(answer, classes, top_k)
    return None


def shown(answers: list[Answer], classifier: FileClassifier, top_k: int) -> tuple:
    """(bars, table) of some answers, as the page (and the API) gives them."""
    classes = classifier.classes
    return first_label(answers, classes, top_k), results_markdown(
        answers, classes, top_k, tags=classifier.multi_label
    )


def classify_event(classifier: FileClassifier, top_k: int):
    """The page's (and the API's) function: files -> (bars, table)."""

    def classify(files):
        return shown(classifier.classify_all(upload_paths(files)), classifier, top_k)

    return classify


def example_event(classifier: FileClassifier, examples: list, top_k: int):
    """Clicking an example classifies it (its index in the gallery)."""

    def classify_example(evt: gr.SelectData):
        path, truth = examples[evt.index]
        answers = [classifier.classify(path, name=f"{path.name} (labelled {truth})")]
        return shown(answers, classifier, top_k)

    return classify_example


def build_page(
    classifier: FileClassifier,
    card: dict,
    examples: list[tuple[Path, str]],
    pictures: list[tuple[Path, str]],
    top_k: int = 5,
) -> gr.Blocks:
    """The page (see the module doc); `examples`: (path, class); `pictures`: (path, caption)."""
    top_k = max(1, min(top_k, len(classifier.classes)))
    # Uploads are copied into Gradio's cache: delete those older than an hour, every hour,
    # so a server that runs for weeks does not fill its disk.
    with gr.Blocks(title="imgclf", analytics_enabled=False, delete_cache=(3600, 3600)) as page:
        gr.Markdown(f"# {card['backbone']}: {', '.join(card['classes'][:12])}")
        with gr.Tab("Classify"):
            with gr.Row():
                with gr.Column():
                    files = gr.File(
                        label="Images (upload or drop, several at once)",
                        file_count="multiple",
                        elem_id="images",
                    )
                    button = gr.Button("Classify", variant="primary", elem_id="classify")
                with gr.Column():
                    bars = gr.Label(label=bars_title(classifier), elem_id="bars")
                    table = gr.Markdown(results_markdown([], [], top_k), elem_id="results")
            gallery = gr.Gallery(
                [(str(path), truth) for path, truth in examples],
                label="Examples from the validation set: click one",
                columns=8,
                height=220,
                object_fit="contain",
                allow_preview=False,
                elem_id="examples",
            )
            gr.Markdown(card_markdown(card), elem_id="card")
        with gr.Tab("What it gets wrong"):
            if not pictures:
                gr.Markdown("The run holds no error pictures (`imgclf evaluate ckpt=RUN`).")
            for path, caption in pictures:
                gr.Image(str(path), label=caption, interactive=False)
        classify = classify_event(classifier, top_k)
        # Outside Gradio's queue: one POST answers (/gradio_api/run/classify), about 190 ms
        # faster a call than the queue's event stream; the classifier's lock still runs
        # one model call at a time. The events return the bars' data themselves
        # (`label_value`), so postprocessing is off: Label's own would head a tag set with
        # its most probable tag.
        events = {"outputs": [bars, table], "postprocess": False}
        button.click(classify, inputs=files, api_name="classify", queue=False, **events)
        files.upload(classify, inputs=files, api_name=False, **events)
        gallery.select(example_event(classifier, examples, top_k), api_name=False, **events)
    return page


def bars_title(classifier: FileClassifier) -> str:
    if classifier.multi_label:
        return "Predicted tags (at or above their threshold), then the others"
    return "Top classes"


def launch_page(
    page: gr.Blocks, host: str, port: int, max_upload_mb: float, allowed_paths: list[str]
) -> str:
    """Start serving `page` in the background and return its address: one model call at a
    time, uploads above `max_upload_mb` refused with a message, only `allowed_paths`
    readable besides uploads. `page.block_thread()` then waits for Ctrl-C (or SIGTERM)."""
    page.queue(default_concurrency_limit=1)
    bound_queued_sessions(page, QUEUED_SESSIONS_KEPT)
    try:
        _, url, _ = page.launch(
            server_name=host,
            server_port=port,
            max_file_size=f"{max_upload_mb:g}mb",
            allowed_paths=allowed_paths,
            theme=offline_theme(),
            share=False,
            inbrowser=False,
            show_error=False,
            quiet=True,
            footer_links=["api"],
            # No run history: it offers to save calls to a Hugging Face bucket (online).
            run_history=False,
            state_session_capacity=SESSIONS_KEPT,
            prevent_thread_lock=True,
        )
    except OSError as err:  # Gradio's "Cannot find empty port"
        raise UserError(f"cannot serve on {host}:{port}: {one_line(err)}") from None
    return url


def bound_queued_sessions(page: gr.Blocks, capacity: int) -> None:
    """Keep the queue's records of the last `capacity` sessions only.

    Gradio's queue (6.31) keeps, for every session (browser tab or API client) that ever
    sent an event, a set of its pending event ids, and drops the set only when a client
    disconnects before its answer: after a normal answer the empty set stays, about 350
    bytes a visitor, for the server's life (gradio_client always goes through the queue).
    Its message queues per session are already a 2,000-entry `LRUCache`; this gives the
    event ids the same bound, and both this `capacity`. A session evicted from both is
    one that `capacity` newer sessions have followed; if it comes back, it gets new ones.
    """
    queue = page._queue  # no public setting for these (gradio 6.31); before launch: empty
    queue.pending_messages_per_session.max_size = capacity
    queue.pending_event_ids_session = LRUCache(capacity)
