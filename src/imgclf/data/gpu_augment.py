"""The train augmentation on the model's device: JPEG decoding and the one warp on the GPU.

`data.decode=gpu` (default `cpu`). The DataLoader workers then only read each file, look
at its header and draw the augmentation's random numbers; decoding
(`torchvision.io.decode_jpeg(..., device=...)`, nvJPEG on a GPU) and the warp
(random resized crop + flip + rotation + zoom as one affine matrix, `imgclf.warp`'s
`sample_crop` and `warp_matrix`, resampled with `affine_grid`/`grid_sample`) and the
brightness/contrast change run on the device the batch is moved to. Where the CPU cores
cannot decode as fast as the GPU trains (large photos, few cores), this keeps the GPU fed.

How it plugs in: the train loader's batches are `(DeviceBatch, labels)`. `DeviceBatch` has
a `.to(device)` that decodes, warps and returns the uint8 image tensor there, so Lightning's
ordinary batch transfer (and any loop that calls `inputs.to(device)`, like the LR finder)
gets images without knowing about it. The model normalises the uint8 images as usual.

Same maths as the CPU path: the random draws follow `RandomCropWarp`'s order, so for the
same seed and image size the matrix is the same; the warp samples the same points with the
same border rule (reflect-101, like OpenCV's default); `tests/test_gpu_augment.py` checks it
against `cv2.warpAffine`. Differences: OpenCV rounds interpolation weights to 1/32 of a pixel;
the lighting change is applied to the warped values before rounding to uint8 (the CPU path
rounds twice); JPEG decoders may differ by a grey level. Files the device decoder cannot take
(PNG and other formats, CMYK, EXIF-rotated or truncated JPEGs, images above
`data.max_pixels`) are decoded on the CPU in the worker and only warped on the device.
Only the train loader changes: validation, test, TTA and precompute keep the CPU pipeline.
Limit for `resume=`: the augmentation draws are restored with `num_workers=0` only (as on
the CPU path with persistent workers, the order of samples is always exact).
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from imgclf.data.dataset import replacement_index
from imgclf.data.images import DEFAULT_MAX_PIXELS, load_rgb
from imgclf.data.replay_loader import ReplayDataLoader
from imgclf.data.transforms import seed_worker
from imgclf.data.warp import MAX_WARP_SHRINK, RandomCropWarp, sample_crop, warp_matrix
from imgclf.errors import UserError

DECODE_MODES = ("cpu", "gpu")
JPEG_START = b"\xff\xd8"
JPEG_END = b"\xff\xd9"
EXIF_ORIENTATION = 0x0112


# -- the maths -------------------------------------------------------------------------
def pixel_to_theta(
    matrix: np.ndarray | torch.Tensor, src_size: tuple[int, int], out_size: int
) -> torch.Tensor:
    """`affine_grid`'s theta (align_corners=False) for a 2x3 source-to-output pixel matrix.

    `matrix` maps source pixel indices (pixel centres at integers, OpenCV's convention) to
    output pixel indices, as `warp_matrix` returns it and `cv2.warpAffine` takes it.
    `affine_grid` wants the other direction, output to source, in normalised coordinates
    (-1 and 1 at the outer edges of the border pixels): theta = N_src . M^-1 . N_out^-1,
    with N(x) = (2x + 1) / W - 1. `src_size` is (width, height).
    """
    m = torch.as_tensor(np.asarray(matrix, dtype=np.float64))
    full = torch.cat([m, torch.tensor([[0.0, 0.0, 1.0]], dtype=m.dtype)])
    width, height = src_size
    to_src_norm = torch.tensor(
        [[2 / width, 0, 1 / width - 1], [0, 2 / height, 1 / height - 1], [0, 0, 1]],
        dtype=m.dtype,
    )
    half = out_size / 2
    from_out_norm = torch.tensor(
        [[half, 0, half - 0.5], [0, half, half - 0.5], [0, 0, 1]], dtype=m.dtype
    )
    return (to_src_norm @ torch.linalg.inv(full) @ from_out_norm)[:2].float()


def reflect_101(coords: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Fold continuous pixel coordinates into [0, length - 1] by mirroring about the border
    pixel centres (OpenCV's BORDER_REFLECT_101: ... 2 1 | 0 1 2 ... n-1 | n-2 ...). For a
    linear interpolation this equals mirroring each tap. A side of one pixel maps to 0."""
    last = (length - 1).to(coords.dtype)
    period = torch.clamp(2 * last, min=1.0)
    folded = torch.remainder(coords, period)
    folded = torch.where(folded > last, period - folded, folded)
    return torch.where(last > 0, folded, torch.zeros_like(folded))


def warp_images(
    images: Sequence[torch.Tensor],
    matrices: torch.Tensor,
    out_size: int,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Warp CHW images of any sizes into one float batch (N, C, out_size, out_size).

    `matrices` (N, 2, 3) are source-to-output pixel matrices (`warp_matrix`). The images are
    placed on one canvas (edge-replicated) so a single `grid_sample` call does the batch;
    each image's sampling points are first mirrored into its own area (reflect-101), so the
    canvas padding is never read except by the outer taps of a bicubic kernel at the very
    edge. Values keep the input scale (0..255 for uint8 input), unrounded.
    """
    device = images[0].device
    count = len(images)
    heights = torch.tensor([img.shape[-2] for img in images], device=device)
    widths = torch.tensor([img.shape[-1] for img in images], device=device)
    canvas_h, canvas_w = int(heights.max()), int(widths.max())
    canvas = torch.empty(
        (count, images[0].shape[0], canvas_h, canvas_w), dtype=torch.float32, device=device
    )
    for index, img in enumerate(images):
        img = img.float()
        pad = (0, canvas_w - img.shape[-1], 0, canvas_h - img.shape[-2])
        canvas[index] = F.pad(img[None], pad, mode="replicate")[0] if any(pad) else img
    # Output pixel centres -> source pixel coordinates (the inverse of each matrix).
    full = torch.cat(
        [
            matrices.to(device=device, dtype=torch.float64),
            torch.tensor([0.0, 0.0, 1.0], device=device, dtype=torch.float64).expand(count, 1, 3),
        ],
        dim=1,
    )
    inverse = torch.linalg.inv(full)[:, :2].float()  # (N, 2, 3)
    axis = torch.arange(out_size, device=device, dtype=torch.float32)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    points = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(-1, 3)  # (S*S, 3)
    source = torch.einsum("nij,pj->npi", inverse, points)  # (N, S*S, 2) pixel coordinates
    src_x = reflect_101(source[..., 0], widths[:, None])
    src_y = reflect_101(source[..., 1], heights[:, None])
    # Pixel coordinates on the canvas -> affine_grid's normalised ones (align_corners=False).
    grid = torch.stack([(2 * src_x + 1) / canvas_w - 1, (2 * src_y + 1) / canvas_h - 1], dim=-1)
    grid = grid.reshape(count, out_size, out_size, 2)
    return F.grid_sample(canvas, grid, mode=mode, padding_mode="border", align_corners=False)


def lighting(images: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """albumentations' RandomBrightnessContrast on 0..255 values: x * alpha + 255 * beta,
    clipped; per image `alpha` (contrast) and `beta` (brightness), shape (N,)."""
    alpha = alpha.to(images.device, images.dtype).view(-1, 1, 1, 1)
    beta = beta.to(images.device, images.dtype).view(-1, 1, 1, 1)
    return (images * alpha + 255.0 * beta).clamp_(0, 255)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    return images.round().clamp_(0, 255).to(torch.uint8)


def shrink_first(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-average a CHW image down to (height, width) (OpenCV's INTER_AREA, roughly)."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image[None].float(), size=size, mode="area")[0]


# -- drawing the augmentation (in the DataLoader workers) ----------------------------------
class WarpSampler:
    """Draws one image's augmentation, in `RandomCropWarp`'s order and ranges.

    Returns the 2x3 pixel matrix for the image as the device will warp it, the size to
    shrink it to first (None: full size), and the lighting (alpha, beta). Presets: side_on
    (crop, flip, rotation, zoom), top_down (also vertical flips and quarter turns), none
    (resize the short side and centre-crop, like evaluation).
    """

    def __init__(
        self,
        size: int,
        preset: str = "side_on",
        warp: RandomCropWarp | None = None,
        max_lighting: float = 0.2,
        p_lighting: float = 0.75,
        seed: int = 0,
    ) -> None:
        # The crop, flip, rotation and zoom ranges are the CPU warp's own settings.
        warp = warp or RandomCropWarp(size)
        self.size, self.preset = size, preset
        self.scale, self.ratio = warp.scale, warp.ratio
        self.flip, self.max_rotate, self.zoom = warp.flip, warp.max_rotate, warp.zoom
        self.p_affine, self.max_lighting, self.p_lighting = warp.p_affine, max_lighting, p_lighting
        self.rng = random.Random(seed)

    def min_side(self) -> int:
        """The smallest image side the crop needs (see `transforms.min_decode_side`)."""
        if self.preset == "none":
            return self.size
        return int(np.ceil(self.size / np.sqrt(min(self.scale) * min(self.ratio))))

    def draw(
        self, width: int, height: int
    ) -> tuple[np.ndarray, tuple[int, int] | None, float, float]:
        rng, size = self.rng, self.size
        if self.preset == "none":
            side = min(width, height)
            crop = ((width - side) / 2, (height - side) / 2, side, side)
            flip, angle, zoom = False, 0.0, 1.0
        else:
            crop = sample_crop(width, height, self.scale, self.ratio, rng)
            flip = self.flip and rng.random() < 0.5
            angle, zoom = 0.0, 1.0
            if rng.random() < self.p_affine:
                angle = rng.uniform(-self.max_rotate, self.max_rotate)
                zoom = rng.uniform(*self.zoom)
        x0, y0, w, h = crop
        shrink_to = None
        shrink = min(w, h) / size
        if shrink > MAX_WARP_SHRINK:
            factor = 1 / shrink  # as RandomCropWarp: cv2.resize(fx=fy=factor) rounds the size
            new_w, new_h = max(1, round(width * factor)), max(1, round(height * factor))
            sx, sy = new_w / width, new_h / height
            x0, y0, w, h = x0 * sx, y0 * sy, w * sx, h * sy
            shrink_to = (new_h, new_w)
        matrix = warp_matrix((x0, y0, w, h), size, flip, angle, zoom)
        if self.preset == "top_down" and self.flip:
            matrix = self.top_down(matrix)
        alpha, beta = 1.0, 0.0
        if self.preset != "none" and rng.random() < self.p_lighting:
            beta = rng.uniform(-self.max_lighting, self.max_lighting)
            alpha = 1.0 + rng.uniform(-self.max_lighting, self.max_lighting)
        return matrix, shrink_to, alpha, beta

    def top_down(self, matrix: np.ndarray) -> np.ndarray:
        """Vertical flip and a random number of quarter turns, each with probability 0.5."""
        last = self.size - 1
        full = np.vstack([matrix, [0, 0, 1]])
        if self.rng.random() < 0.5:
            full = np.array([[1, 0, 0], [0, -1, last], [0, 0, 1]]) @ full
        if self.rng.random() < 0.5:
            for _ in range(self.rng.randint(1, 3)):  # 90 degrees counter-clockwise
                full = np.array([[0, 1, 0], [-1, 0, last], [0, 0, 1]]) @ full
        return full[:2]


# -- the dataset, its batches and the loader --------------------------------------------
def jpeg_for_device(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a JPEG the device decoder can take as it is (baseline or
    progressive RGB/grayscale, upright, complete); None for anything else."""
    if not data.startswith(JPEG_START) or not data.rstrip(b"\0\n\r ").endswith(JPEG_END):
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG" or image.mode not in ("RGB", "L"):
                return None
            if image.getexif().get(EXIF_ORIENTATION, 1) not in (0, 1):
                return None
            return image.size
    except Exception:  # broken headers: the CPU decoder decides
        return None


class EncodedImageDataset(Dataset):
    """(path, label) items -> (payload, matrix, shrink size, lighting, index), label.

    The payload is the file's bytes (a 1-D uint8 tensor) for a JPEG the device decodes, or
    the decoded CHW uint8 pixels for any other file. Failures and replacements work as in
    `ImageFileDataset`: a file that fails to read is replaced by another item, counted in
    the shared `failures` tensor.
    """

    MAX_REPLACEMENTS = 16

    def __init__(
        self,
        items: list,
        sampler: WarpSampler,
        failures: torch.Tensor | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.items, self.sampler, self.max_pixels = items, sampler, max_pixels
        # Decode failures per item, in shared memory (see ImageFileDataset).
        self.failures = torch.zeros(len(items), dtype=torch.int32).share_memory_()
        if failures is not None:
            self.failures = failures

    def __len__(self) -> int:
        return len(self.items)

    def load(self, path: Path) -> tuple[torch.Tensor, int, int]:
        data = Path(path).read_bytes()
        size = jpeg_for_device(data)
        if size is not None and (self.max_pixels is None or size[0] * size[1] <= self.max_pixels):
            return torch.frombuffer(bytearray(data), dtype=torch.uint8), *size
        pixels = load_rgb(Path(path), self.max_pixels, min_side=self.sampler.min_side())
        height, width = pixels.shape[:2]
        return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))), width, height

    def __getitem__(self, index: int):
        for attempt in range(self.MAX_REPLACEMENTS + 1):
            candidate = index if attempt == 0 else replacement_index(index, attempt, len(self))
            path, label = self.items[candidate]
            try:
                payload, width, height = self.load(path)
            except Exception:
                self.failures[candidate] += 1
                continue
            matrix, shrink_to, alpha, beta = self.sampler.draw(width, height)
            return (payload, matrix, shrink_to, (alpha, beta), candidate), label
        raise UserError(
            f"{self.MAX_REPLACEMENTS + 1} images in a row failed to read (last: {path}); "
            "are the files still there?"
        )

    # The augmentation's random state, for an exact mid-epoch resume (ReplayDataLoader).
    def rng_state(self) -> list:
        version, internal, gauss = self.sampler.rng.getstate()
        return [version, list(internal), gauss]

    def set_rng_state(self, state: list) -> None:
        version, internal, gauss = state
        self.sampler.rng.setstate((version, tuple(internal), gauss))


class DeviceBatch:
    """A batch still to be decoded and augmented; `.to(device)` does it there and returns
    the uint8 images (N, 3, size, size)."""

    def __init__(
        self,
        payloads: list[torch.Tensor],
        matrices: torch.Tensor,
        shrink_to: list[tuple[int, int] | None],
        light: torch.Tensor,
        indices: list[int],
        size: int,
        interpolation: str = "bilinear",
        failures: torch.Tensor | None = None,
    ) -> None:
        self.payloads, self.matrices, self.shrink_to = payloads, matrices, shrink_to
        self.light, self.indices, self.size = light, indices, size
        self.interpolation, self.failures = interpolation, failures

    def __len__(self) -> int:
        return len(self.payloads)

    def pin_memory(self) -> DeviceBatch:
        self.payloads = [p if p.ndim == 1 else p.pin_memory() for p in self.payloads]
        return self

    def decode(self, device: torch.device) -> list[torch.Tensor]:
        """CHW uint8 images on `device`: the encoded ones decoded there in one call."""
        from torchvision.io import ImageReadMode, decode_jpeg

        images: list[torch.Tensor | None] = [
            None if p.ndim == 1 else p.to(device, non_blocking=True) for p in self.payloads
        ]
        encoded = [i for i, p in enumerate(self.payloads) if p.ndim == 1]
        if encoded:
            data = [self.payloads[i] for i in encoded]
            try:
                decoded = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
            except RuntimeError:  # one broken file fails the whole call: go one by one
                decoded = []
                for one in data:
                    try:
                        decoded.append(decode_jpeg(one, mode=ImageReadMode.RGB, device=device))
                    except RuntimeError:
                        decoded.append(None)
            for i, image in zip(encoded, decoded, strict=True):
                images[i] = image
        failed = [i for i, image in enumerate(images) if image is None]
        if len(failed) == len(images):
            raise UserError("no image of a batch could be decoded on the device")
        for i in failed:  # take a neighbour's place, as the CPU path takes another item's
            if self.failures is not None:
                self.failures[self.indices[i]] += 1
            images[i] = next(img for img in images[i:] + images[:i] if img is not None)
        return images

    def to(self, device, non_blocking: bool = False, **kwargs) -> torch.Tensor:
        device = torch.device(device)
        images = self.decode(device)
        images = [
            shrink_first(img, shape) if shape is not None else img
            for img, shape in zip(images, self.shrink_to, strict=True)
        ]
        warped = warp_images(images, self.matrices, self.size, self.interpolation)
        warped = lighting(warped, self.light[:, 0], self.light[:, 1])
        return to_uint8(warped)


class CollateDevice:
    """collate_fn of the device pipeline: (DeviceBatch, labels)."""

    def __init__(self, size: int, interpolation: str = "bilinear") -> None:
        self.size, self.interpolation = size, interpolation

    def __call__(self, samples: list) -> tuple[DeviceBatch, torch.Tensor]:
        parts, labels = zip(*samples, strict=True)
        payloads, matrices, shrink_to, light, indices = zip(*parts, strict=True)
        batch = DeviceBatch(
            list(payloads),
            torch.from_numpy(np.stack(matrices)).float(),
            list(shrink_to),
            torch.tensor(light, dtype=torch.float32),
            list(indices),
            self.size,
            self.interpolation,
        )
        return batch, torch.tensor(labels, dtype=torch.long)


def seed_device_worker(worker_id: int) -> None:
    """worker_init_fn: `seed_worker`, and the sampler's own generator from the same seed."""
    seed_worker(worker_id)
    info = torch.utils.data.get_worker_info()
    if info is not None and isinstance(info.dataset, EncodedImageDataset):
        info.dataset.sampler.rng.seed(torch.initial_seed() % 2**32)


class DeviceReplayLoader(ReplayDataLoader):
    """The train loader of the device pipeline. Hands each batch the dataset's shared
    failure counter in the main process (the workers do not send it with every batch)."""

    def _count(self, iterator):
        for images, labels in super()._count(iterator):
            if isinstance(images, DeviceBatch):
                images.failures = getattr(self.dataset, "failures", None)
            yield images, labels


GRID_MODES = {"bicubic": "bicubic", "nearest": "nearest"}  # anything else: bilinear


def device_train_loader(datamodule, drop_last: bool, image_size: int):
    """The train loader of a `FolderDataModule` with `decode=gpu` at `image_size`: same
    items, batch size, workers, shuffling and seeds as the CPU loader, with the decode and
    warp left to the device (see the module doc)."""
    cfg = datamodule.data_config
    warp = RandomCropWarp(image_size, scale=(datamodule.min_scale, 1.0), flip=datamodule.do_flip)
    sampler = WarpSampler(image_size, datamodule.augment, warp, seed=datamodule.seed)
    items = datamodule.train_items
    failures = datamodule.failure_counter(items)
    dataset = EncodedImageDataset(items, sampler, failures, datamodule.max_pixels)
    interpolation = GRID_MODES.get(cfg.get("interpolation", "bilinear"), "bilinear")
    return datamodule.loader_for(
        dataset,
        shuffle=True,
        drop_last=drop_last,
        loader_class=DeviceReplayLoader,
        worker_init_fn=seed_device_worker,
        collate_fn=CollateDevice(image_size, interpolation),
        balance_by=datamodule.train_labels(),
    )


def check_decode(decode: str) -> str:
    if decode not in DECODE_MODES:
        raise UserError(f"unknown data.decode {decode!r}: choose one of {', '.join(DECODE_MODES)}")
    return decode
