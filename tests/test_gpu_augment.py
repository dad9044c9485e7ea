"""The device pipeline (data.decode=gpu), checked on the CPU: its warp is OpenCV's warp, its
random draws are RandomCropWarp's, and the data module's train loader hands out batches
that become uint8 images on whatever device they are moved to."""

import random

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.folders import make_image_folder
from PIL import Image

from imgclf.data import FolderDataModule
from imgclf.data.gpu_augment import (
    DeviceBatch,
    EncodedImageDataset,
    WarpSampler,
    jpeg_for_device,
    lighting,
    pixel_to_theta,
    reflect_101,
    shrink_first,
    to_uint8,
    warp_images,
)
from imgclf.data.warp import RandomCropWarp, warp_matrix
from imgclf.errors import UserError


def smooth_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A photo-like smooth HxWx3 uint8 image (upsampled coarse noise)."""
    coarse = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def hwc(images: torch.Tensor) -> np.ndarray:
    return images.permute(1, 2, 0).numpy()


MATRICES = [
    ((20.5, 10.2, 120.3, 100.7), True, 7.0, 1.05),  # crop, flip, rotation, zoom
    ((0.0, 0.0, 200.0, 150.0), False, 30.0, 1.0),  # large rotation: the borders show
    ((150.0, 100.0, 40.0, 45.0), False, -9.0, 1.1),  # a small crop, enlarged
]


@pytest.mark.parametrize(("crop", "flip", "angle", "zoom"), MATRICES)
@pytest.mark.parametrize(
    ("mode", "flag"), [("bilinear", cv2.INTER_LINEAR), ("bicubic", cv2.INTER_CUBIC)]
)
def test_warp_matches_opencv(crop, flip, angle, zoom, mode, flag):
    image = smooth_image(200, 150)
    matrix = warp_matrix(crop, 64, flip, angle, zoom)
    expected = cv2.warpAffine(
        image, matrix, (64, 64), flags=flag, borderMode=cv2.BORDER_REFLECT_101
    )
    warped = warp_images([chw(image)], torch.tensor(matrix)[None].float(), 64, mode)
    assert warped.shape == (1, 3, 64, 64) and warped.dtype == torch.float32
    difference = np.abs(hwc(warped[0]) - expected)
    # OpenCV rounds to uint8 (0.25 mean from that alone) and its weights to 1/32 pixel.
    assert difference.mean() < 0.5
    assert difference.max() <= 1.5
    rounded = np.abs(hwc(to_uint8(warped)[0]).astype(int) - expected)
    assert rounded.max() <= 1 and rounded.mean() < 0.05


@pytest.mark.parametrize(("crop", "flip", "angle", "zoom"), MATRICES)
def test_affine_grid_theta_samples_the_same_points(crop, flip, angle, zoom):
    image = smooth_image(200, 150)
    matrix = warp_matrix(crop, 64, flip, angle, zoom)
    theta = pixel_to_theta(matrix, (200, 150), 64)
    grid = F.affine_grid(theta[None], [1, 3, 64, 64], align_corners=False)
    warped = F.grid_sample(chw(image)[None].float(), grid, align_corners=False)[0]
    expected = cv2.warpAffine(image, matrix, (64, 64), flags=cv2.INTER_LINEAR)
    # affine_grid has no reflect-101 border: compare the output points inside the image.
    inside = ((grid[0].abs() < 1 - 2 / 150).all(dim=-1)).numpy()
    assert inside.sum() > 1000
    assert np.abs(hwc(warped) - expected)[inside].mean() < 0.5


def test_crops_and_flips_land_on_exact_pixels():
    image = smooth_image(120, 90)
    crop = warp_matrix((10, 20, 48, 48), 48, False, 0.0, 1.0)
    flipped = warp_matrix((10, 20, 48, 48), 48, True, 0.0, 1.0)
    warped = to_uint8(warp_images([chw(image)] * 2, torch.tensor(np.stack([crop, flipped])), 48))
    np.testing.assert_array_equal(hwc(warped[0]), image[20:68, 10:58])
    np.testing.assert_array_equal(hwc(warped[1]), image[20:68, 10:58][:, ::-1])


def test_images_of_different_sizes_warp_as_if_alone():
    small, large = smooth_image(90, 70, seed=1), smooth_image(200, 150, seed=2)
    m_small = warp_matrix((0, 0, 90, 70), 32, False, 20.0, 1.0)  # reaches the borders
    m_large = warp_matrix((30, 20, 100, 90), 32, True, -5.0, 1.05)
    together = warp_images(
        [chw(small), chw(large)], torch.tensor(np.stack([m_small, m_large])).float(), 32
    )
    alone_small = warp_images([chw(small)], torch.tensor(m_small)[None].float(), 32)[0]
    alone_large = warp_images([chw(large)], torch.tensor(m_large)[None].float(), 32)[0]
    torch.testing.assert_close(together[0], alone_small, atol=1e-3, rtol=0)
    torch.testing.assert_close(together[1], alone_large, atol=1e-3, rtol=0)


def test_reflect_101_mirrors_about_the_border_pixel_centres():
    coords = torch.tensor([-2.0, -0.5, 0.0, 3.5, 4.0, 5.0, 6.5, 9.0])
    np.testing.assert_allclose(
        reflect_101(coords, torch.tensor(5)).numpy(), [2.0, 0.5, 0.0, 3.5, 4.0, 3.0, 1.5, 1.0]
    )
    assert reflect_101(torch.tensor([-3.0, 2.5]), torch.tensor(1)).tolist() == [0.0, 0.0]


def test_lighting_is_albumentations_multiply_add():
    images = torch.tensor([[[[0.0, 100.0, 250.0]]]]).expand(2, 3, 1, 3)
    out = lighting(images, torch.tensor([1.2, 0.8]), torch.tensor([0.1, -0.1]))
    np.testing.assert_allclose(out[0, 0, 0].numpy(), [25.5, 145.5, 255.0])
    np.testing.assert_allclose(out[1, 0, 0].numpy(), [0.0, 54.5, 174.5])


@pytest.mark.parametrize("size", [(200, 150), (1200, 900)])
def test_same_seed_same_augmentation_as_random_crop_warp(size):
    """The sampler draws what RandomCropWarp draws; the result is the CPU path's picture
    (exactly without the pre-shrink; area averaging differs slightly for large photos)."""
    width, height = size
    image = smooth_image(width, height)
    cpu = RandomCropWarp(64, interpolation=cv2.INTER_LINEAR)
    sampler = WarpSampler(64)
    for seed in range(6):
        cpu.py_random, sampler.rng = random.Random(seed), random.Random(seed)
        expected = cpu.apply(image)
        matrix, shrink_to, _, _ = sampler.draw(width, height)
        assert shrink_to is not None or width < 1000
        pixels = chw(image)
        if shrink_to is not None:
            pixels = shrink_first(pixels, shrink_to)
            assert pixels.shape[1:] == shrink_to
        warped = to_uint8(warp_images([pixels], torch.tensor(matrix)[None].float(), 64))
        difference = np.abs(hwc(warped[0]).astype(int) - expected)
        if shrink_to is None:
            assert difference.max() <= 1 and difference.mean() < 0.01
        else:
            assert difference.mean() < 2.0


def test_presets_none_and_top_down():
    none = WarpSampler(32, preset="none")
    matrix, shrink_to, alpha, beta = none.draw(64, 48)
    # the centre square of the short side, scaled to 32: x 8..56 -> 0..32
    np.testing.assert_allclose(matrix, warp_matrix((8, 0, 48, 48), 32, False, 0, 1))
    assert shrink_to is None and (alpha, beta) == (1.0, 0.0)
    top_down = WarpSampler(32, preset="top_down", seed=3)
    matrices = [top_down.draw(64, 48)[0] for _ in range(20)]
    # some draws turn the picture by 90 degrees: the x output then follows the source y
    assert any(abs(m[0, 1]) > abs(m[0, 0]) for m in matrices)


def test_jpeg_for_device_sends_only_plain_jpegs(tmp_path):
    rgb = Image.fromarray(smooth_image(40, 30))
    rgb.save(tmp_path / "a.jpg")
    rgb.save(tmp_path / "b.png")
    rgb.convert("CMYK").save(tmp_path / "c.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6
    rgb.save(tmp_path / "d.jpg", exif=exif)
    data = (tmp_path / "a.jpg").read_bytes()
    assert jpeg_for_device(data) == (40, 30)
    assert jpeg_for_device(data[: len(data) // 2]) is None  # truncated
    for name in ("b.png", "c.jpg", "d.jpg"):
        assert jpeg_for_device((tmp_path / name).read_bytes()) is None, name


def test_decode_gpu_train_loader_on_the_cpu(tmp_path):
    root = make_image_folder(tmp_path / "data", n_train=6, n_valid=2, size=48)
    Image.fromarray(smooth_image(60, 40)).save(root / "train" / "cats" / "extra.png")
    datamodule = FolderDataModule(
        root, image_size=32, batch_size=4, num_workers=0, decode="gpu", seed=1
    )
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    batches = list(loader)
    assert len(batches) == 13 // 4  # drop_last, as the CPU loader
    kinds = set()
    for batch, labels in batches:
        assert isinstance(batch, DeviceBatch) and len(batch) == 4
        kinds.update(p.ndim for p in batch.payloads)
        images = batch.to("cpu")
        assert images.shape == (4, 3, 32, 32) and images.dtype == torch.uint8
        assert labels.dtype == torch.long and set(labels.tolist()) <= {0, 1}
        assert images.float().std() > 5  # pictures, not blanks
    assert kinds == {1, 3}  # JPEG bytes, and the PNG decoded in the worker


def test_decode_gpu_is_reproducible_and_resumable(tmp_path):
    root = make_image_folder(tmp_path / "data", n_train=6, n_valid=2, size=48)

    def epoch(datamodule, loader=None):
        loader = loader or datamodule.train_dataloader()
        return [(b.to("cpu"), y) for b, y in loader], loader

    def fresh():
        dm = FolderDataModule(root, image_size=32, batch_size=4, num_workers=0, decode="gpu")
        dm.setup("fit")
        return dm

    first, loader = epoch(fresh())
    second, _ = epoch(fresh())
    for (a, ya), (b, yb) in zip(first, second, strict=True):
        assert torch.equal(a, b) and torch.equal(ya, yb)
    # Mid-epoch state: a new loader given it replays the rest of the epoch identically.
    dm = fresh()
    loader = dm.train_dataloader()
    iterator = iter(loader)
    next(iterator)
    state = loader.state_dict()
    rest = [(b.to("cpu"), y) for b, y in iterator]
    resumed = fresh().train_dataloader()
    resumed.load_state_dict(state)
    again = [(b.to("cpu"), y) for b, y in resumed]
    assert len(again) == len(rest) >= 1
    for (a, ya), (b, yb) in zip(rest, again, strict=True):
        assert torch.equal(a, b) and torch.equal(ya, yb)


def test_workers_draw_different_augmentations(tmp_path):
    root = make_image_folder(tmp_path / "data", n_train=8, n_valid=2, size=48)
    dm = FolderDataModule(root, image_size=32, batch_size=2, num_workers=2, decode="gpu")
    dm.setup("fit")
    matrices = [b.matrices for b, _ in dm.train_dataloader()]
    flat = torch.cat(matrices).reshape(len(matrices) * 2, -1)
    assert len({tuple(row.tolist()) for row in flat}) == len(flat)


def test_unknown_decode_is_refused(tmp_path):
    with pytest.raises(UserError, match="data.decode"):
        FolderDataModule(tmp_path, decode="tpu")


def test_unreadable_files_are_replaced_and_counted(tmp_path):
    root = make_image_folder(tmp_path / "data", n_train=3, n_valid=1, size=48)
    items = [(root / "train" / "cats" / "cats.0.jpg", 0), (tmp_path / "missing.jpg", 1)]
    dataset = EncodedImageDataset(items, WarpSampler(32))
    (payload, matrix, shrink_to, light, index), label = dataset[1]
    assert index == 0 and label == 0 and int(dataset.failures[1]) == 1
    assert payload.ndim == 1 and matrix.shape == (2, 3) and len(light) == 2
