"""Finding, checking and decoding image files.

Decoding rules (`load_rgb`), for the odd files real folders hold:
  - EXIF orientation is applied, as cameras intend;
  - transparency (RGBA, LA, palette PNGs with a transparent colour) is composited onto
    white, as an image viewer shows it on a page (a plain RGB conversion would instead
    reveal whatever colour the transparent pixels happen to store, often black);
  - 16- and 32-bit integer images are scaled to 8 bits by their bit depth (a plain
    conversion clips everything above 255 to white); float images by their 0..1 range;
  - CMYK, grayscale and every other mode go through PIL's conversion to RGB;
  - complete RGB and grayscale JPEGs (nearly every photo) are decoded by OpenCV's
    libjpeg-turbo instead of PIL's decoder: the same pixels, about 3x faster;
  - images with more than `max_pixels` pixels are refused with `ImageTooLarge` before
    any pixel is decoded (PIL's own decompression-bomb check is turned into the same
    error instead of a crash), and so are images whose decode would hold more bytes
    (pixels x channels x bytes per sample) than an 8-bit RGB image of `max_pixels`: a
    16-bit greyscale PNG of 10,000 x 10,000 costs more memory than an RGB photo of that size.
"""

from __future__ import annotations

import os
import stat
import warnings
from contextlib import contextmanager, suppress
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VERIFY_MODES = ("header", "full", "none")
# Default of data.max_pixels: a 10,000 x 10,000 photo. Larger files are usually scans,
# panoramas or decompression bombs, and one of them can exhaust a worker's memory.
DEFAULT_MAX_PIXELS = 100_000_000
WHITE = (255, 255, 255)
# libjpeg's DCT scaling steps, as OpenCV names them.
REDUCED_JPEG_FLAGS = {
    8: cv2.IMREAD_REDUCED_COLOR_8,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    2: cv2.IMREAD_REDUCED_COLOR_2,
}
JPEG_END = b"\xff\xd9"
# EXIF orientation -> the numpy steps that show the image upright.
ORIENTATIONS = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


class ImageTooLarge(ValueError):
    """An image with more pixels than allowed (data.max_pixels, or PIL's own bomb limit)."""


def is_image_name(path: Path) -> bool:
    # Hidden files (.DS_Store, macOS ._foo resource forks) are never images.
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, sorted. Directory symlinks are not followed,
    so a symlink loop cannot hang the scan."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / name for name in filenames if is_image_name(Path(name))]
    return sorted(found)


@contextmanager
def open_image(path: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS):
    """PIL's lazy open (header only), refusing images above `max_pixels` pixels."""
    with warnings.catch_warnings():
        # PIL warns between its limit and twice it; we apply our own limit instead.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except Image.DecompressionBombError as err:
            raise ImageTooLarge(str(err).split(" could be")[0]) from None
    with image:
        width, height = image.size
        if max_pixels is not None and width * height > max_pixels:
            raise ImageTooLarge(
                f"{width}x{height} = {width * height:,} pixels is above data.max_pixels "
                f"{max_pixels:,}"
            )
        needed, budget = decode_bytes(image), (max_pixels or 0) * 3
        if max_pixels is not None and needed > budget:
            bits = stored_bits_per_sample(image)
            kind = (
                f"{image.mode} {bits}-bit" if bits > 8 and image.mode[0] not in "IF" else image.mode
            )
            raise ImageTooLarge(
                f"{width}x{height} {kind} needs {needed / 1e9:.2f} GB to decode, above "
                f"the {budget / 1e9:.2f} GB of data.max_pixels {max_pixels:,} RGB pixels"
            )
        yield image


def decode_bytes(image: Image.Image) -> int:
    """Bytes a decode holds: pixels x channels x bytes per sample, for every image mode.
    High bit depths (16-bit, 32-bit integer or float) count 4 bytes a sample, the working
    copy `to_rgb` makes; samples stored wider than the mode PIL opens them in (a 16-bit RGB
    PNG opens as 8-bit "RGB") count at the width stored in the file."""
    mode = image.mode
    wide = mode.startswith("I") or mode == "F"
    per_sample = 4 if wide else max(1, stored_bits_per_sample(image) // 8)
    return image.size[0] * image.size[1] * len(image.getbands()) * per_sample


def stored_bits_per_sample(image: Image.Image) -> int:
    """Bits per sample as the file stores them, from its decoder's raw mode ("RGB;16B":
    16, "I;16": 16, "RGBA": 8); 8 when the raw mode does not say."""
    import re

    widths = [8]
    for tile in getattr(image, "tile", None) or []:
        args = tile[-1]
        rawmode = str(args if isinstance(args, str) else (args or ("",))[0])
        bits = re.fullmatch(r"([A-Za-z]+);(\d+)\w*", rawmode)
        # Only the image's own channels ("RGB;16B" of RGB), not packed pixels ("BGR;15").
        if bits and bits.group(1) == image.mode:
            widths.append(int(bits.group(2)))
    return max(widths)


def special_file_kind(st_mode: int) -> str | None:
    """'FIFO', 'socket', 'device' for such a file's mode; None for a regular file."""
    if stat.S_ISREG(st_mode):
        return None
    if stat.S_ISFIFO(st_mode):
        return "FIFO"
    if stat.S_ISSOCK(st_mode):
        return "socket"
    if stat.S_ISCHR(st_mode) or stat.S_ISBLK(st_mode):
        return "device"
    return "not a file"


def unreadable_reason(
    path: Path, mode: str = "header", max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> str | None:
    """None if the file looks like a readable image, else a short reason.

    `header` reads only the header (fast: format and size), `full` decodes every pixel.
    """
    try:
        kind = special_file_kind(path.stat().st_mode)
        if kind:  # reading a FIFO or a device blocks or never ends: never open one
            return f"not a regular file ({kind})"
        if mode == "none":
            return None
        if path.stat().st_size == 0:
            return "empty file"
        with open_image(path, max_pixels) as image:
            width, height = image.size
            if mode == "full":
                image.load()
    except ImageTooLarge as err:
        return f"too large: {err}"
    except UnidentifiedImageError:
        return "not an image PIL can read"
    except OSError as err:
        if err.strerror:  # from the OS (symlink loop, permissions): the path is known already
            return f"{type(err).__name__}: {err.strerror}"
        return f"{type(err).__name__}: {err}".splitlines()[0][:200]
    except Exception as err:  # PIL raises many types for broken files
        return f"{type(err).__name__}: {err}".splitlines()[0][:200]
    if width < 1 or height < 1:
        return "zero-sized image"
    return None


def reduce_on_decode(image: Image.Image, min_side: int | None) -> None:
    """JPEG only: let the decoder scale down by 1/2, 1/4 or 1/8 (libjpeg's DCT scaling,
    much cheaper than decoding every pixel and resizing) as long as both sides stay at
    least `min_side`. Other formats, and `min_side=None`, decode at full size."""
    if min_side and image.format == "JPEG":
        image.draft("RGB", (min_side, min_side))


def jpeg_scale(width: int, height: int, min_side: int | None) -> int:
    """The largest libjpeg reduction (1, 2, 4 or 8) keeping both sides >= `min_side`."""
    if not min_side:
        return 1
    for scale in (8, 4, 2):
        if -(-width // scale) >= min_side and -(-height // scale) >= min_side:
            return scale
    return 1


def decode_jpeg_fast(image: Image.Image, path: Path, min_side: int | None) -> np.ndarray | None:
    """A plain RGB or grayscale JPEG decoded by OpenCV (libjpeg-turbo, about 3x PIL's speed
    here), EXIF orientation applied; None for every other file, which PIL then decodes.

    Truncated files are left to PIL, which refuses them: libjpeg would pad them with grey.
    """
    if image.format != "JPEG" or image.mode not in ("RGB", "L"):
        return None
    data = path.read_bytes()
    if not data.rstrip(b"\0\n\r ").endswith(JPEG_END):
        return None
    scale = jpeg_scale(*image.size, min_side)
    flags = REDUCED_JPEG_FLAGS.get(scale, cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if pixels is None:
        return None
    pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    orientation = 1
    with suppress(Exception):  # a broken EXIF block: keep the pixels as stored
        orientation = image.getexif().get(0x0112, 1)
    if orientation in ORIENTATIONS:
        pixels = np.ascontiguousarray(ORIENTATIONS[orientation](pixels))
    return pixels


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB by the rules in the module docstring."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I") or image.mode == "F":
        pixels = np.asarray(image).astype(np.float64)
        if image.mode == "F":
            scale = 255.0  # float images hold 0..1
        elif image.mode.startswith("I;16") or pixels.max(initial=0) <= 65535:
            scale = 255.0 / 65535.0
        else:
            scale = 255.0 / (2.0**32 - 1)
        gray = np.clip(np.rint(pixels * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or image.has_transparency_data:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*WHITE, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def load_rgb(
    path: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS, *, min_side: int | None = None
) -> np.ndarray:
    """Decode to an HxWx3 uint8 array: EXIF orientation applied, transparency on white,
    high bit depths scaled; `ImageTooLarge` above `max_pixels` (nothing decoded). With
    `min_side`, JPEGs may decode at a reduced scale (see `reduce_on_decode`)."""
    with open_image(path, max_pixels) as image:
        fast = decode_jpeg_fast(image, Path(path), min_side)
        if fast is not None:
            return fast
        reduce_on_decode(image, min_side)
        image.load()
        with suppress(Exception):  # a broken EXIF block: keep the pixels as stored
            image = ImageOps.exif_transpose(image)
        return np.asarray(to_rgb(image))
