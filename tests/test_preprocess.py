"""One preprocessing path from a file to the model's input: the data loaders (predict,
evaluate), the Python API and export's model.json take the same pixels, reduced-scale JPEG
decode included. (End to end, with a trained run, ONNX and the CLI:
tests/test_trained_run.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imgclf.data import ImageFileDataset
from imgclf.data.images import load_rgb
from imgclf.data.preprocess import decode, eval_pixels, model_transform, preprocess
from imgclf.data.transforms import min_decode_side

CONFIG = {"interpolation": "bicubic", "crop_pct": 0.875}
SIZE = 64  # the resize target is round(64 / 0.875) = 73 px


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A JPEG over 4x the input size (libjpeg's reduced decode applies), a PNG with alpha
    and an EXIF-rotated portrait JPEG."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    big = np.asarray(coarse.resize((400, 300), Image.BICUBIC))
    noisy = np.clip(big + rng.normal(0, 20, big.shape), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(folder / "big.jpg", quality=90)
    alpha = np.concatenate([noisy[:90, :120], rng.integers(0, 256, (90, 120, 1))], axis=2)
    alpha[:10, :10, 3] = 0  # a fully transparent corner
    Image.fromarray(alpha.astype(np.uint8), "RGBA").save(folder / "alpha.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    Image.fromarray(noisy[:200, :160]).save(folder / "rotated.jpg", quality=92, exif=exif)
    return {name: folder / name for name in ("big.jpg", "alpha.png", "rotated.jpg")}


@pytest.mark.parametrize("name", ["big.jpg", "alpha.png", "rotated.jpg"])
def test_the_api_path_and_the_loaders_give_the_same_pixels(images, name):
    transform = model_transform(CONFIG, SIZE)
    dataset = ImageFileDataset([(images[name], 0)], transform)
    loaded, _ = dataset[0]
    direct = preprocess(images[name], transform)
    assert tuple(direct.shape) == (3, SIZE, SIZE)
    np.testing.assert_array_equal(np.asarray(direct), np.asarray(loaded))


def test_a_large_jpeg_is_decoded_at_reduced_scale_on_every_path(images):
    transform = model_transform(CONFIG, SIZE)
    assert min_decode_side(transform) == 73
    # 400x300 -> 1/4 is 100x75, both sides >= 73; a full decode would give other pixels.
    assert decode(images["big.jpg"], min_decode_side(transform)).shape == (75, 100, 3)
    full = transform(image=load_rgb(images["big.jpg"]))["image"]
    assert not np.array_equal(
        np.asarray(full), np.asarray(preprocess(images["big.jpg"], transform))
    )


def test_the_rotated_photo_and_the_alpha_png_are_decoded_by_the_same_rules(images):
    rotated = decode(images["rotated.jpg"], 73)
    # Stored 160 wide and 200 tall, shown upright 200 wide and 160 tall, decoded at 1/2.
    assert rotated.shape == (80, 100, 3)
    pixels = decode(images["alpha.png"], 73)
    assert pixels.shape == (90, 120, 3)  # a PNG: never reduced
    # The fully transparent corner shows the white page behind it.
    assert (pixels[:10, :10] == 255).all() and not (pixels[20:, 20:] == 255).all()


def test_pil_images_and_float_arrays_follow_the_uint8_rule(images):
    transform = model_transform(CONFIG, SIZE)
    with Image.open(images["alpha.png"]) as image:
        rgb = image.convert("RGB")
    as_pil = np.asarray(preprocess(rgb, transform))
    as_float = np.asarray(preprocess(np.asarray(rgb) / 255.0, transform))
    np.testing.assert_array_equal(as_pil, as_float)


@pytest.mark.parametrize("name", ["big.jpg", "alpha.png", "rotated.jpg"])
def test_the_onnx_path_takes_the_same_pixels_without_albumentations(images, name):
    """`eval_pixels` (predict from the cached ONNX file) equals the evaluation transform."""
    direct = np.asarray(preprocess(images[name], model_transform(CONFIG, SIZE)))
    pixels = eval_pixels(images[name], SIZE, CONFIG["interpolation"], CONFIG["crop_pct"])
    assert pixels.shape == (SIZE, SIZE, 3) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels.transpose(2, 0, 1), direct)


def test_the_onnx_predict_path_imports_no_torch():
    """Its modules load in a fresh interpreter without torch, albumentations or timm."""
    import subprocess
    import sys

    modules = ("imgclf.cli", "imgclf.commands.predict", "imgclf.evaluation.onnx_predict")
    code = (
        f"import sys; import {', '.join(modules)}; "
        "print(sorted(m for m in ('torch', 'albumentations', 'timm') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
