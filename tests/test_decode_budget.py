"""The decode budget: an image is refused before any pixel is decoded when its decode would
hold more bytes (pixels x channels x bytes per sample, as the file stores them) than an
8-bit RGB image of data.max_pixels."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from helpers.folders import make_image_folder
from PIL import Image

from imgclf.data import FolderDataModule
from imgclf.data.images import DEFAULT_MAX_PIXELS, decode_bytes, unreadable_reason


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_black_png(path: Path, width: int, height: int, bit_depth: int, colour_type: int):
    """A valid, black PNG written row by row (a 10,000 x 10,000 16-bit RGB one is 2.6 MB on
    disk and never 600 MB in memory): the decompression bomb of a real folder."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    row = b"\x00" * (1 + width * channels * bit_depth // 8)  # filter byte, then samples
    compressor = zlib.compressobj(1)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
    path.write_bytes(png + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def rgb16_bomb(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bomb")
    return write_black_png(folder / "bomb.png", 10_000, 10_000, bit_depth=16, colour_type=2)


def test_a_16_bit_rgb_png_at_the_pixel_limit_is_refused_for_its_bytes(rgb16_bomb):
    # 100,000,000 pixels: not above the default limit, but 600 MB to decode, twice an 8-bit
    # RGB photo of that size (PIL opens it as 8-bit "RGB": the file's depth must be read).
    with Image.open(rgb16_bomb) as image:
        assert (image.mode, image.size) == ("RGB", (10_000, 10_000))
        assert decode_bytes(image) == 10_000 * 10_000 * 3 * 2
    assert unreadable_reason(rgb16_bomb, "header") == (
        "too large: 10000x10000 RGB 16-bit needs 0.60 GB to decode, above the 0.30 GB of "
        f"data.max_pixels {DEFAULT_MAX_PIXELS:,} RGB pixels"
    )


@pytest.mark.parametrize(
    ("bit_depth", "colour_type", "refused"),
    [
        (8, 2, False),  # 8-bit RGB: exactly the budget
        (16, 2, True),  # 16-bit RGB: twice it
        (8, 6, True),  # 8-bit RGBA: four channels
        (16, 0, True),  # 16-bit grey: a 4-byte working copy
        (8, 0, False),  # 8-bit grey
        (16, 4, True),  # 16-bit grey + alpha
    ],
)
def test_the_budget_counts_channels_and_bytes_of_every_mode(
    bit_depth, colour_type, refused, tmp_path
):
    path = write_black_png(tmp_path / "x.png", 100, 100, bit_depth, colour_type)
    reason = unreadable_reason(path, "header", max_pixels=100 * 100)
    assert (reason is not None) == refused, reason
    if refused:
        assert reason.startswith("too large: 100x100 ")


def test_a_folder_with_the_bomb_skips_it_and_counts_it(rgb16_bomb, tmp_path):
    root = make_image_folder(tmp_path / "pets", n_train=3, n_valid=1, size=32)
    bomb = root / "train" / "cats" / "bomb.png"
    bomb.write_bytes(rgb16_bomb.read_bytes())
    datamodule = FolderDataModule(root, num_workers=0)
    with pytest.warns(UserWarning):
        datamodule.setup("fit")
    assert [(path, reason.split(" needs")[0]) for path, reason in datamodule.skipped] == [
        (bomb, "too large: 10000x10000 RGB 16-bit")
    ]
    assert bomb not in [path for path, _ in datamodule.train_items]
