"""The README's "Your own folder in five minutes", timed as a newcomer runs it, on two folders
of real files that nobody here tuned on:

  icons   small originals: the Oxygen icon theme's 48 px PNGs (alpha), six category
          folders (actions, apps, devices, mimetypes, places, status), as the Debian
          package `oxygen-icon-theme` installs them
  photos  photo-sized JPEGs: 800x600 crops cut from the MATE desktop's wallpapers (the
          Debian package `mate-backgrounds`, 2,000 to 5,600 px originals), two folders:
          `nature` (its 12 photographs) and `rendered` (its abstract and desktop
          artwork); the valid/ folder holds the crops of two sources per class that train/
          never sees

For each it runs the walkthrough's command,

    imgclf train data=folder data.root=<folder> data.per_class=50 recipe=fine_tune

and records the wall time from the command to its closing block, the closing block itself
(what the README shows) and the chosen image size, in benchmarks/results-walkthrough.json
and .md. Goal: under five minutes on 2 idle cores.

    python benchmarks/walkthrough.py                 # both folders
    python benchmarks/walkthrough.py --sets photos
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import quality_data  # noqa: E402
from benchmarks.runs import check, imgclf_command, run_measured  # noqa: E402

DATA = HERE / "data" / "walkthrough"
GOAL_SECONDS = 300.0
COMMAND = ("train", "data=folder", "data.per_class=50", "recipe=fine_tune")
MATE = Path("usr/share/backgrounds/mate")
PHOTO_SIZE = (800, 600)
CROPS_PER_SOURCE = 5
HELD_OUT_SOURCES = 2


def build_icons(target: Path) -> Path:
    """The Oxygen 48 px icons, as installed, one folder per category under train/."""
    source = quality_data.ensure_oxygen()
    for label in quality_data.ICON_CLASSES:
        folder = target / "train" / label
        folder.mkdir(parents=True, exist_ok=True)
        for path in sorted((source / label).glob("*.png")):
            shutil.copy(path, folder / path.name)
    return target


def mate_backgrounds() -> Path:
    """The files of the Debian package mate-backgrounds, unpacked into a temporary folder
    (`apt-get download` and `dpkg -x`: no installation, no root needed)."""
    unpacked = Path(tempfile.mkdtemp(prefix="mate-backgrounds-"))
    subprocess.run(["apt-get", "download", "mate-backgrounds"], cwd=unpacked, check=True)
    package = next(unpacked.glob("mate-backgrounds_*.deb"))
    subprocess.run(["dpkg", "-x", str(package), str(unpacked)], check=True)
    return unpacked / MATE


def photo_crops(path: Path, count: int, rng: random.Random):
    """`count` random 4:3 crops of at least half the short side, resized to PHOTO_SIZE."""
    from PIL import Image

    with Image.open(path) as opened:
        image = opened.convert("RGB")
    width, height = image.size
    for _ in range(count):
        crop_height = rng.randint(min(height, width * 3 // 4) // 2, min(height, width * 3 // 4))
        crop_width = crop_height * 4 // 3
        left, top = rng.randint(0, width - crop_width), rng.randint(0, height - crop_height)
        box = (left, top, left + crop_width, top + crop_height)
        yield image.crop(box).resize(PHOTO_SIZE, Image.Resampling.LANCZOS)


def build_photos(target: Path, seed: int = 0) -> Path:
    """nature/ and rendered/ crops of the MATE wallpapers; HELD_OUT_SOURCES sources of each
    class go to valid/ only. Of the same picture in several resolutions one is kept."""
    mate = mate_backgrounds()
    sources = {
        "nature": sorted((mate / "nature").glob("*.jpg")),
        "rendered": sorted(
            path
            for folder in ("abstract", "desktop")
            for path in (mate / folder).iterdir()
            if path.suffix in (".jpg", ".png") and not re.search(r"_\d+x\d+$", path.stem)
        ),
    }
    rng = random.Random(seed)
    for label, paths in sources.items():
        held_out = set(rng.sample(paths, HELD_OUT_SOURCES))
        for path in paths:
            split = "valid" if path in held_out else "train"
            folder = target / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i, crop in enumerate(photo_crops(path, CROPS_PER_SOURCE, rng)):
                crop.save(folder / f"{path.stem}_{i}.jpg", quality=90)
    shutil.rmtree(mate.parents[3], ignore_errors=True)
    return target


BUILDERS = {"icons": build_icons, "photos": build_photos}


def closing_block(stdout: str) -> list[str]:
    """The command's last lines from its result on (`best valid ...` to the run directory)."""
    lines = stdout.strip().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("best valid")), 0)
    return lines[start:]


def walkthrough(name: str, workdir: Path) -> dict:
    root = DATA / name
    if not root.is_dir():
        BUILDERS[name](root)
    files = sum(1 for path in root.rglob("*") if path.is_file())
    command = imgclf_command(*COMMAND, f"data.root={root}", f"paths.log_dir={workdir / 'logs'}")
    result = check(run_measured(command, cwd=workdir), f"the walkthrough on {name}")
    run_dir = Path(result["stdout"].strip().splitlines()[-1])
    console = result["stdout"].replace(f"{workdir}/", "")
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "folder": str(root.relative_to(ROOT)),
        "files": files,
        "command": "imgclf " + " ".join(COMMAND) + f" data.root={root.relative_to(ROOT)}",
        "wall_seconds": result["wall_seconds"],
        "goal_met": result["wall_seconds"] < GOAL_SECONDS,
        "image_size": summary.get("image_size"),
        "image_size_auto": summary.get("image_size_auto"),
        "best_valid_acc": summary.get("best_valid_acc"),
        # Paths as the README shows them: relative to where the command ran.
        "console": console.splitlines(),
        "closing_block": closing_block(console),
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def markdown(results: dict) -> str:
    lines = [
        "# The five-minute walkthrough",
        "",
        "`python benchmarks/walkthrough.py`: the README's first command on a folder of its "
        "own, timed from the command to its closing block on this machine "
        f"({results['machine']}). Goal: under {GOAL_SECONDS / 60:.0f} minutes.",
        "",
        "| folder | files | image size | best valid acc | wall time | goal |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results["sets"].items():
        lines.append(
            f"| {name} (`{r['folder']}`) | {r['files']} | {r['image_size']} px "
            f"| {r['best_valid_acc']:.4f} | {r['wall_seconds']:.0f} s "
            f"| {'yes' if r['goal_met'] else 'NO'} |"
        )
    for name, r in results["sets"].items():
        lines += ["", f"## {name}", "", f"`{r['command']}` ({r['measured']}):", "", "```"]
        lines += [*r["closing_block"], "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(BUILDERS))
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    results = {"machine": machine, "sets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets.split(","):
            print(f"{name}: ...", flush=True)
            results["sets"][name] = walkthrough(name, Path(tmp))
            r = results["sets"][name]
            print(f"{name}: {r['wall_seconds']:.0f} s, valid acc {r['best_valid_acc']:.4f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results-walkthrough.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "results-walkthrough.md").write_text(markdown(results))
    return results


if __name__ == "__main__":
    main()
