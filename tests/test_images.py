"""Decoding odd image files to RGB: orientation, transparency, bit depth, colour spaces, size limit."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from imgclf.data.images import ImageTooLarge, decode_jpeg_fast, load_rgb, unreadable_reason


def test_exif_orientation_is_applied_to_the_pixels(tmp_path):
    # Stored 40 wide x 20 high: left half red, right half blue. Orientation 6 means
    # "rotate 90 degrees clockwise to display": then red is on top, blue at the bottom.
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = (255, 0, 0)
    stored[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "rotated.jpg", exif=exif, quality=95)

    pixels = load_rgb(tmp_path / "rotated.jpg").astype(int)
    assert pixels.shape == (40, 20, 3)
    top, bottom = pixels[5, 10], pixels[34, 10]
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


def test_16_bit_png_is_scaled_to_8_bits_not_clipped_to_white(tmp_path):
    levels = np.array([[0, 257 * 64, 257 * 128, 65535]], dtype=np.uint16)
    Image.fromarray(levels).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    pixels = load_rgb(tmp_path / "deep.png")
    assert pixels.dtype == np.uint8 and pixels.shape == (1, 4, 3)
    assert pixels[0, :, 0].tolist() == [0, 64, 128, 255]
    assert (pixels[..., 0] == pixels[..., 2]).all()


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red stays red
    rgba[0, 1] = (0, 0, 0, 0)  # transparent black shows the white background
    rgba[1, 0] = (0, 0, 255, 128)  # half-transparent blue: half blue, half white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    pixels = load_rgb(tmp_path / "rgba.png").astype(int)
    assert pixels[0, 0].tolist() == [255, 0, 0]
    assert pixels[0, 1].tolist() == [255, 255, 255]
    assert pixels[1, 0].tolist() == pytest.approx([127, 127, 255], abs=1)


def test_palette_png_with_a_transparent_colour_is_white_there(tmp_path):
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 0, 255, 0])  # index 0 black, index 1 green
    image.putpixel((1, 0), 1)
    image.save(tmp_path / "palette.png", transparency=0)
    assert load_rgb(tmp_path / "palette.png").tolist() == [[[255, 255, 255], [0, 255, 0]]]


def test_grayscale_and_cmyk_jpegs_become_rgb(tmp_path):
    Image.new("L", (8, 8), 100).save(tmp_path / "gray.jpg", quality=100)
    Image.new("RGB", (8, 8), (200, 100, 50)).convert("CMYK").save(
        tmp_path / "cmyk.jpg", quality=100
    )
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    gray = load_rgb(tmp_path / "gray.jpg").astype(int)
    cmyk = load_rgb(tmp_path / "cmyk.jpg").astype(int)
    assert gray.shape == cmyk.shape == (8, 8, 3)
    assert np.abs(gray - 100).max() <= 1
    assert np.abs(cmyk - [200, 100, 50]).max() <= 2


def huge_png_header(path, width: int, height: int) -> None:
    """A PNG whose header claims width x height pixels (a decompression bomb's first bytes)."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = bytearray(data[12:29])  # chunk type + 13 bytes of IHDR data
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    path.write_bytes(bytes(data))


def test_pixel_limit_at_the_scan_and_at_decode(tmp_path):
    Image.new("RGB", (100, 50)).save(tmp_path / "big.png")
    assert unreadable_reason(tmp_path / "big.png", "header", max_pixels=5000) is None
    reason = unreadable_reason(tmp_path / "big.png", "header", max_pixels=4999)
    assert reason.startswith("too large: 100x50 = 5,000 pixels")
    with pytest.raises(ImageTooLarge):
        load_rgb(tmp_path / "big.png", max_pixels=4999)
    assert load_rgb(tmp_path / "big.png", max_pixels=5000).shape == (50, 100, 3)


def test_decompression_bomb_is_a_reason_not_a_crash(tmp_path):
    bomb = tmp_path / "bomb.png"
    huge_png_header(bomb, 30_000, 30_000)  # 900M pixels, above PIL's own limit
    assert "too large" in unreadable_reason(bomb, "header")
    # Even with our limit off, PIL's decompression-bomb error becomes ImageTooLarge.
    assert "too large" in unreadable_reason(bomb, "header", max_pixels=None)
    with pytest.raises(ImageTooLarge):
        load_rgb(bomb, max_pixels=None)


def test_one_pixel_image_decodes(tmp_path):
    Image.new("RGB", (1, 1), (10, 20, 30)).save(tmp_path / "dot.png")
    assert load_rgb(tmp_path / "dot.png").tolist() == [[[10, 20, 30]]]


def _photo_jpeg(path, width=40, height=30, **save):
    rng = np.random.default_rng(1)
    coarse = Image.fromarray(rng.integers(0, 256, (3, 4, 3), dtype=np.uint8))
    coarse.resize((width, height), Image.BICUBIC).save(path, quality=90, **save)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_fast_jpeg_path_matches_pil_for_every_exif_orientation(tmp_path, orientation):
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    _photo_jpeg(path, exif=exif)
    with Image.open(path) as image:
        assert decode_jpeg_fast(image, path, None) is not None  # OpenCV decoded it
        reference = np.asarray(ImageOps.exif_transpose(image).convert("RGB")).astype(int)
    pixels = load_rgb(path).astype(int)
    assert pixels.shape == reference.shape
    assert np.abs(pixels - reference).mean() < 1.0


def test_truncated_and_cmyk_jpegs_are_left_to_pil(tmp_path):
    path = tmp_path / "photo.jpg"
    _photo_jpeg(path)
    (tmp_path / "cut.jpg").write_bytes(path.read_bytes()[:-200])
    Image.open(path).convert("CMYK").save(tmp_path / "cmyk.jpg")
    for name in ("cut.jpg", "cmyk.jpg"):
        with Image.open(tmp_path / name) as image:
            assert decode_jpeg_fast(image, tmp_path / name, None) is None
    with pytest.raises(OSError, match="truncated"):
        load_rgb(tmp_path / "cut.jpg")
