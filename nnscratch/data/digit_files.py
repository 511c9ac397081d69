"""Read a digit to classify from a file: an image (any format Pillow reads) or a ``.npy`` array.

``read_digit(path)`` returns the 28x28 float32 input in [0, 1] a network trained on MNIST expects:

- an image goes through ``nnscratch.data.digits.prepare_digit`` (grayscale, light on dark, cropped
  to the ink, 20 pixels, centred by mass), then ``scale_images``. Pillow is needed (the ``images``
  extra) and imported only here, when an image is read;
- a ``.npy`` array (recognised by its magic bytes, whatever the file is called) is taken as an
  MNIST digit already: shape (28, 28), (1, 28, 28) or (784,); integers 0-255 (scaled by
  ``scale_images``) or floats in [0, 1]. It is not preprocessed, and needs no Pillow.

Every problem is a ``DigitFileError`` (a ``ValueError``) whose message is one line naming the file.
What a file can cost is bounded before it is decoded: at most ``MAX_FILE_BYTES`` on disk and
``MAX_PIXELS`` pixels (Pillow's decompression-bomb check, set to that limit while a file is read,
looks at the size in the header of every image it opens: the PNG inside an ICO too); a large image is reduced to
``WORK_SIDE`` pixels on its longer side while it is decoded, so memory stays small.
"""

from __future__ import annotations

import os
import re
import stat
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..atomic_file import file_kind
from .digits import BlankImageError, prepare_digit
from .mnist import scale_images

MAX_FILE_BYTES = 100 * 2**20  # far more than any digit photo needs
MAX_PIXELS = 50_000_000  # a 50-megapixel photo; beyond this an image is refused before decoding
MAX_NPY_BYTES = 2**20  # a (784,) float64 array and its header take about 6 KiB
# A large image is reduced to this longer side before the digit is looked for: the digit ends at
# 20 pixels anyway, and a digit covering a tenth of a 1024-pixel image still has 100 pixels.
WORK_SIDE = 1024
NPY_SHAPES = ((28, 28), (1, 28, 28), (784,))
PILLOW_HINT = "pip install 'nnscratch[images]'"


class DigitFileError(ValueError):
    """A file that cannot be classified: ``path`` and ``reason``; ``str()`` is "path: reason", one line."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def read_digit(path) -> np.ndarray:
    """The network input for the digit in the image or ``.npy`` file at ``path``.

    Raises ``DigitFileError`` for a missing, unreadable, empty, oversized or malformed file, one that
    is not a regular file (a FIFO or a process substitution's pipe, a device such as /dev/urandom:
    refused before anything is read, never waited on), an image without a digit or with NaN or
    infinite pixels, or an image when Pillow is not installed.

    Shape:
        -> (28, 28) float32 in [0, 1], light digit on black
    """
    path = Path(path)
    with _open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise DigitFileError(path, "the file is empty")
        if size > MAX_FILE_BYTES:
            raise DigitFileError(path, f"{size:,} bytes, more than the {MAX_FILE_BYTES:,} an image to classify may have")
        try:
            magic = f.read(6)
            f.seek(0)
        except OSError as error:
            raise DigitFileError(path, f"cannot read it ({error.strerror or error})") from None
        if magic == b"\x93NUMPY":
            return _read_npy(path, f, size)
        if path.suffix.lower() == ".npy":
            raise DigitFileError(path, "not a .npy file (it does not start with NumPy's magic bytes)")
        if magic[:2] == b"PK":
            raise DigitFileError(path, "a zip (.npz) archive; expected one image or one .npy array per file")
        return _read_image(path, f)


def _open_regular(path: Path):
    """``path`` open for binary reading when it is a regular file; else ``DigitFileError``. What it
    is, is looked at before it is opened (opening a FIFO waits for a writer; a device may act on
    an open) and again on the open file, in case it was swapped in between."""

    def refuse(mode):
        if stat.S_ISDIR(mode):
            raise DigitFileError(path, "is a directory, expected an image or .npy file")
        if not stat.S_ISREG(mode):
            raise DigitFileError(path, f"not a regular file but a {file_kind(mode)}; expected an image or .npy "
                                 "file (save what a pipe or device gives to a file first)")

    try:
        refuse(os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise DigitFileError(path, "no such file") from None
    except OSError as error:
        raise DigitFileError(path, f"cannot read it ({error.strerror or error})") from None
    try:
        refuse(os.fstat(fd).st_mode)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# -- .npy --------------------------------------------------------------------------------------
def _read_npy(path: Path, f, size: int) -> np.ndarray:
    if size > MAX_NPY_BYTES:
        raise DigitFileError(path, f"a .npy file of {size:,} bytes, far more than one 28x28 digit takes")
    try:
        array = np.load(f, allow_pickle=False)
    except Exception as error:  # numpy's format errors, pickled object arrays refused among them
        raise DigitFileError(path, f"not a readable .npy array ({type(error).__name__}: {error})") from None
    expected = "shape (28, 28), (1, 28, 28) or (784,)"
    if array.dtype.kind not in "iuf":
        raise DigitFileError(path, f"expected numeric pixels ({expected}), got an array of {array.dtype}")
    if array.shape not in NPY_SHAPES:
        raise DigitFileError(path, f"expected one MNIST digit of {expected}, got shape {array.shape}")
    array = array.reshape(28, 28)
    if array.dtype.kind in "iu":
        if array.min() < 0 or array.max() > 255:
            raise DigitFileError(path, f"integer pixels must be 0-255, got values from {array.min()} to {array.max()}")
        return scale_images(array.astype(np.uint8))
    if not np.isfinite(array).all():
        raise DigitFileError(path, "the array holds NaN or infinite values")
    if array.min() < 0 or array.max() > 1:
        raise DigitFileError(path, f"float pixels must be in [0, 1] as scale_images gives them, got values from "
                             f"{array.min():g} to {array.max():g} (for 0-255 values, divide by 255 or save them as uint8)")
    return array.astype(np.float32)


# -- images ------------------------------------------------------------------------------------
def _read_image(path: Path, f) -> np.ndarray:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise DigitFileError(path, f"reading image files needs Pillow, which is not installed: {PILLOW_HINT} "
                             "(.npy arrays work without it)") from None
    limit = MAX_PIXELS if Image.MAX_IMAGE_PIXELS is None else min(Image.MAX_IMAGE_PIXELS, MAX_PIXELS)
    try:
        with warnings.catch_warnings(), _pixel_limit(Image, limit):
            warnings.simplefilter("ignore")  # a corrupt EXIF block, say: no reason to print anything
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(f) as image:
                gray = _gray_levels(path, image)
    except DigitFileError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        found = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(found.group(1)):,} pixels" if found else f"too many pixels ({error})"
        raise DigitFileError(path, f"{size}, more than the {limit:,} an image to classify may have") from None
    except UnidentifiedImageError:
        raise DigitFileError(path, "not an image Pillow can read (nor a .npy array)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:  # truncated or damaged image data
        raise DigitFileError(path, f"a damaged or truncated image ({type(error).__name__}: {error})") from None
    try:
        return scale_images(prepare_digit(gray))
    except BlankImageError as error:
        raise DigitFileError(path, f"{error}") from None


@contextmanager
def _pixel_limit(Image, limit: int):
    """Pillow's own decompression-bomb check at ``limit`` pixels while an image is read (its warning
    made an error by the caller): Pillow checks every image it opens from its header, before
    decoding, the PNG inside an ICO too, whose directory may claim a small size. A process-wide
    setting, restored after."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _gray_levels(path: Path, image) -> np.ndarray:
    """The first frame of an open Pillow image as gray levels in [0, 1], at most WORK_SIDE on a side.

    A transparent background is laid on white under dark ink, on black under light ink, so the
    digit stays visible either way.

    Shape:
        -> (H, W) float32
    """
    from PIL import Image

    width, height = image.size  # at most MAX_PIXELS: Pillow checked it when it opened the file
    if width < 1 or height < 1:
        raise DigitFileError(path, f"the image has no pixels ({width}x{height})")
    image.draft(None, (WORK_SIDE, WORK_SIDE))  # JPEG: decode at a reduced size
    image = _upright(image)
    if image.mode.startswith("I;16"):
        image = image.convert("I")
    if image.mode in ("I", "F"):
        return _number_levels(path, image)
    transparent = "A" in image.mode or "transparency" in image.info
    image = image.convert("RGBA" if transparent else "L")
    image.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BILINEAR)
    if not transparent:
        return np.asarray(image, dtype=np.float32) / 255
    rgba = np.asarray(image, dtype=np.float32) / 255
    gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # as Pillow's convert("L")
    alpha = rgba[..., 3]
    if alpha.min() == 1.0:
        return gray
    ink_is_dark = (gray * alpha).sum() < 0.5 * alpha.sum()  # the visible pixels, on average dark
    paper = 1.0 if ink_is_dark else 0.0
    return alpha * gray + (1.0 - alpha) * paper


def _upright(image):
    """The image turned as its EXIF orientation says (a phone photo taken sideways is stored sideways).

    EXIF is optional metadata, and Pillow reads a junk EXIF block in a JPEG as none; in a PNG's eXIf
    chunk it raises instead (SyntaxError, ValueError, struct.error, ... depending on the junk). The
    same junk is taken the same way in both: as no orientation, the pixels read as stored.
    """
    from PIL import ImageOps

    try:
        image.getexif()
    except Exception:  # any parsing error of the metadata; the pixels are decoded later, not here
        return image
    return ImageOps.exif_transpose(image)


def _number_levels(path: Path, image) -> np.ndarray:
    """A 32-bit integer or float image ("I", "F": TIFF, 16-bit PNG) as gray levels in [0, 1]: its range
    mapped to [0, 1] whatever the bit depth (light_on_dark works on contrast only), in float64 so that
    values near float32's limits (+-3e38) keep their contrast. NaN or infinite pixels are refused.

    Shape:
        -> (H, W) float32, at most WORK_SIDE on a side
    """
    from PIL import Image

    width, height = image.size
    rows = max(1, (1 << 20) // width)  # in strips of about a million pixels: no full-size float copy
    for top in range(0, height, rows) if image.mode == "F" else ():
        if not np.isfinite(np.asarray(image.crop((0, top, width, min(top + rows, height))))).all():
            raise DigitFileError(path, "the image holds NaN or infinite pixel values")
    image.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BILINEAR)
    values = np.asarray(image, dtype=np.float64)
    low, high = values.min(), values.max()
    return ((values - low) / (high - low)).astype(np.float32) if high > low else np.zeros(values.shape, np.float32)
