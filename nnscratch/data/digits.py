"""Turn a picture of one handwritten digit into an MNIST-style 28x28 input, the way MNIST was made.

MNIST's digits are light on a dark background, their ink box scaled (keeping the aspect ratio,
antialiased) so that the longer side is 20 pixels, and pasted into a 28x28 frame so that the
centre of mass of the ink falls on pixel (14, 14). A photo or a drawing saved from a paint program
looks nothing like that: dark ink on white paper, a big canvas, the digit anywhere on it. A network
trained on MNIST only reads such a file well once it is brought to the same form:

    gray = ...                               # (H, W) floats, any range, e.g. from a PNG
    x = light_on_dark(gray)                  # ink light on black: background 0, strongest ink 1
    x = crop_to_ink(x)                       # the box around the pixels brighter than INK_THRESHOLD
    x = scale_to_box(x)                      # the longer side 20 px, aspect kept, antialiased
    frame = centre_by_mass(x)                # (28, 28), centre of mass at (14, 14)
    pixels = to_uint8(frame)                 # 0-255 as MNIST stores it; scale_images gives [0, 1]

``prepare_digit(gray)`` runs the five steps. Only ``scale_to_box`` needs Pillow (its resampling
filter), imported when called; ``nnscratch.data.digit_files`` reads image and ``.npy`` files.
"""

from __future__ import annotations

import numpy as np

FRAME = 28  # MNIST's side
BOX = 20  # the longer side of the digit in MNIST
CENTRE = 14.0  # where MNIST's centre of mass lies, in pixel indices (measured: 13.99, 14.01 on average)
# A pixel counts as ink for cropping when it is brighter than this share of the strongest ink:
# well above JPEG ringing and paper grain (a few percent after light_on_dark), well below a stroke.
INK_THRESHOLD = 0.2
# The least contrast between ink and background (as a share of the image's range of gray levels
# 0-1) that counts as a digit at all: a blank page with sensor noise stays below it.
MIN_CONTRAST = 0.1


class BlankImageError(ValueError):
    """The image holds no digit: nothing stands out from the background."""


def _check_gray(where: str, gray) -> np.ndarray:
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.shape[0] < 1 or gray.shape[1] < 1:
        raise ValueError(f"{where}: expected a 2-D (H, W) grayscale image, got shape {gray.shape}")
    if gray.dtype.kind not in "iuf":
        raise TypeError(f"{where}: expected numeric gray levels, got an array of {gray.dtype}")
    gray = gray.astype(np.float32)
    if not np.isfinite(gray).all():
        raise ValueError(f"{where}: the image holds NaN or infinite values")
    return gray


def border(gray: np.ndarray) -> np.ndarray:
    """The pixels of the outermost rows and columns, each once.

    Shape:
        (H, W) -> (2 W + 2 H - 4,) (all the pixels when H or W is below 3)
    """
    if min(gray.shape) < 3:
        return gray.ravel()
    return np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])


def light_on_dark(gray, min_contrast: float = MIN_CONTRAST) -> np.ndarray:
    """Gray levels to light ink on a black background: background -> 0, the strongest ink -> 1.

    The background level b is the median of the border pixels (a digit rarely covers half of the
    image's edge). The ink is whichever side of b reaches further: dark ink on light paper when
    b - min > max - b, and then the image is inverted. This holds for white paper, a gray scan and
    a black canvas alike, whatever the share of the image the digit covers.
    out = clip((g - b) / (ink - b), 0, 1), with g, b, ink taken after the inversion.

    Raises ``BlankImageError`` when the ink differs from the background by less than
    ``min_contrast`` of the image's own range (0-1 for 8-bit images scaled by 255).

    Shape:
        (H, W) numbers in [0, 1] -> (H, W) float32 in [0, 1]
    """
    gray = _check_gray("light_on_dark", gray)
    background = float(np.median(border(gray)))
    darkest, lightest = float(gray.min()), float(gray.max())
    if background - darkest > lightest - background:  # dark ink on a light background
        gray = 1.0 - gray
        background, ink = 1.0 - background, 1.0 - darkest
    else:
        ink = lightest
    if ink - background < min_contrast:
        raise BlankImageError(
            f"no digit found: nothing stands out from the background (contrast {ink - background:.3f}, "
            f"at least {min_contrast:g} needed)"
        )
    out = (gray - background) / (ink - background)
    return np.clip(out, 0.0, 1.0, out=out)


def crop_to_ink(x, threshold: float = INK_THRESHOLD) -> np.ndarray:
    """The smallest box holding every pixel brighter than ``threshold`` (faint noise is left out).

    Shape:
        (H, W) light on dark in [0, 1] -> (h, w), h <= H, w <= W
    """
    x = _check_gray("crop_to_ink", x)
    ink = x > threshold
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        raise BlankImageError(f"no digit found: no pixel is brighter than {threshold:g}")
    return x[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def scale_to_box(x, box: int = BOX) -> np.ndarray:
    """Resize so that the longer side is ``box`` pixels, keeping the aspect ratio (needs Pillow).

    The shorter side becomes round(side * box / longer), at least 1. Pillow's bilinear filter
    widens its support when shrinking, so every source pixel contributes (antialiasing): a thin
    stroke becomes a fainter, not a broken, line, as in MNIST.

    Shape:
        (h, w) -> (box, round(w * box / h)) when h >= w, else (round(h * box / w), box); float32
    """
    from PIL import Image

    x = _check_gray("scale_to_box", x)
    height, width = x.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))  # Pillow's (width, height)
    resized = Image.fromarray(np.ascontiguousarray(x)).resize(size, Image.Resampling.BILINEAR)
    out = np.asarray(resized, dtype=np.float32).copy()
    return np.clip(out, 0.0, 1.0, out=out)


def centre_of_mass(x) -> tuple[float, float]:
    """(row, column) of the centre of mass: sum_ij x_ij (i, j) / sum_ij x_ij, in pixel indices."""
    x = np.asarray(x, dtype=np.float64)
    total = x.sum()
    if total <= 0:
        raise BlankImageError("no digit found: the image has no ink to centre")
    rows, cols = np.arange(x.shape[0]), np.arange(x.shape[1])
    return float(x.sum(axis=1) @ rows / total), float(x.sum(axis=0) @ cols / total)


def centre_by_mass(x, frame: int = FRAME, centre: float = CENTRE) -> np.ndarray:
    """Paste ``x`` into a black ``frame`` x ``frame`` image so its centre of mass lands on (centre, centre).

    MNIST moves its digits by whole pixels, so the centre of mass ends within half a pixel of the
    target. A digit whose ink is so lopsided that the move would push part of it out of the frame
    is moved only as far as the frame's edge: no ink is cut off.

    Shape:
        (h, w) with h, w <= frame -> (frame, frame) float32
    """
    x = _check_gray("centre_by_mass", x)
    height, width = x.shape
    if height > frame or width > frame:
        raise ValueError(f"centre_by_mass: the digit ({height}x{width}) must fit in the {frame}x{frame} frame")
    row, col = centre_of_mass(x)
    top = min(max(round(centre - row), 0), frame - height)
    left = min(max(round(centre - col), 0), frame - width)
    out = np.zeros((frame, frame), dtype=np.float32)
    out[top : top + height, left : left + width] = x
    return out


def to_uint8(x) -> np.ndarray:
    """[0, 1] -> 0-255 rounded, as MNIST stores its pixels (scale_images goes back)."""
    return np.rint(np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0) * 255).astype(np.uint8)


def prepare_digit(gray) -> np.ndarray:
    """A picture of one digit as MNIST would have it: light_on_dark, crop_to_ink, scale_to_box,
    centre_by_mass, to_uint8 (see the module docstring). Needs Pillow (for scale_to_box).

    Shape:
        (H, W) gray levels in [0, 1] -> (28, 28) uint8
    """
    return to_uint8(centre_by_mass(scale_to_box(crop_to_ink(light_on_dark(gray)))))
