"""`imgclf serve`: one-image latency of the page's HTTP API against the bare model call in
this process (the same decoding, eval transform and model: `FileClassifier.classify`), and
20 concurrent clients sending 10 images each, answers checked, server memory per round.

    python benchmarks/serve.py [--run logs/train/<run>] [--rounds 40] [--clients 20]

Without --run: the newest run under logs/train (`make train`). Writes
benchmarks/results-serve.json and results-serve.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.timing import machine_info  # noqa: E402


def newest_run(root: Path = Path("logs/train")) -> Path:
    runs = sorted(p.parent for p in root.glob("*/checkpoints"))
    if not runs:
        sys.exit("error: no trained run in logs/train: run make train, or pass --run")
    return runs[-1]


def start_server(run: Path, workdir: Path) -> tuple[subprocess.Popen, str, Path]:
    """`imgclf serve` on the run, on a free port; (process, address, log)."""
    log = workdir / "serve.log"
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "imgclf.cli", "serve", f"ckpt={run}", f"port={port}"]
    command.append(f"paths.log_dir={workdir / 'logs'}")
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    for _ in range(600):
        found = re.search(r"at (http://\S+/)", log.read_text())
        if found:
            return process, found.group(1), log
        if process.poll() is not None:
            break
        time.sleep(0.5)
    process.kill()
    sys.exit(f"error: imgclf serve did not start: {log.read_text()[-2000:]}")


def bare_classifier(run: Path):
    """The model and eval transform `imgclf serve` builds, in this process."""
    import imgclf
    from imgclf.data.transforms import eval_transform
    from imgclf.serving.classify import FileClassifier

    trained = imgclf.load(run)
    config = trained.model.data_config
    transform = eval_transform(trained.image_size, config["interpolation"], config["crop_pct"])
    return FileClassifier(trained.model, transform, trained.classes)


def http_call(http, path: Path) -> dict:
    """The page's API by plain HTTP: upload the file, then one POST to the event."""
    with open(path, "rb") as f:
        uploaded = http.post("/gradio_api/upload", files={"files": f}).json()[0]
    data = {"data": [[{"path": uploaded, "meta": {"_type": "gradio.FileData"}}]]}
    answer = http.post("/gradio_api/run/classify", json=data)
    answer.raise_for_status()
    return answer.json()["data"][0]


def latency(bare, url: str, images: list[Path], rounds: int) -> dict:
    """Milliseconds per one-image call: the bare call, the API by plain HTTP, and the API
    through gradio_client, taking turns."""
    import httpx
    from gradio_client import Client, handle_file

    http, client = httpx.Client(base_url=url.rstrip("/")), Client(url, verbose=False)
    calls = {
        "bare": lambda path: bare.classify(path),
        "http": lambda path: http_call(http, path),
        "gradio_client": lambda path: client.predict(
            [handle_file(str(path))], api_name="/classify"
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(rounds + 2):  # the first two of each: warm-up
        for name, call in calls.items():
            started = time.perf_counter()
            call(images[i % len(images)])
            times[name].append((time.perf_counter() - started) * 1000)
    medians = {f"{name}_ms_median": statistics.median(t[2:]) for name, t in times.items()}
    return {
        "rounds": rounds,
        **medians,
        "added_ms_median": medians["http_ms_median"] - medians["bare_ms_median"],
        **{f"{name}_ms": t[2:] for name, t in times.items()},
    }


def one_client(url: str, images: list[Path], expected: dict, client=None) -> int:
    """Send every image once (through `client`, else a new client: a new session); the
    number of answers that differ from the bare call."""
    from gradio_client import Client, handle_file

    client = client or Client(url, verbose=False)
    wrong = 0
    for path in images:
        bars, _ = client.predict([handle_file(str(path))], api_name="/classify")
        got = {c["label"]: c["confidence"] for c in bars["confidences"]}
        want = expected[path.name]
        # The page shows the top classes only (all of them for a run of few classes).
        top = sorted(want, key=want.get, reverse=True)[: len(got)]
        wrong += set(got) != set(top) or any(abs(got[k] - want[k]) > 1e-6 for k in got)
    return wrong


def concurrency(
    url: str,
    process,
    images: list[Path],
    expected: dict,
    clients: int,
    rounds: int,
    same_clients: bool = False,
):
    """`clients` threads, each with its own client sending every image; per round: seconds,
    wrong answers and the server's resident memory (MB) afterwards. New clients every
    round (new sessions, as new visitors), or with `same_clients` the same ones (the same
    visitors coming back)."""
    from gradio_client import Client

    server = psutil.Process(process.pid)
    kept = [Client(url, verbose=False) for _ in range(clients)] if same_clients else None
    records = []
    for _ in range(rounds):
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            wrong = sum(
                pool.map(
                    lambda i: one_client(url, images, expected, kept[i] if kept else None),
                    range(clients),
                )
            )
        records.append(
            {
                "seconds": round(time.perf_counter() - started, 2),
                "answers": clients * len(images),
                "wrong": wrong,
                "server_rss_mb": round(server.memory_info().rss / 2**20, 1),
            }
        )
        print(f"  round {len(records)}: {records[-1]}", flush=True)
    return records


def make_images(folder: Path, count: int) -> list[Path]:
    """`count` photo-like JPEGs of different sizes (decoding and resizing are part of it)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        height, width = 240 + 20 * i, 320 + 10 * i
        gradient = np.linspace(0, 255, width)[None, :, None] * np.ones((height, 1, 3))
        pixels = np.clip(gradient + rng.normal(0, 30, (height, width, 3)), 0, 255)
        paths.append(folder / f"photo{i}.jpg")
        Image.fromarray(pixels.astype(np.uint8)).save(paths[-1], quality=90)
    return paths


def markdown(results: dict) -> str:
    lat, rounds = results["latency"], results["concurrency"]
    lines = [
        "# `imgclf serve` latency and concurrency",
        "",
        f"Run `{results['run']}` ({results['image_size']} px), {results['machine']['cpu']}, "
        f"{results['machine']['usable_cores']} usable cores. `python benchmarks/serve.py`.",
        *load_lines(results),
        "",
        "| one image | median ms |",
        "|---|---|",
        f"| bare call in-process (decode, eval transform, model) | {lat['bare_ms_median']:.1f} |",
        f"| the page's HTTP API (upload + one POST) | {lat['http_ms_median']:.1f} |",
        f"| added by the page (HTTP API - bare) | {lat['added_ms_median']:.1f} |",
        f"| the API through gradio_client | {lat['gradio_client_ms_median']:.1f} |",
        "",
        f"{results['clients']} clients x {results['images']} images at once, per round "
        f"({'the same clients every round' if results.get('same_clients') else 'new clients every round'}):",
        "",
        "| round | seconds | answers | wrong | server RSS MB | change MB |",
        "|---|---|---|---|---|---|",
        *(
            f"| {i + 1} | {r['seconds']} | {r['answers']} | {r['wrong']} | {r['server_rss_mb']} "
            f"| {change} |"
            for i, (r, change) in enumerate(zip(rounds, rss_changes(rounds), strict=True))
        ),
        "",
    ]
    return "\n".join(lines)


def load_lines(results: dict) -> list[str]:
    """The machine's load average (1 minute) before and after, and any note on the run."""
    lines, before = [], results["machine"].get("load_average")
    if before and results.get("load_average_end"):
        after = results["load_average_end"][0]
        lines.append(
            f"Load average (1 minute) {before[0]:.1f} at the start, {after:.1f} at the end."
        )
    elif before:
        lines.append(f"Load average (1 minute) {before[0]:.1f} at the start.")
    if results.get("note"):
        lines.append(results["note"])
    return ["", *lines] if lines else []


def rss_changes(rounds: list[dict]) -> list[str]:
    """The server's memory change since the round before ("" for the first)."""
    rss = [r["server_rss_mb"] for r in rounds]
    return ["", *(f"{b - a:+.1f}" for a, b in pairwise(rss))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--concurrent-rounds", type=int, default=6)
    parser.add_argument(
        "--same-clients",
        action="store_true",
        help="the same clients (sessions) every round; default: new ones every round",
    )
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    run = (args.run or newest_run()).resolve()
    machine = machine_info()  # with the load average before the benchmark adds its own
    with tempfile.TemporaryDirectory() as tmp:
        images = make_images(Path(tmp) / "images", args.images)
        process, url, _ = start_server(run, Path(tmp))
        try:
            bare = bare_classifier(run)
            expected = {p.name: named(bare, p) for p in images}
            print(f"latency, {args.rounds} rounds against {url}", flush=True)
            measured = latency(bare, url, images, args.rounds)
            print(f"concurrency: {args.clients} clients x {args.images} images", flush=True)
            rounds = concurrency(
                url,
                process,
                images,
                expected,
                args.clients,
                args.concurrent_rounds,
                args.same_clients,
            )
        finally:
            process.terminate()
            process.wait(timeout=60)
    results = {
        "run": str(run),
        "image_size": bare_image_size(run),
        "machine": machine,
        "latency": measured,
        "clients": args.clients,
        "same_clients": args.same_clients,
        "images": args.images,
        "concurrency": rounds,
        "load_average_end": os.getloadavg(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results-serve.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "results-serve.md").write_text(markdown(results))
    print(markdown(results))


def named(bare, path: Path) -> dict[str, float]:
    return dict(zip(bare.classes, bare.classify(path).probs.tolist(), strict=True))


def bare_image_size(run: Path) -> int:
    import imgclf

    return imgclf.load(run).image_size


if __name__ == "__main__":
    main()
