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
``MAX_PIXELS`` pixels (Pillow reads the size from the header first); a large image is reduced to
``WORK_SIDE`` pixels on its longer side while it is decoded, so memory stays small.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

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
    """A file that cannot be classified; the message is one line that names it."""


def read_digit(path) -> np.ndarray:
    """The network input for the digit in the image or ``.npy`` file at ``path``.

    Raises ``DigitFileError`` for a missing, unreadable, empty, oversized or malformed file, an
    image without a digit, or an image when Pillow is not installed.

    Shape:
        -> (28, 28) float32 in [0, 1], light digit on black
    """
    path = Path(path)
    try:
        size = os.stat(path).st_size
        if path.is_dir():
            raise DigitFileError(f"{path}: is a directory, expected an image or .npy file")
        with open(path, "rb") as f:
            magic = f.read(6)
    except FileNotFoundError:
        raise DigitFileError(f"{path}: no such file") from None
    except OSError as error:
        raise DigitFileError(f"{path}: cannot read it ({error.strerror or error})") from None
    if size == 0:
        raise DigitFileError(f"{path}: the file is empty")
    if size > MAX_FILE_BYTES:
        raise DigitFileError(f"{path}: {size:,} bytes, more than the {MAX_FILE_BYTES:,} an image to classify may have")
    if magic == b"\x93NUMPY":
        return _read_npy(path, size)
    if path.suffix.lower() == ".npy":
        raise DigitFileError(f"{path}: not a .npy file (it does not start with NumPy's magic bytes)")
    if magic[:2] == b"PK":
        raise DigitFileError(f"{path}: a zip (.npz) archive; expected one image or one .npy array per file")
    return _read_image(path)


# -- .npy --------------------------------------------------------------------------------------
def _read_npy(path: Path, size: int) -> np.ndarray:
    if size > MAX_NPY_BYTES:
        raise DigitFileError(f"{path}: a .npy file of {size:,} bytes, far more than one 28x28 digit takes")
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as error:  # numpy's format errors, pickled object arrays refused among them
        raise DigitFileError(f"{path}: not a readable .npy array ({type(error).__name__}: {error})") from None
    expected = "shape (28, 28), (1, 28, 28) or (784,)"
    if array.dtype.kind not in "iuf":
        raise DigitFileError(f"{path}: expected numeric pixels ({expected}), got an array of {array.dtype}")
    if array.shape not in NPY_SHAPES:
        raise DigitFileError(f"{path}: expected one MNIST digit of {expected}, got shape {array.shape}")
    array = array.reshape(28, 28)
    if array.dtype.kind in "iu":
        if array.min() < 0 or array.max() > 255:
            raise DigitFileError(
                f"{path}: integer pixels must be 0-255, got values from {array.min()} to {array.max()}"
            )
        return scale_images(array.astype(np.uint8))
    if not np.isfinite(array).all():
        raise DigitFileError(f"{path}: the array holds NaN or infinite values")
    if array.min() < 0 or array.max() > 1:
        raise DigitFileError(
            f"{path}: float pixels must be in [0, 1] as scale_images gives them, got values from "
            f"{array.min():g} to {array.max():g} (for 0-255 values, divide by 255 or save them as uint8)"
        )
    return array.astype(np.float32)


# -- images ------------------------------------------------------------------------------------
def _read_image(path: Path) -> np.ndarray:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise DigitFileError(
            f"{path}: reading image files needs Pillow, which is not installed: {PILLOW_HINT} "
            "(.npy arrays work without it)"
        ) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                gray = _gray_levels(path, image)
    except DigitFileError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise DigitFileError(f"{path}: refused as a decompression bomb ({error})") from None
    except UnidentifiedImageError:
        raise DigitFileError(f"{path}: not an image Pillow can read (nor a .npy array)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:  # truncated or damaged image data
        raise DigitFileError(f"{path}: a damaged or truncated image ({type(error).__name__}: {error})") from None
    try:
        return scale_images(prepare_digit(gray))
    except BlankImageError as error:
        raise DigitFileError(f"{path}: {error}") from None


def _gray_levels(path: Path, image) -> np.ndarray:
    """The first frame of an open Pillow image as gray levels in [0, 1], at most WORK_SIDE on a side.

    A transparent background is laid on white under dark ink, on black under light ink, so the
    digit stays visible either way.

    Shape:
        -> (H, W) float32
    """
    from PIL import Image, ImageOps

    width, height = image.size
    if width * height > MAX_PIXELS:
        raise DigitFileError(
            f"{path}: {width}x{height} pixels, more than the {MAX_PIXELS:,} an image to classify may have"
        )
    if width < 1 or height < 1:
        raise DigitFileError(f"{path}: the image has no pixels ({width}x{height})")
    image.draft(None, (WORK_SIDE, WORK_SIDE))  # JPEG: decode at a reduced size
    image = ImageOps.exif_transpose(image)  # a phone photo taken sideways is stored sideways
    if image.mode.startswith("I;16"):
        image = image.convert("I")
    if image.mode in ("I", "F"):
        image.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BILINEAR)
        values = np.asarray(image, dtype=np.float32)
        low, high = float(values.min()), float(values.max())
        # light_on_dark works on contrast only: the range is mapped to [0, 1] whatever the bit depth
        return (values - low) / (high - low) if high > low else np.zeros_like(values)
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
