"""The quality benchmark's large sets: thousands of images each, built from Debian packages.

Small sets (at most 600 training images, 20 optimizer steps an epoch) cannot show a
divergence that needs 100+ steps at the peak learning rate; these three can (5,000
training images, 78 steps an epoch at batch 64). Classes are of look, never of use, and
the split keeps what the classes do not depend on (a font, an icon's subject) apart, so the
test measures what a new font or a new icon would get.

| name    | source (Debian packages)                        | classes                          |
|---------|-------------------------------------------------|----------------------------------|
| glyphs  | every installed font with Latin letters (fonts-noto-core, -texgyre, -urw-base35, -freefont-ttf, -liberation2, -dejavu-core, -crosextra-carlito, -cantarell) | the letter (a..z), 26; split by font |
| scripts | Noto Sans and Serif fonts of ten writing systems | the writing system of a 2-3 letter string, 10 |
| themes  | 48 px PNG icons of five icon themes (gnome, mate, lxde's nuoveXT2, elementary-xfce, oxygen) | the theme (the drawing style), 5; split by icon name |

Each set holds 5,000 training, 1,000 validation and 1,000 test images (seeded), trained at
32 px. Renders are jittered (size, offset, slight rotation) and drawn dark on light or light
on dark, so no class owns a colour or a position.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SEED = 0
TRAIN, VALID, TEST = 5000, 1000, 1000
RENDER_SIZE = 64

FONT_PACKAGES = (
    "fonts-noto-core",
    "fonts-texgyre",
    "fonts-urw-base35",
    "fonts-freefont-ttf",
    "fonts-liberation2",
    "fonts-dejavu-core",
    "fonts-crosextra-carlito",
    "fonts-cantarell",
)
THEME_PACKAGES = (
    "gnome-icon-theme",
    "mate-icon-theme",
    "lxde-icon-theme",
    "elementary-xfce-icon-theme",
    "oxygen-icon-theme",
)
THEMES = {
    "gnome": "/usr/share/icons/gnome",
    "mate": "/usr/share/icons/mate",
    "nuoveXT2": "/usr/share/icons/nuoveXT2",
    "elementary": "/usr/share/icons/elementary-xfce",
    "oxygen": "/usr/share/icons/oxygen",
}
# Noto font name stems per writing system (Sans and Serif, each Regular and Bold).
SCRIPTS = {
    "arabic": ("NotoSansArabic", "NotoNaskhArabic", "NotoKufiArabic"),
    "armenian": ("NotoSansArmenian", "NotoSerifArmenian"),
    "devanagari": ("NotoSansDevanagari", "NotoSerifDevanagari"),
    "ethiopic": ("NotoSansEthiopic", "NotoSerifEthiopic"),
    "georgian": ("NotoSansGeorgian", "NotoSerifGeorgian"),
    "hebrew": ("NotoSansHebrew", "NotoSerifHebrew", "NotoRashiHebrew"),
    "khmer": ("NotoSansKhmer", "NotoSerifKhmer"),
    "sinhala": ("NotoSansSinhala", "NotoSerifSinhala"),
    "tamil": ("NotoSansTamil", "NotoSerifTamil"),
    "thai": ("NotoSansThai", "NotoSerifThai", "NotoLoopedThai"),
}
NOTO = Path("/usr/share/fonts/truetype/noto")

# (image id, class name, group the split keeps together, PIL image)
Sample = tuple[str, str, str, Image.Image]


def ensure_packages(packages: tuple[str, ...], probe: Path) -> None:
    """Install the Debian packages when `probe` is missing (as root), else say how."""
    if probe.exists():
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    if shutil.which("apt-get") and os.geteuid() == 0:
        print(f"installing the Debian packages {' '.join(packages)} ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    if not probe.exists():
        raise SystemExit(f"{probe} not found; install first: sudo {' '.join(command)}")


def render(text: str, font_path: str, rng: random.Random) -> Image.Image:
    """`text` drawn with the font at a jittered size, offset and angle, on a plain ground."""
    dark_on_light = rng.random() < 0.5
    ink, ground = (
        ((20, 20, 20), (235, 235, 235)) if dark_on_light else ((235, 235, 235), (30, 30, 30))
    )
    size = RENDER_SIZE
    font = ImageFont.truetype(
        font_path, int(size * rng.uniform(0.45, 0.7) / max(1, len(text)) ** 0.5)
    )
    canvas = Image.new("RGB", (size * 2, size * 2), ground)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = size - (left + right) / 2 + rng.uniform(-0.1, 0.1) * size
    y = size - (top + bottom) / 2 + rng.uniform(-0.1, 0.1) * size
    draw.text((x, y), text, font=font, fill=ink)
    canvas = canvas.rotate(
        rng.uniform(-10, 10), resample=Image.Resampling.BICUBIC, fillcolor=ground
    )
    return canvas.crop((size // 2, size // 2, size * 3 // 2, size * 3 // 2))


def latin_fonts() -> list[str]:
    """Installed font files that hold every lowercase Latin letter, one per file."""
    from fontTools.ttLib import TTFont

    ensure_packages(FONT_PACKAGES, NOTO / "NotoSans-Regular.ttf")
    found = []
    for path in sorted(Path("/usr/share/fonts").rglob("*")):
        if path.suffix.lower() not in (".ttf", ".otf"):
            continue
        try:
            cmap = TTFont(path, lazy=True).getBestCmap() or {}
        except Exception:  # a font fontTools cannot read is not one of ours
            continue
        if all(ord(c) in cmap for c in "abcdefghijklmnopqrstuvwxyz"):
            found.append(str(path))
    return found


def glyphs_samples() -> Iterator[Sample]:
    """Each lowercase letter in each Latin font, three times (jittered renders)."""
    rng = random.Random(SEED)
    for font in latin_fonts():
        stem = Path(font).stem
        for letter in "abcdefghijklmnopqrstuvwxyz":
            for k in range(3):
                yield f"{stem}-{k}", letter, stem, render(letter, font, rng)


def script_letters(font_path: str, script: str) -> list[str]:
    """Letters of `script` that the font can draw (Unicode name starts with the script)."""
    from fontTools.ttLib import TTFont

    cmap = TTFont(font_path, lazy=True).getBestCmap() or {}
    prefix = script.upper()
    return [
        chr(code)
        for code in sorted(cmap)
        if unicodedata.category(chr(code)).startswith("L")
        and unicodedata.name(chr(code), "").startswith(prefix)
    ]


def scripts_samples(per_class: int = 720) -> Iterator[Sample]:
    """Random 2-3 letter strings of ten writing systems, in their Noto fonts."""
    ensure_packages(FONT_PACKAGES, NOTO / "NotoSans-Regular.ttf")
    rng = random.Random(SEED)
    for script, stems in SCRIPTS.items():
        fonts = sorted(str(p) for stem in stems for p in NOTO.glob(f"{stem}-*.ttf"))
        letters = {font: script_letters(font, script) for font in fonts}
        fonts = [font for font in fonts if len(letters[font]) >= 10]
        for index in range(per_class):
            font = fonts[index % len(fonts)]
            text = "".join(rng.choice(letters[font]) for _ in range(rng.choice((2, 3))))
            yield f"{script}-{index:04d}", script, f"{script}-{index:04d}", render(text, font, rng)


def themes_samples() -> Iterator[Sample]:
    """32 and 48 px PNG icons of each theme (one per name and size), on white; an icon's
    name is its group, so one subject never sits in two splits."""
    from benchmarks.quality_data import on_white

    ensure_packages(THEME_PACKAGES, Path(THEMES["mate"]) / "48x48")
    for theme, folder in THEMES.items():
        seen = set()
        for path in sorted(Path(folder).rglob("*.png")):
            size = next((p[:2] for p in path.parts if p in ("32", "32x32", "48", "48x48")), None)
            if size is None or (path.stem, size) in seen:
                continue
            seen.add((path.stem, size))
            with Image.open(path) as image:
                yield f"{path.stem}-{size}", theme, path.stem, on_white(image)


def split_groups(samples: list[Sample], seed: int = SEED) -> dict[str, list[Sample]]:
    """Seeded train/valid/test of TRAIN/VALID/TEST samples; a group stays in one split."""
    rng = random.Random(seed)
    groups = sorted({group for _, _, group, _ in samples})
    rng.shuffle(groups)
    share = len(samples) / max(1, len(groups))
    # Enough groups for VALID (TEST) samples, but never more than 15 % of them each.
    n_valid = min(round(VALID / share * 1.05), int(0.15 * len(groups)))
    n_test = min(round(TEST / share * 1.05), int(0.15 * len(groups)))
    split_of = {g: "valid" for g in groups[:n_valid]}
    split_of.update({g: "test" for g in groups[n_valid : n_valid + n_test]})
    out: dict[str, list[Sample]] = {"train": [], "valid": [], "test": []}
    for sample in samples:
        out[split_of.get(sample[2], "train")].append(sample)
    for name, cap in (("train", TRAIN), ("valid", VALID), ("test", TEST)):
        rng.shuffle(out[name])
        out[name] = sorted(out[name][:cap], key=lambda s: (s[1], s[0]))
    return out


BUILDERS = {"glyphs": glyphs_samples, "scripts": scripts_samples, "themes": themes_samples}


def write(name: str, staging: Path) -> int:
    """Build set `name` into `staging`/{train,valid,test}/<class>/<id>.png; returns its size."""
    splits = split_groups(list(BUILDERS[name]()))
    total = 0
    for split, members in splits.items():
        used: set[Path] = set()
        for ident, label, _, image in members:
            folder = staging / split / label
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{ident}.png"
            suffix = 1
            while path in used:  # the same icon name twice in a theme's other folders
                path = folder / f"{ident}_{suffix}.png"
                suffix += 1
            used.add(path)
            image.save(path)
            total += 1
    return total
