"""Real image data sets for the quality benchmark, built from images that packages ship.

No model hub and no data set download: every image comes from a PyPI or Debian package.

| name   | source                                              | kind                          | classes |
|--------|-----------------------------------------------------|-------------------------------|---------|
| digits | scikit-learn's bundled 8x8 handwritten digit scans   | tiny greyscale scans, 64 px   | 10      |
| faces  | scikit-image's `data.lfw_subset()` (LFW crops)       | 25x25 greyscale photo crops   | 2       |
| icons  | Debian's `oxygen-icon-theme`, 48x48 PNGs by folder   | drawn RGBA icons on white     | 6       |

digits takes 100 scans a class of the 1,797 (seeded), icons at most 200 a class, to keep
the benchmark short on 2 CPU cores. Each becomes a dogscats folder with a labelled held-out test split:

    benchmarks/data/quality/<name>/train/<class>/*.png   60 %
    benchmarks/data/quality/<name>/valid/<class>/*.png   20 %
    benchmarks/data/quality/<name>/test/<class>/*.png    20 %  (labelled; for the benchmark)

The split is stratified and seeded, so a rebuild gives the same files. A finished build is
marked by `.complete` and not repeated. Run `python benchmarks/quality_data.py [names]`.

The multi-label set `mosaics` (the demo's 2x2 mosaics of one to four digits, tags = the
digits shown; `imgclf.data.mosaic_demo`) comes as Planet's data do, one image folder and a CSV:

    benchmarks/data/quality/mosaics/train/<id>.png      train and valid images
    benchmarks/data/quality/mosaics/labels.csv          image_name,tags,is_valid
    benchmarks/data/quality/mosaics/test/<id>.png       held-out test images
    benchmarks/data/quality/mosaics/test_labels.csv     image_name,tags

Train, valid and test mosaics are drawn from disjoint thirds of the digit scans (60/20/20 %).

The single-label set `typefaces` comes as Kaggle's dog-breeds competition does, one image
folder of hashed ids and a `labels.csv` of `id,label`: 2-3 random lowercase letters rendered
in one of eight classic typefaces of Debian's `fonts-urw-base35` (the class: the typeface,
any of its weights and slants; the renders jittered as the large sets' are, 64 px), 60 a
class, split 60/20/20 % stratified and seeded:

    benchmarks/data/quality/typefaces/train/<id>.png    train and valid images
    benchmarks/data/quality/typefaces/labels.csv        id,label,is_valid
    benchmarks/data/quality/typefaces/test/<id>.png     held-out test images
    benchmarks/data/quality/typefaces/test_labels.csv   id,label
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent / "data" / "quality"
SPLITS = {"train": 0.6, "valid": 0.2, "test": 0.2}
SEED = 0

OXYGEN = Path("/usr/share/icons/oxygen/base/48x48")
ICON_CLASSES = ("actions", "apps", "devices", "mimetypes", "places", "status")
# actions has 580 icons at 48 px, the others 46..166: capped so no class dwarfs the rest.
ICON_CAP = 200

# scikit-learn ships about 180 scans a digit; 100 each keeps a 2-core run short.
DIGITS_PER_CLASS = 100

# (image id, class name, PIL image)
Sample = tuple[str, str, Image.Image]


def split_of(items: list[tuple[str, str]], seed: int = SEED) -> dict[str, list[tuple[str, str]]]:
    """(id, class) pairs -> stratified, seeded train/valid/test lists by SPLITS."""
    rng = random.Random(seed)
    out: dict[str, list[tuple[str, str]]] = {name: [] for name in SPLITS}
    for label in sorted({c for _, c in items}):
        members = sorted(i for i, c in items if c == label)
        rng.shuffle(members)
        n_valid = round(SPLITS["valid"] * len(members))
        n_test = round(SPLITS["test"] * len(members))
        out["valid"] += [(i, label) for i in members[:n_valid]]
        out["test"] += [(i, label) for i in members[n_valid : n_valid + n_test]]
        out["train"] += [(i, label) for i in members[n_valid + n_test :]]
    return out


def digits_samples(limit: int | None = None) -> Iterator[Sample]:
    """scikit-learn's 1,797 digit scans, 8x8 ink values -> 64x64 dark ink on white."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = random.Random(SEED)
    chosen = []
    for label in range(10):
        members = [i for i, y in enumerate(digits.target.tolist()) if y == label]
        chosen += sorted(rng.sample(members, DIGITS_PER_CLASS))
    for index in sorted(chosen)[:limit]:
        ink = (digits.data[index].reshape(8, 8) * (255.0 / 16.0)).round().astype(np.uint8)
        image = Image.fromarray(255 - ink, mode="L").resize((64, 64), Image.Resampling.BICUBIC)
        yield f"{index:04d}", str(int(digits.target[index])), image


def faces_samples(limit: int | None = None) -> Iterator[Sample]:
    """scikit-image's LFW subset: 100 face crops, then 100 non-face crops, 25x25 floats."""
    from skimage.data import lfw_subset

    images = lfw_subset()
    count = len(images) if limit is None else limit
    for index in range(count):
        # The first half are faces (skimage's docs); interleave when sliced for tests.
        source = index if limit is None else (index // 2 + (index % 2) * len(images) // 2)
        label = "face" if source < len(images) // 2 else "nonface"
        pixels = (images[source] * 255.0).round().clip(0, 255).astype(np.uint8)
        yield f"{source:03d}", label, Image.fromarray(pixels, mode="L")


def ensure_oxygen() -> Path:
    """The oxygen icon theme's 48 px folder; installs the Debian package when running as root."""
    if OXYGEN.is_dir():
        return OXYGEN
    command = ["apt-get", "install", "-y", "--no-install-recommends", "oxygen-icon-theme"]
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("icons: installing the Debian package oxygen-icon-theme (32 MB) ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    if not OXYGEN.is_dir():
        raise SystemExit(
            f"icons: {OXYGEN} not found; install the Debian package first: sudo {' '.join(command)}"
        )
    return OXYGEN


def on_white(image: Image.Image) -> Image.Image:
    """RGBA/LA/palette -> RGB composited onto white (what a viewer shows)."""
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def icons_samples(limit: int | None = None, folder: Path | None = None) -> Iterator[Sample]:
    """Oxygen's 48 px icons by category folder, duplicates (same pixels) dropped."""
    folder = folder or ensure_oxygen()
    rng = random.Random(SEED)
    for label in ICON_CLASSES:
        seen, files = set(), []
        for path in sorted((folder / label).glob("*.png")):
            digest = hashlib.sha1(path.read_bytes()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                files.append(path)
        rng.shuffle(files)
        for path in sorted(files[: limit or ICON_CAP]):
            with Image.open(path) as image:
                yield path.stem, label, on_white(image)


BUILDERS: dict[str, Callable[..., Iterator[Sample]]] = {
    "digits": digits_samples,
    "faces": faces_samples,
    "icons": icons_samples,
}


# The large sets (quality_large.py): 5,000 training images each, trained at 32 px.
LARGE = ("glyphs", "scripts", "themes")
# Sets whose labels come in a CSV: a file id, then its label (typefaces, Kaggle's
# dog-breeds style) or its space-separated tags (mosaics, multi-label as Planet's).
LABELS = ("mosaics", "typefaces")
MULTI_LABEL = ("mosaics",)
SETS = (*BUILDERS, *LARGE, *LABELS)
# The size each set trains at (every system alike); the small sets' originals are 25-64 px.
IMAGE_SIZE = {
    "digits": 64,
    "faces": 64,
    "icons": 64,
    "glyphs": 32,
    "scripts": 32,
    "themes": 32,
    "mosaics": 64,
    "typefaces": 64,
}
# Mosaics per split of the `mosaics` set.
MOSAIC_COUNTS = {"train": 900, "valid": 300, "test": 300}
# How every system reads a LABELS set: imgclf's CsvDataModule settings (data=csv).
CSV_LAYOUT = {
    "labels": "labels.csv",
    "folder": "train",
    "suffix": ".png",
    "valid_column": "is_valid",
}
TAG_DELIM = " "
TEST_LABELS = "test_labels.csv"

# typefaces: class -> the font file name stem of fonts-urw-base35 (every weight and slant).
URW = Path("/usr/share/fonts/opentype/urw-base35")
TYPEFACES = {
    "avantgarde": "URWGothic",
    "bookman": "URWBookman",
    "century": "C059",
    "chancery": "Z003",
    "courier": "NimbusMonoPS",
    "helvetica": "NimbusSans-",
    "palatino": "P052",
    "times": "NimbusRoman",
}
TYPEFACES_PER_CLASS = 60


def csv_layout(multi: bool) -> dict[str, str]:
    """CsvDataModule's settings for a LABELS set: with the tag delimiter when multi-label."""
    return {**CSV_LAYOUT, "label_delim": TAG_DELIM} if multi else dict(CSV_LAYOUT)


def imgclf_data_args(name: str, root: Path) -> list[str]:
    """The `imgclf train` overrides that read set `name` at root: data=folder, or data=csv
    with the CSV layout for a LABELS set."""
    if name not in LABELS:
        return ["data=folder", f"data.root={root}"]
    layout = csv_layout(name in MULTI_LABEL)
    return ["data=csv", f"data.root={root}", *(f"data.{k}='{v}'" for k, v in layout.items())]


def mosaic_splits(counts: dict[str, int], seed: int = SEED) -> dict[str, list]:
    """split -> [(image, sorted tags)]: mosaics of digit scans from disjoint 60/20/20 %
    shares of scikit-learn's 1,797, so no digit scan is in two splits."""
    from sklearn.datasets import load_digits

    from imgclf.data.mosaic_demo import draw_mosaic

    digits = load_digits()
    rng = random.Random(seed)
    indices = list(range(len(digits.target)))
    rng.shuffle(indices)
    n_valid = round(SPLITS["valid"] * len(indices))
    n_test = round(SPLITS["test"] * len(indices))
    pools = {
        "valid": indices[:n_valid],
        "test": indices[n_valid : n_valid + n_test],
        "train": indices[n_valid + n_test :],
    }
    return {
        split: [draw_mosaic(rng, digits.data, digits.target, pools[split]) for _ in range(n)]
        for split, n in counts.items()
    }


def write_mosaics(target: Path, counts: dict[str, int]) -> int:
    """The `mosaics` layout (module docstring) under target; returns the image count."""
    splits = mosaic_splits(counts)
    tables = {
        "train": (target / CSV_LAYOUT["labels"], ["image_name", "tags", "is_valid"]),
        "test": (target / TEST_LABELS, ["image_name", "tags"]),
    }
    rows: dict[str, list] = {"train": [], "test": []}
    for split, mosaics in splits.items():
        folder = "test" if split == "test" else "train"
        (target / folder).mkdir(parents=True, exist_ok=True)
        for number, (image, tags) in enumerate(mosaics):
            name = f"{split[0]}{number:05d}"
            image.save(target / folder / f"{name}{CSV_LAYOUT['suffix']}")
            row = [name, " ".join(tags)]
            rows[folder].append(row if folder == "test" else [*row, split == "valid"])
    for folder, (path, header) in tables.items():
        with open(path, "w", newline="") as handle:
            csv.writer(handle).writerows([header, *rows[folder]])
    return sum(len(m) for m in splits.values())


def baseline_data_args(name: str) -> list[str]:
    """How quality_fastai.py and quality_plain.py read set `name`: `--multi` (tags in a
    CSV), `--csv` (one label a row in a CSV), or nothing (class folders)."""
    if name in MULTI_LABEL:
        return ["--multi"]
    return ["--csv"] if name in LABELS else []


def typeface_fonts() -> dict[str, list[str]]:
    """class -> its font files (every weight and slant) of fonts-urw-base35."""
    from benchmarks.quality_large import FONT_PACKAGES, ensure_packages

    ensure_packages(FONT_PACKAGES, URW / "NimbusSans-Regular.otf")
    return {
        label: sorted(str(p) for p in URW.glob(f"{stem}*.otf")) for label, stem in TYPEFACES.items()
    }


def typeface_samples(
    per_class: int = TYPEFACES_PER_CLASS, fonts: dict[str, list[str]] | None = None
) -> Iterator[Sample]:
    """2-3 random lowercase letters in each typeface (one of its fonts drawn at random),
    jittered as the large sets' renders; ids are hashes that do not give the class away.
    fonts: class -> font files (default: `typeface_fonts()`)."""
    from benchmarks.quality_large import render

    rng = random.Random(SEED)
    for label, files in (fonts or typeface_fonts()).items():
        for index in range(per_class):
            letters = rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.choice((2, 3)))
            ident = hashlib.sha1(f"{label}-{index}".encode()).hexdigest()[:16]
            yield ident, label, render("".join(letters), rng.choice(files), rng)


def write_typefaces(target: Path, per_class: int, fonts: dict | None = None) -> int:
    """The `typefaces` layout (module docstring) under target; returns the image count."""
    samples = {(i, c): image for i, c, image in typeface_samples(per_class, fonts)}
    splits = split_of(list(samples))
    for folder in ("train", "test"):
        (target / folder).mkdir(parents=True, exist_ok=True)
    rows: dict[str, list] = {"train": [], "test": []}
    for split, members in splits.items():
        folder = "test" if split == "test" else "train"
        for ident, label in sorted(members):
            samples[(ident, label)].save(target / folder / f"{ident}{CSV_LAYOUT['suffix']}")
            row = [ident, label]
            rows[folder].append(row if folder == "test" else [*row, split == "valid"])
    tables = {
        "train": (target / CSV_LAYOUT["labels"], ["id", "label", "is_valid"]),
        "test": (target / TEST_LABELS, ["id", "label"]),
    }
    for folder, (path, header) in tables.items():
        with open(path, "w", newline="") as handle:
            csv.writer(handle).writerows([header, *rows[folder]])
    return len(samples)


def read_tags(table: Path) -> list[tuple[str, list[str], bool]]:
    """(image id, labels, is_valid) rows of a LABELS set's CSV: the id in the first column,
    the label or space-separated tags in the second; is_valid False without that column."""
    with open(table, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        valid = header.index("is_valid") if "is_valid" in header else None
        return [
            (row[0], row[1].split(), valid is not None and row[valid] == "True") for row in reader
        ]


def build(name: str, root: Path = ROOT, limit: int | None = None, **kwargs) -> Path:
    """Write data set `name` under root/name once (built in a temp folder, then renamed)."""
    target = root / name
    if (target / ".complete").exists():
        return target
    staging = target.with_name(name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    if name in LARGE:
        from benchmarks import quality_large

        total = quality_large.write(name, staging)
        (staging / ".complete").write_text(f"{name}: {total} images\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        return target
    if name in LABELS:
        if name == "typefaces":
            total = write_typefaces(staging, limit or TYPEFACES_PER_CLASS, **kwargs)
        else:
            counts = MOSAIC_COUNTS if limit is None else dict.fromkeys(MOSAIC_COUNTS, limit)
            total = write_mosaics(staging, counts)
        (staging / ".complete").write_text(f"{name}: {total} images\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        return target
    samples = {(i, c): image for i, c, image in BUILDERS[name](limit, **kwargs)}
    for split, members in split_of(list(samples)).items():
        for ident, label in members:
            folder = staging / split / label
            folder.mkdir(parents=True, exist_ok=True)
            samples[(ident, label)].save(folder / f"{ident}.png")
    (staging / ".complete").write_text(f"{name}: {len(samples)} images\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def counts(root: Path) -> dict[str, int]:
    """Images per split of a built data set."""
    if (root / TEST_LABELS).exists():
        rows = read_tags(root / CSV_LAYOUT["labels"])
        valid = sum(1 for *_, is_valid in rows if is_valid)
        return {
            "train": len(rows) - valid,
            "valid": valid,
            "test": len(read_tags(root / TEST_LABELS)),
        }
    return {s: sum(1 for _ in (root / s).glob("*/*.png")) for s in SPLITS}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"default: all of {', '.join(SETS)}")
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    for name in args.names or list(SETS):
        if name not in SETS:
            parser.error(f"unknown data set {name!r}; choose from {', '.join(SETS)}")
        path = build(name, args.root)
        print(name, path, counts(path))


if __name__ == "__main__":
    # Run as a script: the large sets import `benchmarks.quality_large` from the checkout.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
