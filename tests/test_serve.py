"""`imgclf serve` on a tiny trained run: its HTTP API and its page in a real browser
(Debian's Chromium driven by Playwright) give the probabilities of `imgclf predict`
(TTA off), bad files get a message and the server goes on, nothing is fetched from the
internet, and Ctrl-C (SIGTERM) ends it cleanly. On a tiny multi-label run, the API gives
the tag set at the checkpoint's thresholds and `imgclf predict`'s sigmoid probabilities."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from helpers.cli import run_cli, run_dir_of, small_run_overrides, start_cli
from helpers.folders import bad_uploads, extra_images, make_image_folder
from helpers.serve import CHROMIUM_ARGS, chromium_path, free_port, wait_for_page

TRAIN_ARGS = ("recipe=fine_tune", "recipe.stages.1.epochs=1", "logger=csv")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(run directory, image folder, working directory, images to classify)."""
    tmp = tmp_path_factory.mktemp("serve")
    root = make_image_folder(tmp / "pets", n_train=8, n_valid=4, n_test=3, size=48)
    result = run_cli("train", *small_run_overrides(root, tmp), *TRAIN_ARGS, cwd=tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    images = [*sorted((root / "test").glob("*.jpg")), *extra_images(tmp / "new")]
    return run_dir_of(result), root, tmp, images


@pytest.fixture(scope="module")
def predicted(trained) -> dict[str, list[float]]:
    """`imgclf predict` (TTA off, no clipping): file stem -> probabilities, class order."""
    run_dir, _, tmp, images = trained
    return cli_probabilities(run_dir, images, tmp, "submission.csv")[1]


def cli_probabilities(run_dir: Path, images, cwd: Path, table: str):
    """`imgclf predict` of `images` (TTA off, no clipping) read from its `table` file:
    (class names, file stem -> probabilities in class order)."""
    listing = ",".join(map(str, images))
    result = run_cli(
        "predict", f"ckpt={run_dir}", f"input=[{listing}]", "tta.n=0", "clip=null", cwd=cwd
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(run_dir_of(result) / table) as f:
        rows = list(csv.reader(f))
    return rows[0][1:], {row[0]: [float(p) for p in row[1:]] for row in rows[1:]}


@pytest.fixture(scope="module")
def server(trained):
    """The page of the trained run on a free port: (address, process, log file)."""
    run_dir, _, tmp, _ = trained
    log = tmp / "serve.log"
    with open(log, "w") as out:
        process = start_cli(
            "serve", f"ckpt={run_dir}", f"port={free_port()}", f"paths.log_dir={tmp / 'logs'}",
            cwd=tmp, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        url = None
        for _ in range(300):
            found = re.search(r"at (http://127\.0\.0\.1:\d+/)", log.read_text())
            if found or process.poll() is not None:
                url = found.group(1) if found else None
                break
            time.sleep(1)
        assert url, f"no address printed: {log.read_text()[-3000:]}"
        yield wait_for_page(url, process, log), process, log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def classes_of(run_dir: Path) -> list[str]:
    return json.loads((run_dir / "summary.json").read_text())["classes"]


def test_the_api_gives_the_probabilities_of_predict(trained, predicted, server):
    from gradio_client import Client, handle_file

    run_dir, _, _, images = trained
    client = Client(server[0], verbose=False)
    for path in images:
        bars, table = client.predict([handle_file(str(path))], api_name="/classify")
        got = {c["label"]: c["confidence"] for c in bars["confidences"]}
        expected = dict(zip(classes_of(run_dir), predicted[path.stem], strict=True))
        assert got == pytest.approx(expected, abs=1e-6), path.name
        assert bars["label"] == max(expected, key=expected.get)
        assert path.name in table
    # Plain HTTP, as the curl lines of docs/serve.md: upload, then one POST.
    import httpx

    http = httpx.Client(base_url=server[0].rstrip("/"))
    with open(images[0], "rb") as f:
        uploaded = http.post("/gradio_api/upload", files={"files": f}).json()[0]
    data = {"data": [[{"path": uploaded, "meta": {"_type": "gradio.FileData"}}]]}
    bars = http.post("/gradio_api/run/classify", json=data).json()["data"][0]
    got = {c["label"]: c["confidence"] for c in bars["confidences"]}
    expected = dict(zip(classes_of(run_dir), predicted[images[0].stem], strict=True))
    assert got == pytest.approx(expected, abs=1e-6)
    # Several files at once: one row each, the bars for the first.
    bars, table = client.predict([handle_file(str(p)) for p in images], api_name="/classify")
    assert [line.split(" | ")[0].lstrip("| ") for line in table.splitlines()[2:]] == [
        p.name for p in images
    ]


def test_bad_files_get_a_message_and_the_server_goes_on(trained, server, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(server[0], verbose=False)
    bad = bad_uploads(tmp_path)
    bars, table = client.predict([handle_file(str(p)) for p in bad], api_name="/classify")
    assert bars is None or not bars.get("confidences")
    for path, words in bad.items():
        row = next(line for line in table.splitlines() if line.startswith(f"| {path.name} |"))
        assert "not classified:" in row and words in row, row
    # 50 MB: above the 20 MB default limit, refused before the model sees it.
    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as f:
        f.truncate(50 * 1024 * 1024)
    with pytest.raises(Exception, match="(?i)size|large|413"):
        client.predict([handle_file(str(huge))], api_name="/classify")
    # Still serving, and still right.
    image = trained[3][0]
    bars, _ = client.predict([handle_file(str(image))], api_name="/classify")
    assert len(bars["confidences"]) == 2 and server[1].poll() is None
    assert "Traceback" not in server[2].read_text()


def test_the_page_in_chromium_classifies_uploads_and_examples_offline(
    trained, predicted, server, tmp_path
):
    from playwright.sync_api import sync_playwright

    run_dir, _, _, images = trained
    url = server[0]
    local = url.rstrip("/")
    requests, failed = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.on("request", lambda r: requests.append(r.url))
        page.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
        page.goto(url)
        page.wait_for_selector("#images input[type=file]", state="attached", timeout=60_000)

        image = images[3]  # the large JPEG: reduced-scale decoding and a downscale
        page.locator("#images input[type=file]").set_input_files([str(image)])
        results = page.locator("#results")
        results.filter(has_text=image.name).wait_for(timeout=60_000)
        shown = page_probabilities(results.inner_text(), image.name)
        expected = dict(zip(classes_of(run_dir), predicted[image.stem], strict=True))
        assert shown == pytest.approx(expected, abs=1e-6)
        top = max(expected, key=expected.get)
        assert top in page.locator("#bars").inner_text()
        screenshot = tmp_path / "serve.png"
        page.screenshot(path=str(screenshot), full_page=True)

        notes = bad_uploads(tmp_path / "bad")
        text_file = next(p for p in notes if p.suffix == ".txt")
        page.locator("#images input[type=file]").set_input_files([str(text_file)])
        results.filter(has_text="notes.txt").wait_for(timeout=60_000)
        assert "not classified: not an image PIL can read" in results.inner_text()

        huge = tmp_path / "huge.jpg"  # above the 20 MB default: refused at upload
        with open(huge, "wb") as f:
            f.truncate(50 * 1024 * 1024)
        page.locator("#images input[type=file]").set_input_files([str(huge)])
        toast = page.get_by_text("exceed the maximum allowed size of 20.0 Mb")
        toast.first.wait_for(timeout=60_000)

        page.locator("#examples img").first.click()
        results.filter(has_text="(labelled").wait_for(timeout=60_000)
        assert re.search(r"\(labelled (cats|dogs)\)", results.inner_text())

        page.get_by_role("tab", name="What it gets wrong").click()
        pictures = page.locator("img[src*='confusion.png'], img[src*='top_losses.png']")
        pictures.first.wait_for(timeout=60_000)
        assert pictures.count() == 2
        assert "best valid accuracy" in page.content()
        browser.close()
    outside = [u for u in requests if not u.startswith((local, "data:", "blob:"))]
    assert outside == []
    # Only the queue's own event streams end early (closed once an answer has come).
    assert [f for f in failed if "/gradio_api/queue/data" not in f] == []
    if os.environ.get("SERVE_SCREENSHOT"):  # docs/serve.png is taken from here
        shutil.copy(screenshot, os.environ["SERVE_SCREENSHOT"])


def page_probabilities(text: str, name: str) -> dict[str, float]:
    """{class: probability} of the results row of `name` (the table as the page shows it)."""
    line = next(line for line in text.splitlines() if line.startswith(name))
    pairs = re.findall(r"(\S+) (\d\.\d{8})", line[len(name) :])
    return {label: float(p) for label, p in pairs}


def test_export_space_serves_the_model_from_a_virtualenv_without_imgclf(trained, predicted):
    """`imgclf export format=space`, then `python app.py` in a new virtualenv. It sees the
    packages installed here (a .pth file: no download in the test) but not imgclf, whose
    editable install a .pth in a .pth-added folder does not load."""
    import sysconfig

    from gradio_client import Client, handle_file

    run_dir, _, tmp, images = trained
    space = tmp / "space"
    result = run_cli("export", f"ckpt={run_dir}", "format=space", f"out={space}", cwd=tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    files = {"app.py", "requirements.txt", "model.onnx", "model.json", "card.md", "README.md"}
    assert files <= {p.name for p in space.iterdir()}
    assert len(list((space / "examples").iterdir())) == 4  # two validation images per class
    pins = (space / "requirements.txt").read_text().split()
    assert [p.split("==")[0] for p in pins] == ["gradio", "onnxruntime", "pillow", "numpy"]
    venv = tmp / "space-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    Path(site, "project-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # Nor imgclf's source folder, when this test was given one on PYTHONPATH.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    alone = subprocess.run([python, "-c", "import imgclf"], capture_output=True, text=True, env=env)
    assert "No module named 'imgclf'" in alone.stderr
    port = free_port()
    log = tmp / "space.log"
    with open(log, "w") as out:
        app = subprocess.Popen(
            [python, "app.py"], cwd=space, stdout=out, stderr=subprocess.STDOUT,
            env={**env, "GRADIO_SERVER_PORT": str(port)},
        )  # fmt: skip
    try:
        client = Client(wait_for_page(f"http://127.0.0.1:{port}/", app, log), verbose=False)
        for path in images:
            bars = client.predict(handle_file(str(path)), api_name="/classify")
            got = {c["label"]: c["confidence"] for c in bars["confidences"]}
            expected = dict(zip(classes_of(run_dir), predicted[path.stem], strict=True))
            assert got == pytest.approx(expected, abs=1e-5), path.name
        text_file = next(iter(bad_uploads(tmp / "space-bad")))
        with pytest.raises(Exception, match="not an image this page can read"):
            client.predict(handle_file(str(text_file)), api_name="/classify")
    finally:
        app.terminate()
        try:
            app.wait(timeout=30)
        except subprocess.TimeoutExpired:
            app.kill()


def start_page(*args: str, cwd: Path, log: Path):
    """`imgclf serve <args>` on a free port: (address once it answers, process)."""
    with open(log, "w") as out:
        process = start_cli(
            "serve", *args, f"port={free_port()}", f"paths.log_dir={cwd / 'logs'}",
            cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    for _ in range(300):
        found = re.search(r"at (http://127\.0\.0\.1:\d+/)", log.read_text())
        if found or process.poll() is not None:
            break
        time.sleep(1)
    assert found, f"no address printed: {log.read_text()[-3000:]}"
    return wait_for_page(found.group(1), process, log), process


def halfway_middle(values: list[float]) -> float:
    """The midpoint of the two middle distinct values: about half the values lie on each
    side, none on it (two images can get the same answer: a photo and its EXIF-rotated
    copy)."""
    ordered = sorted(set(values))
    middle = len(ordered) // 2
    return (ordered[middle - 1] + ordered[middle]) / 2


def test_a_multi_label_run_answers_with_its_tag_set_and_predicts_probabilities(tmp_path):
    """A tiny Planet-style run; its checkpoint's thresholds set per tag to the middle of
    that tag's answers, so that each tag is on for some images and off for others."""
    import torch
    from gradio_client import Client, handle_file
    from test_multilabel import planet_folder

    root = planet_folder(tmp_path / "planet")
    result = run_cli(
        "train", "data=csv", f"data.root={root}", "data.label_delim=' '", "data.suffix=.png",
        "data.image_size=32", "data.batch_size=8", "data.num_workers=0", *TRAIN_ARGS,
        f"paths.log_dir={tmp_path / 'logs'}", f"paths.cache_dir={tmp_path / 'cache'}",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = run_dir_of(result)
    images = [*sorted((root / "test").glob("*.png")), *extra_images(tmp_path / "new")]
    classes, probs = cli_probabilities(run_dir, images, tmp_path, "submission_probs.csv")
    # Halfway between two neighbouring answers, so no answer sits on its threshold (a tie
    # that a 1e-7 difference between the page's and the CLI's float sums would decide).
    thresholds = [halfway_middle([p[i] for p in probs.values()]) for i in range(len(classes))]
    checkpoint = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    checkpoint["imgclf"]["thresholds"] = thresholds
    torch.save(checkpoint, run_dir / "checkpoints" / "tuned.ckpt")

    url, process = start_page(
        f"ckpt={run_dir / 'checkpoints' / 'tuned.ckpt'}", cwd=tmp_path, log=tmp_path / "serve.log"
    )
    try:
        client = Client(url, verbose=False)
        tag_sets = set()
        for path in images:
            bars, table = client.predict([handle_file(str(path))], api_name="/classify")
            expected = dict(zip(classes, probs[path.stem], strict=True))
            got = {c["label"]: c["confidence"] for c in bars["confidences"]}
            assert got == pytest.approx(expected, abs=1e-6), path.name
            on = [c for c, t in zip(classes, thresholds, strict=True) if expected[c] >= t]
            assert sorted(bars["label"].split()) == sorted(on), path.name
            assert [c["label"] for c in bars["confidences"]][: len(on)] == bars["label"].split()
            assert not math.isclose(sum(got.values()), 1.0, abs_tol=1e-3)  # no softmax
            tag_sets.add(bars["label"])
            assert table.splitlines()[0] == "| file | predicted tags | other tags |"
        assert len(tag_sets) > 1  # the thresholds decide: not every image gets the same tags
        page = httpx.get(url, timeout=60).text + httpx.get(f"{url}config", timeout=60).text
        assert (
            "multi-label" in page and "best valid F2" in page and "best valid accuracy" not in page
        )
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_sigterm_ends_the_server_with_its_run_directory(trained, server):
    _, process, log = server
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    last = log.read_text().strip().splitlines()[-1]
    assert Path(last).is_dir() and "/serve/" in last


def test_serve_settings_and_a_missing_checkpoint_are_one_line_errors(trained):
    run_dir, _, tmp, _ = trained
    for args, words in (
        ([f"ckpt={run_dir}", "port=70000"], "port must be a number from 1 to 65535"),
        ([f"ckpt={run_dir}", "max_upload_mb=0"], "max_upload_mb must be a positive number"),
        ([f"ckpt={tmp / 'nothing'}"], "does not exist"),
    ):
        result = run_cli("serve", *args, f"paths.log_dir={tmp / 'logs'}", cwd=tmp)
        assert result.returncode == 2 and words in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr


def test_a_run_whose_images_moved_is_served_without_examples(trained):
    run_dir, _, tmp, images = trained
    log = tmp / "moved.log"
    with open(log, "w") as out:
        process = start_cli(
            "serve", f"ckpt={run_dir}", f"port={free_port()}", f"data.root={tmp / 'moved'}",
            f"paths.log_dir={tmp / 'logs'}", cwd=tmp, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        for _ in range(300):
            if "serving " in log.read_text() or process.poll() is not None:
                break
            time.sleep(1)
        text = log.read_text()
        assert f"warning: no example images (data.root {tmp / 'moved'} is not a folder)" in text
        url = re.search(r"at (http://127\.0\.0\.1:\d+/)", text).group(1)
        from gradio_client import Client, handle_file

        client = Client(wait_for_page(url, process, log), verbose=False)
        bars, _ = client.predict([handle_file(str(images[0]))], api_name="/classify")
        assert len(bars["confidences"]) == 2
    finally:
        process.terminate()
        process.wait(timeout=60)
