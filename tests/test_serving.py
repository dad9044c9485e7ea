"""The pieces of the `imgclf serve` page, in-process: a file's probabilities are those of
`predict` (TTA off), bad files get a reason, the results table, the bars, examples and
model card, for single-label and multi-label models."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from helpers.folders import bad_uploads, extra_images, make_image_folder
from helpers.models import small_datamodule_and_model

from imgclf.evaluation.prediction import predict
from imgclf.serving.card import card_markdown, run_card
from imgclf.serving.classify import Answer, FileClassifier, label_value, ranked
from imgclf.serving.page import results_markdown
from imgclf.serving.showcase import error_pictures, example_images


@pytest.fixture(scope="module")
def classifier_and_data(tmp_path_factory):
    root = make_image_folder(tmp_path_factory.mktemp("pets") / "pets", n_train=4, n_valid=2)
    datamodule, model = small_datamodule_and_model(root, image_size=32)
    model.eval()
    classifier = FileClassifier(
        model, datamodule.eval_transform(32), datamodule.classes, datamodule.max_pixels
    )
    return classifier, datamodule, model, root


def test_a_files_probabilities_are_those_of_predict_without_tta(classifier_and_data, tmp_path):
    classifier, datamodule, model, root = classifier_and_data
    # A large JPEG (reduced-scale decoding), a wide PNG (upscaled), an EXIF-rotated JPEG,
    # a PNG with alpha.
    paths = [*sorted((root / "valid").rglob("*.jpg"))[:2], *extra_images(tmp_path)]
    expected = predict(model, paths, datamodule, tta_n=0, clip=None, image_size=32).probs
    answers = classifier.classify_all(paths)
    assert [a.error for a in answers] == [None] * len(paths)
    got = np.stack([a.probs for a in answers])
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    assert np.allclose(got.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(got[2], got[3], atol=1e-3)  # different images, different answers


def test_a_multi_label_model_gives_sigmoid_probabilities_and_the_tags_at_its_thresholds(
    classifier_and_data,
):
    from imgclf.model import ImageClassifier

    _, datamodule, _, root = classifier_and_data
    torch.manual_seed(0)
    model = ImageClassifier(num_classes=3, class_names=["a", "b", "c"], task="multi").eval()
    paths = sorted((root / "valid").rglob("*.jpg"))[:3]
    expected = predict(model, paths, datamodule, tta_n=0, clip=None, image_size=32).probs
    # Per-tag thresholds around each tag's middle answer: some tags on, some off.
    model.set_thresholds(np.median(expected, axis=0).tolist())
    classifier = FileClassifier(model, datamodule.eval_transform(32), ["a", "b", "c"])
    assert classifier.multi_label and classifier.thresholds == model.thresholds
    answers = classifier.classify_all(paths)
    got = np.stack([a.probs for a in answers])
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    assert not np.allclose(got.sum(axis=1), 1.0, atol=1e-3)  # a sigmoid per tag
    for answer in answers:
        on = [i for i in range(3) if answer.probs[i] >= model.thresholds[i]]
        assert sorted(answer.chosen) == on
        assert [answer.probs[i] for i in answer.chosen] == sorted(answer.probs[on], reverse=True)
    assert {len(a.chosen) for a in answers} != {0} and {len(a.chosen) for a in answers} != {3}
    model.set_thresholds(None)  # never validated: 0.5 each, as imgclf predict
    assert FileClassifier(model, datamodule.eval_transform(32), ["a", "b", "c"]).thresholds == [
        0.5, 0.5, 0.5,
    ]  # fmt: skip


def test_the_bars_head_with_the_decoded_labels_then_the_most_probable_others():
    classes = ["a", "b", "c", "d"]
    probs = np.array([0.3, 0.9, 0.6, 0.05], dtype=np.float32)
    single = label_value(Answer("x", probs=probs, chosen=[1]), classes, top_k=2)
    assert single["label"] == "b"
    assert [c["label"] for c in single["confidences"]] == ["b", "c"]
    assert single["confidences"][0]["confidence"] == pytest.approx(0.9)
    # Per-tag thresholds can pass a tag less probable than one that fails: it comes first.
    tags = label_value(Answer("x", probs=probs, chosen=[1, 0]), classes, top_k=3)
    assert tags["label"] == "b a"
    assert [c["label"] for c in tags["confidences"]] == ["b", "a", "c"]
    assert (
        len(label_value(Answer("x", probs=probs, chosen=[1, 2, 0]), classes, 1)["confidences"]) == 3
    )
    assert label_value(Answer("x", probs=probs, chosen=[]), classes, top_k=2)["label"] == ""


def test_bad_files_get_a_one_line_reason_and_no_probabilities(classifier_and_data, tmp_path):
    classifier = classifier_and_data[0]
    for path, words in bad_uploads(tmp_path).items():
        answer = classifier.classify(path)
        assert answer.probs is None and answer.name == path.name
        assert words in answer.error and "\n" not in answer.error, (path.name, answer.error)


def test_the_results_table_ranks_classes_and_says_why_a_file_has_none():
    classes = ["cats", "dogs", "birds"]
    answers = [
        Answer("a|b.jpg", probs=np.array([0.1, 0.7, 0.2], dtype=np.float32)),
        Answer("notes.txt", error="not an image PIL can read"),
    ]
    table = results_markdown(answers, classes, top_k=2).splitlines()
    assert table[2] == "| a\\|b.jpg | dogs 0.69999999, birds 0.20000000 |"
    assert table[3] == "| notes.txt | **not classified:** not an image PIL can read |"
    assert list(ranked(answers[0].probs, classes)) == ["dogs", "birds", "cats"]


def test_the_multi_label_table_gives_the_predicted_tags_then_the_others():
    classes = ["haze", "primary", "water"]
    probs = np.array([0.25, 0.75, 0.5], dtype=np.float32)
    answers = [
        Answer("a.jpg", probs=probs, chosen=[1, 0]),
        Answer("b.jpg", probs=probs, chosen=[]),
        Answer("notes.txt", error="not an image PIL can read"),
    ]
    table = results_markdown(answers, classes, top_k=1, tags=True).splitlines()
    assert table[0] == "| file | predicted tags | other tags |"
    assert table[2] == "| a.jpg | primary 0.75000000, haze 0.25000000 | water 0.50000000 |"
    assert table[3] == ("| b.jpg | none | primary 0.75000000, water 0.50000000, haze 0.25000000 |")
    assert table[4] == "| notes.txt | **not classified:** not an image PIL can read | |"


def test_examples_take_the_first_images_of_every_class(tmp_path):
    items = [(tmp_path / f"{i}.jpg", label) for i, label in enumerate([0, 0, 0, 1, 2, 2])]
    chosen = example_images(items, ["a", "b", "c"], per_class=2)
    assert [(p.name, c) for p, c in chosen] == [
        ("0.jpg", "a"), ("1.jpg", "a"), ("3.jpg", "b"), ("4.jpg", "c"), ("5.jpg", "c"),
    ]  # fmt: skip
    assert example_images(items, ["a", "b", "c"], per_class=0) == []
    # Multi-label items count for each of their tags.
    tagged = [(tmp_path / f"{i}.jpg", tags) for i, tags in enumerate([(0, 1), (0,), (1, 2), (2,)])]
    assert [(p.name, c) for p, c in example_images(tagged, ["a", "b", "c"], 1)] == [
        ("0.jpg", "a b"), ("2.jpg", "b c"),
    ]  # fmt: skip


def test_the_card_reads_the_runs_summary_and_the_pictures_it_holds(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "best.ckpt").write_bytes(b"weights")
    os.utime(run / "checkpoints" / "best.ckpt", (1_700_000_000, 1_700_000_000))
    summary = {"best_valid_acc": 0.9875, "valid_logloss": 0.0512}
    (run / "summary.json").write_text(json.dumps(summary))
    card = run_card(run / "checkpoints" / "best.ckpt", ["cats", "dogs"], "resnet34", 224)
    assert card["run_directory"] == str(run.resolve()) and card["image_size"] == 224
    assert card["trained"] == "2023-11-14 22:13 UTC"
    text = card_markdown(card)
    assert "| best valid accuracy | 0.9875 |" in text and "| valid log-loss | 0.0512 |" in text
    assert "| classes | 2: cats, dogs |" in text and "`resnet34`" in text
    assert error_pictures(run) == []
    (run / "interpret" / "views").mkdir(parents=True)
    (run / "interpret" / "confusion.png").write_bytes(b"png")
    assert [p.name for p, _ in error_pictures(run)] == ["confusion.png"]
    elsewhere = tmp_path / "model.ckpt"
    elsewhere.write_bytes(b"weights")
    assert run_card(elsewhere, ["a"], "x", 32)["run_directory"] is None
    assert "| best valid accuracy | n/a |" in card_markdown(run_card(elsewhere, ["a"], "x", 32))


def test_a_multi_label_card_gives_the_threshold_and_the_multi_label_metrics(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "best.ckpt").write_bytes(b"weights")
    history = [
        {"epoch": 0, "valid/ap": 0.61, "valid/fbeta": 0.70},
        {"epoch": 1, "valid/ap": 0.83, "valid/fbeta": 0.88},
        {"epoch": 2, "valid/ap": 0.79, "valid/fbeta": 0.86},
    ]
    summary = {
        "best_valid_acc": 0.9, "valid_logloss": 0.1234, "best_epoch": 1,
        "best_valid_fbeta": 0.88, "thresholds": [0.2, 0.2], "history": history,
    }  # fmt: skip
    (run / "summary.json").write_text(json.dumps(summary))
    checkpoint = run / "checkpoints" / "best.ckpt"
    text = card_markdown(run_card(checkpoint, ["haze", "water"], "x", 64, "multi", [0.2, 0.2]))
    assert "| tags | 2: haze, water |" in text and "| task | multi-label" in text
    assert "| threshold | 0.20 for every tag (chosen on validation) |" in text
    assert "| best valid F2 (samples-averaged, at the threshold) | 0.8800 |" in text
    assert "| valid average precision (macro) | 0.8300 |" in text  # the best epoch's
    assert "| valid log-loss (binary cross-entropy per tag) | 0.1234 |" in text
    assert "accuracy" not in text
    per_tag = card_markdown(run_card(checkpoint, ["haze", "water"], "x", 64, "multi", [0.1, 0.35]))
    assert "| threshold | haze 0.10, water 0.35 (chosen on validation) |" in per_tag
    unvalidated = card_markdown(run_card(checkpoint, ["haze", "water"], "x", 64, "multi", None))
    assert "| threshold | 0.5 for every tag (none chosen on validation) |" in unvalidated


def test_the_serve_benchmark_report_has_both_latencies_and_every_round():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.serve import markdown

    results = {
        "run": "logs/train/x",
        "image_size": 64,
        "machine": {"cpu": "cpu", "usable_cores": 2},
        "latency": {
            "bare_ms_median": 30.0,
            "http_ms_median": 41.5,
            "added_ms_median": 11.5,
            "gradio_client_ms_median": 150.0,
        },
        "clients": 20,
        "images": 10,
        "concurrency": [
            {"seconds": 9.5, "answers": 200, "wrong": 0, "server_rss_mb": 900.0},
            {"seconds": 9.1, "answers": 200, "wrong": 1, "server_rss_mb": 901.5},
        ],
    }
    text = markdown(results)
    assert "| bare call in-process (decode, eval transform, model) | 30.0 |" in text
    assert "| added by the page (HTTP API - bare) | 11.5 |" in text
    assert "| the API through gradio_client | 150.0 |" in text
    assert "| 1 | 9.5 | 200 | 0 | 900.0 |  |" in text
    assert "| 2 | 9.1 | 200 | 1 | 901.5 | +1.5 |" in text


def test_the_queue_keeps_the_records_of_the_last_sessions_only(monkeypatch):
    """Every gradio_client is a new session; Gradio's queue would keep a record of each for
    the server's life. The page keeps the last QUEUED_SESSIONS_KEPT, and answers all."""
    import gradio as gr
    from gradio_client import Client
    from helpers.serve import free_port

    from imgclf.serving import page as page_module

    monkeypatch.setattr(page_module, "QUEUED_SESSIONS_KEPT", 3)
    with gr.Blocks() as demo:
        number, doubled = gr.Number(), gr.Number()
        gr.Button().click(lambda x: 2 * x, number, doubled, api_name="double")
    url = page_module.launch_page(demo, "127.0.0.1", free_port(), 1, [])
    try:
        answers = [Client(url, verbose=False).predict(i, api_name="/double") for i in range(8)]
        queue = demo._queue
        sessions = (len(queue.pending_event_ids_session), len(queue.pending_messages_per_session))
    finally:
        demo.close()
    assert answers == [2 * i for i in range(8)]
    assert sessions == (3, 3)
