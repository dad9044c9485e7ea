"""RandomCropWarp: random resized crop, flip, rotation and zoom in one resampling."""

import subprocess
import sys

import albumentations as A
import numpy as np
import pytest

from imgclf.data.rng_state import set_transform_rng_state, transform_rng_state
from imgclf.data.warp import RandomCropWarp, sample_crop, warp_matrix


def gradient(width: int, height: int) -> np.ndarray:
    """Red grows left to right, green top to bottom: every pixel says where it came from."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return np.stack([x, y, np.zeros_like(x)], axis=2).round().astype(np.uint8)


def warp(image, crop, size, flip=False, angle=0.0, zoom=1.0):
    import cv2

    matrix = warp_matrix(crop, size, flip, angle, zoom)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR)


def test_crop_without_flip_or_rotation_is_a_plain_resize_of_the_crop():
    image = gradient(200, 100)
    out = warp(image, (50, 20, 100, 60), 50).astype(int)
    reference = A.Resize(50, 50)(image=image[20:80, 50:150])["image"].astype(int)
    assert np.abs(out - reference).max() <= 2


def test_flip_mirrors_the_output_and_rotation_turns_it_about_the_centre():
    image = gradient(100, 100)
    plain = warp(image, (0, 0, 100, 100), 100).astype(int)
    flipped = warp(image, (0, 0, 100, 100), 100, flip=True).astype(int)
    assert np.abs(flipped - plain[:, ::-1]).max() <= 1
    turned = warp(image, (0, 0, 100, 100), 100, angle=90).astype(int)
    # 90 degrees counter-clockwise: the right edge (red 255) is now at the top.
    assert turned[2, 20:80, 0].mean() > 240 and turned[97, 20:80, 0].mean() < 15
    zoomed = warp(image, (0, 0, 100, 100), 100, zoom=2.0).astype(int)
    assert zoomed[:, :, 0].min() > 60 and zoomed[:, :, 0].max() < 195  # the middle half


@pytest.mark.parametrize("scale", [(0.35, 1.0), (1.0, 1.0)])
def test_crops_respect_the_area_share_and_aspect_range(scale):
    import random

    rng = random.Random(0)
    for _ in range(500):
        x0, y0, w, h = sample_crop(500, 375, scale, (3 / 4, 4 / 3), rng)
        assert x0 >= 0 and y0 >= 0 and x0 + w <= 500 + 1e-9 and y0 + h <= 375 + 1e-9
        if scale == (1.0, 1.0):  # no such crop fits at aspect 1: the centre fallback
            assert (w, h) == pytest.approx((500, 375))
        else:
            assert w * h >= 0.35 * 500 * 375 - 1e-6
            assert 3 / 4 - 1e-9 <= w / h <= 4 / 3 + 1e-9


def test_large_images_are_area_averaged_before_the_warp():
    # A 1-pixel checkerboard: a bare bilinear warp from 2000 px to 50 would alias it into
    # stripes; averaging first gives flat grey.
    board = (np.indices((2000, 2000)).sum(0) % 2 * 255).astype(np.uint8)
    image = np.repeat(board[:, :, None], 3, axis=2)
    transform = A.Compose([RandomCropWarp(50, scale=(1.0, 1.0), max_rotate=0, p_affine=0)])
    out = transform(image=image)["image"].astype(int)
    assert out.shape == (50, 50, 3)
    assert np.abs(out - 127.5).max() < 10


def test_seeded_draws_repeat_and_their_state_can_be_restored():
    image = gradient(120, 90)

    def pipeline():
        return A.Compose([RandomCropWarp(32)], seed=3)

    first, second = pipeline(), pipeline()
    a = [first(image=image)["image"] for _ in range(4)]
    b = [second(image=image)["image"] for _ in range(4)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], a[1])
    state = transform_rng_state(first)
    after = first(image=image)["image"]
    set_transform_rng_state(first, state)
    assert np.array_equal(first(image=image)["image"], after)


def test_one_pixel_wide_images_warp_bicubically_to_their_colour():
    # OpenCV's bicubic warpAffine spins forever on a side of one pixel, so this runs in
    # a child process that a timeout can stop.
    code = (
        "import cv2, numpy as np\n"
        "from imgclf.data.warp import RandomCropWarp\n"
        "warp = RandomCropWarp(16, interpolation=cv2.INTER_CUBIC)\n"
        "for shape in [(1, 1, 3), (1, 9, 3), (9, 1, 3)]:\n"
        "    out = warp(image=np.full(shape, 200, np.uint8))['image']\n"
        "    assert out.shape == (16, 16, 3) and (out == 200).all(), shape\n"
    )
    result = subprocess.run([sys.executable, "-c", code], timeout=120, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
