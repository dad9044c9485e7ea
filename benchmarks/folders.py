"""Generated image folders for the benchmarks, made once and kept under benchmarks/data/.

Photo-like content matters: JPEG decode time depends on how much detail the file holds, and
random noise compresses (and decodes) nothing like a photo. Each image is a few smooth
colour blobs (low-resolution noise upsampled) plus mild grain, which gives file sizes close
to Dogs-vs-Cats photos at quality 90 (tens of kB for 500x375).
"""

from __future__ import annotations

import json
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

DATA_DIR = Path(__file__).resolve().parent / "data"


def photo_like(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), np.float32)
    grain = rng.normal(0.0, 3.0, (height, width, 1)).astype(np.float32)
    return Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8))


def _write_one(job: tuple[str, int, int, int, str, int]) -> None:
    path, width, height, seed, fmt, quality = job
    image = photo_like(width, height, seed)
    if fmt == "JPEG":
        image.save(path, fmt, quality=quality)
    else:
        image.save(path, fmt)


def make_folder(
    root: Path,
    n_images: int,
    size: tuple[int, int],
    classes: tuple[str, ...] = ("cats", "dogs"),
    ext: str = "jpg",
    quality: int = 90,
    valid_share: float = 0.0,
    processes: int = 2,
) -> Path:
    """root/train/<class>/*.<ext> (and root/valid/... for `valid_share` of the images),
    `n_images` in all, split evenly between the classes. Kept if an identical folder exists."""
    spec = {
        "n_images": n_images,
        "size": list(size),
        "classes": list(classes),
        "ext": ext,
        "quality": quality,
        "valid_share": valid_share,
    }
    marker = root / "complete.json"
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return root
    fmt = "JPEG" if ext in ("jpg", "jpeg") else ext.upper()
    n_valid = round(n_images * valid_share)
    jobs = []
    for index in range(n_images):
        split = "valid" if index < n_valid else "train"
        name = classes[index % len(classes)]
        folder = root / split / name
        folder.mkdir(parents=True, exist_ok=True)
        jobs.append((str(folder / f"{index:06d}.{ext}"), *size, index, fmt, quality))
    with Pool(processes) as pool:
        pool.map(_write_one, jobs, chunksize=64)
    marker.write_text(json.dumps(spec))
    return root


def dogscats_jpegs(n_images: int = 2000, data_dir: Path = DATA_DIR) -> Path:
    """Dogs-vs-Cats-sized photos: 500x375 JPEGs at quality 90."""
    return make_folder(data_dir / f"jpegs-500x375-{n_images}", n_images, (500, 375))


def small_images(n_images: int = 20000, data_dir: Path = DATA_DIR) -> Path:
    """Many small JPEGs (64x48) with a 10% valid split: a large folder that is quick to make."""
    return make_folder(data_dir / f"small-64x48-{n_images}", n_images, (64, 48), valid_share=0.1)
