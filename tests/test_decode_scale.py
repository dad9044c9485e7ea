"""Reduced-scale JPEG decoding (draft mode): only for JPEGs, never below what the
transform needs, and the pixels match a full decode resized to the same size."""

import math

import numpy as np
import pytest
from PIL import Image

from imgclf.data import ImageFileDataset
from imgclf.data.images import load_rgb
from imgclf.data.transforms import eval_transform, min_decode_side, train_transform


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Smooth colour blobs, like a photo's low frequencies."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8))
    return coarse.resize((width, height), Image.BICUBIC)


def test_jpeg_decodes_at_reduced_scale_with_the_same_pixels(tmp_path):
    path = tmp_path / "big.jpg"
    photo(800, 600).save(path, quality=90)
    full = load_rgb(path)
    reduced = load_rgb(path, min_side=250)
    # 1/2 gives 400x300 (both sides >= 250); 1/4 (200x150) would go below it.
    assert full.shape == (600, 800, 3)
    assert reduced.shape == (300, 400, 3)
    reference = np.asarray(Image.fromarray(full).resize((400, 300), Image.BOX), np.float32)
    difference = np.abs(reduced.astype(np.float32) - reference)
    assert difference.mean() < 2.0
    assert np.abs(reduced.mean(axis=(0, 1)) - reference.mean(axis=(0, 1))).max() < 1.0


def test_never_below_min_side(tmp_path):
    path = tmp_path / "big.jpg"
    photo(800, 600).save(path, quality=90)
    for min_side in (50, 76, 150, 151, 300, 301, 599, 1000):
        height, width, _ = load_rgb(path, min_side=min_side).shape
        assert min(height, width) >= min(min_side, 600)
        # and as small as the decoder's 1/2, 1/4, 1/8 steps allow
        assert min(height, width) < 2 * min_side or (height, width) == (600, 800)


@pytest.mark.parametrize("ext", ["png", "bmp", "webp"])
def test_other_formats_decode_at_full_size(tmp_path, ext):
    path = tmp_path / f"big.{ext}"
    photo(400, 300).save(path)
    assert load_rgb(path, min_side=60).shape == (300, 400, 3)


def test_exif_orientation_still_applies(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees
    photo(400, 300).save(path, quality=90, exif=exif)
    assert load_rgb(path).shape == (400, 300, 3)
    assert load_rgb(path, min_side=140).shape == (200, 150, 3)


def test_min_decode_side_keeps_the_smallest_crop_at_full_resolution():
    # smallest crop: min_scale of the area at aspect 3/4 -> short side sqrt(0.35 * 3/4) of the image
    side = min_decode_side(train_transform("side_on", 224, min_scale=0.35))
    assert side == math.ceil(224 / math.sqrt(0.35 * 0.75)) == 438
    assert min_decode_side(train_transform("side_on", 224, min_scale=1.0)) == 259
    assert min_decode_side(eval_transform(224, crop_pct=0.875)) == 256
    assert min_decode_side(train_transform("none", 64)) == 64


def test_dataset_decodes_jpegs_at_the_transform_s_scale(tmp_path):
    path = tmp_path / "big.jpg"
    photo(800, 600).save(path, quality=90)
    transform = train_transform("side_on", 32, min_scale=0.35, seed=0)
    dataset = ImageFileDataset([(path, 0)], transform)
    assert dataset.min_side == math.ceil(32 / math.sqrt(0.35 * 0.75)) == 63
    # 1/8 of 800x600 is 100x75: still >= 63 on both sides
    assert load_rgb(path, min_side=dataset.min_side).shape == (75, 100, 3)
    image, label = dataset[0]
    assert tuple(image.shape) == (3, 32, 32) and label == 0
