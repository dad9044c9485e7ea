"""Small real image folders for the tests (PNG/JPEG files written to disk)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

# One colour per class so a model can learn the folders apart quickly.
CLASS_COLOURS = ((220, 60, 40), (40, 90, 220), (40, 180, 70), (230, 200, 40), (150, 60, 200))


def make_image(colour: Sequence[int], size: int, rng: np.random.Generator) -> Image.Image:
    """A noisy image of one colour with a random darker square: real pixels, easy labels."""
    pixels = np.clip(np.array(colour) + rng.normal(0, 25, (size, size, 3)), 0, 255)
    top, left = rng.integers(0, size // 2, 2)
    pixels[top : top + size // 3, left : left + size // 3] *= 0.4
    return Image.fromarray(pixels.astype(np.uint8))


def make_image_folder(
    root: str | Path,
    classes: Sequence[str] = ("cats", "dogs"),
    n_train: int = 8,
    n_valid: int = 4,
    n_test: int = 0,
    size: int = 48,
    ext: str = "jpg",
    seed: int = 0,
) -> Path:
    """root/train/<class>/*, root/valid/<class>/* (when n_valid) and root/test/* (when n_test)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("valid", n_valid)):
        for index, name in enumerate(classes):
            folder = root / split / name
            for i in range(count):
                folder.mkdir(parents=True, exist_ok=True)
                colour = CLASS_COLOURS[index % len(CLASS_COLOURS)]
                make_image(colour, size, rng).save(folder / f"{name}.{i}.{ext}")
    for i in range(n_test):
        (root / "test").mkdir(parents=True, exist_ok=True)
        colour = CLASS_COLOURS[i % len(classes) % len(CLASS_COLOURS)]
        make_image(colour, size, rng).save(root / "test" / f"{i}.{ext}")
    return root


@dataclass
class MessyFolder:
    """What `make_messy_folder` put where, and what imgclf should do with each file.

    usable:   images that must be trained on / predicted (odd modes, names, sizes)
    skipped:  image-named files the setup scan leaves out (verify=header): path -> why
    corrupt:  pass the header scan but fail to decode (truncated JPEGs): replaced and
              counted when a loader meets them; `verify=full` skips them at setup instead
    ignored:  never candidates (hidden files, unsupported extensions, directory loops)
    max_pixels: the data.max_pixels that makes the `big` images too large
    """

    root: Path
    usable: list[Path] = field(default_factory=list)
    skipped: dict[Path, str] = field(default_factory=dict)
    corrupt: list[Path] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)
    max_pixels: int = 0

    def in_split(self, paths, split: str) -> list[Path]:
        """The paths of `paths` under root/<split>/."""
        return [p for p in paths if p.relative_to(self.root).parts[0] == split]


def _write_odd_images(folder: Path, colour: Sequence[int], rng, big_side: int, messy) -> None:
    """Every odd case of the messy folder, in one folder."""
    base = make_image(colour, 24, rng)

    def usable(name: str, image: Image.Image, **save) -> None:
        image.save(folder / name, **save)
        messy.usable.append(folder / name)

    def skipped(name: str, why: str) -> None:
        messy.skipped[folder / name] = why

    usable("rgba.png", base.convert("RGBA"))
    palette = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    usable("palette.png", palette, transparency=0)
    usable("gray.jpg", base.convert("L"))
    usable("cmyk.jpg", base.convert("CMYK"))
    deep = (np.asarray(base.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    usable("deep16.png", Image.fromarray(deep))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    usable("exif_rotated.jpg", make_image(colour, 24, rng).resize((32, 16)), exif=exif)
    usable("tiny_1x1.png", Image.new("RGB", (1, 1), tuple(colour)))
    usable("ünïcödé café.jpg", make_image(colour, 24, rng))
    usable("with space.png", make_image(colour, 24, rng))

    (folder / "empty.jpg").write_bytes(b"")
    skipped("empty.jpg", "empty file")
    (folder / "text.jpg").write_text("this is a text file, not a JPEG\n")
    skipped("text.jpg", "not an image")
    Image.new("L", (big_side, big_side), 128).save(folder / "big.png")
    skipped("big.png", "too large")
    # A file symlink loop: each name points at the other, neither resolves.
    (folder / "loop_a.jpg").symlink_to("loop_b.jpg")
    (folder / "loop_b.jpg").symlink_to("loop_a.jpg")
    skipped("loop_a.jpg", "Too many levels of symbolic links")
    skipped("loop_b.jpg", "Too many levels of symbolic links")

    jpeg = folder / "truncated.jpg"
    make_image(colour, 48, rng).save(jpeg, quality=95)
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size * 6 // 10])
    messy.corrupt.append(jpeg)

    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "._foo.jpg").write_bytes(b"\0\5\26\7 macOS resource fork")
    base.save(folder / "animation.gif")
    (folder / "notes.txt").write_text("notes")
    # A directory symlink loop: the folder contains a link to itself.
    (folder / "loop_dir").symlink_to(".", target_is_directory=True)
    messy.ignored += [
        folder / n for n in (".DS_Store", "._foo.jpg", "animation.gif", "notes.txt", "loop_dir")
    ]


def make_messy_folder(
    root: str | Path,
    classes: Sequence[str] = ("cats", "dogs"),
    n_train: int = 6,
    n_valid: int = 3,
    n_test: int = 4,
    size: int = 32,
    big_side: int = 200,
    seed: int = 0,
) -> MessyFolder:
    """A dogscats folder full of what real scraped folders hold, next to `n_*` normal
    images per class: in train/<class>/, valid/<class>/ and test/ each, every case of
    `_write_odd_images` (odd modes and names, broken files, hidden files, symlink loops,
    an image of big_side x big_side pixels above `MessyFolder.max_pixels`)."""
    root = Path(root)
    make_image_folder(root, classes, n_train, n_valid, n_test, size=size, seed=seed)
    rng = np.random.default_rng(seed + 1)
    messy = MessyFolder(root=root, max_pixels=big_side * big_side - 1)
    messy.usable += sorted(p for p in root.rglob("*.jpg"))
    folders = [root / split / name for split in ("train", "valid") for name in classes]
    folders.append(root / "test")
    for index, folder in enumerate(folders):
        folder.mkdir(parents=True, exist_ok=True)
        colour = CLASS_COLOURS[index % len(classes) % len(CLASS_COLOURS)]
        _write_odd_images(folder, colour, rng, big_side, messy)
    return messy


def extra_images(folder: Path) -> list[Path]:
    """Files that exercise every preprocessing step: a large JPEG (over 2x the input size:
    libjpeg's reduced-scale decoding, a downscale), a wide PNG (an upscale), a PNG with
    alpha (composited onto white) and a portrait JPEG with EXIF rotation."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    gradient = np.linspace(0, 255, 300)[None, :, None] * np.ones((220, 1, 3))
    big = np.clip(gradient + rng.normal(0, 30, (220, 300, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(big).save(folder / "big.jpg", quality=90)
    small = rng.integers(0, 255, (20, 45, 3), dtype=np.uint8)
    Image.fromarray(small).save(folder / "wide.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    Image.fromarray(big[:120, :90]).save(folder / "rotated.jpg", quality=92, exif=exif)
    alpha = np.concatenate([big[:80, :100], rng.integers(0, 255, (80, 100, 1))], axis=2)
    Image.fromarray(alpha.astype(np.uint8), "RGBA").save(folder / "alpha.png")
    return [folder / name for name in ("big.jpg", "wide.png", "rotated.jpg", "alpha.png")]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def decompression_bomb(path: Path, side: int = 20_000) -> Path:
    """A real greyscale PNG of side x side black pixels: a few hundred kB on disk, side^2
    bytes once decoded (400 MB at 20,000), written row by row without holding the image."""
    row = b"\0" * (side + 1)  # filter byte + pixels
    packer, parts = zlib.compressobj(9), []
    for _ in range(side):
        parts.append(packer.compress(row))
    parts.append(packer.flush())
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    data = (
        png_chunk(b"IHDR", header) + png_chunk(b"IDAT", b"".join(parts)) + png_chunk(b"IEND", b"")
    )
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + data)
    return path


def truncated_jpeg(path: Path) -> Path:
    """A JPEG cut at 60 %: its header reads, its pixels fail to decode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    make_image((40, 120, 200), 48, np.random.default_rng(2)).save(path, quality=95)
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 6 // 10])
    return path


def bad_uploads(folder: Path) -> dict[Path, str]:
    """Files a user may upload that are no usable image -> the words the answer must hold:
    a text file, an empty file, a truncated JPEG and a 20,000 x 20,000 PNG bomb."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("a shopping list, not a photo\n")
    (folder / "empty.jpg").write_bytes(b"")
    jpeg = folder / "truncated.jpg"
    make_image((200, 40, 40), 64, np.random.default_rng(0)).save(jpeg, quality=95)
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    return {
        folder / "notes.txt": "not an image PIL can read",
        folder / "empty.jpg": "empty file",
        jpeg: "truncated",
        decompression_bomb(folder / "bomb.png"): "too large",
    }
