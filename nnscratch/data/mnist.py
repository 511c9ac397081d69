"""MNIST: download once from a mirror, verify, cache decompressed, and load in a fraction of a second.

The cache is the four decompressed IDX files in the data directory; their SHA-256 sums are pinned
in ``SHA256``, so a cached file is checked on every load (hashing 55 MB takes tens of ms) and a
truncated or altered file is never returned as data.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import numpy as np

from ..atomic_file import NotRegularFileError, check_replaceable
from . import download as _download  # the module; load_mnist has a `download` flag
from .download import FetchError, install_verified, sha256_of
from .idx import IDXFormatError, parse_buffer

# The four files, by their standard (decompressed) names; mirrors serve them with ".gz" appended.
FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# SHA-256 of the decompressed files (from shared/data/mnist/README.md): content, not archive, so any
# mirror with any gzip settings verifies. Looked up at call time: tests may monkeypatch it.
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
DATA_DIR_ENV = "NNSCRATCH_DATA_DIR"
DEFAULT_DATA_DIR = Path("data") / "mnist"
NUM_CLASSES = 10


class MNISTCacheError(ValueError):
    """A cached MNIST file is missing, truncated or altered and downloading is off; the message
    names the file and the fix."""


def resolve_data_dir(data_dir=None) -> Path:
    """The MNIST directory: the argument, else ``$NNSCRATCH_DATA_DIR``, else ``./data/mnist`` (absolute)."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV, "").strip() or DEFAULT_DATA_DIR
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir: expected a path (str or os.PathLike), got {type(data_dir).__name__}")
    return Path(data_dir).expanduser().absolute()


def _verified(path: Path, name: str) -> bool:
    """Whether the cached ``path`` exists and hashes to the pinned SHA-256 of ``name``."""
    return path.is_file() and path.stat().st_size <= _download.MAX_BYTES and sha256_of(path) == SHA256[name]


def download_mnist(data_dir=None, mirrors=None, force=False, progress=True, deadline=None) -> Path:
    """Make sure the four verified MNIST files are in the data directory; returns that directory.

    Files already there and verified are kept without any network access. Missing or bad files
    come from ``NAME.gz`` placed in the directory by hand, else from the mirrors in order (see
    ``resolve_mirrors``; mirrors are only looked at when something must be downloaded).
    ``force`` downloads all four again from the mirrors; the old files are replaced only by
    verified new ones. Raises ``MNISTDownloadError`` when some file could not be obtained;
    the files that were obtained stay. ``deadline``: the seconds one mirror may take for one file,
    retries included (default ``$NNSCRATCH_DOWNLOAD_DEADLINE``, else 300; see ``resolve_deadline``);
    a mirror that runs out of time, stalls or is too slow is not tried again for the other files
    (``download.fetch_all``).
    """
    return _ensure(resolve_data_dir(data_dir), FILES, mirrors, force, progress, deadline)


def _make_room(path: Path) -> None:
    """Let a fetched file take ``path``: an empty directory there (where a cache file was) is
    removed; a directory with something in it is the user's, left alone, and an error, and so is
    anything else that is not a regular file (a FIFO, a device node: never replaced by a file)."""
    if path.is_dir() and not path.is_symlink():
        try:
            os.rmdir(path)
        except OSError:
            raise MNISTCacheError(
                f"MNIST file {path} is a directory with files in it, not the MNIST file; move it away "
                "and run again (nnscratch does not delete a directory's contents)"
            ) from None
    try:
        check_replaceable(path)
    except NotRegularFileError as error:
        raise MNISTCacheError(f"MNIST file {path} is {error.strerror}; move it away and run again") from None


def _ensure(root: Path, names, mirrors, force: bool, progress: bool, deadline=None) -> Path:
    deadline = _download.resolve_deadline(deadline)  # a bad value fails before anything is done
    root.mkdir(parents=True, exist_ok=True)
    needed = [name for name in names if force or not _verified(root / name, name)]
    for name in needed:
        _make_room(root / name)
    if not force:
        for name in list(needed):
            local = root / f"{name}.gz"
            if local.is_file():
                try:
                    install_verified(local, SHA256[name], root / name)
                    needed.remove(name)
                except FetchError:
                    pass  # a bad hand-placed archive: download instead, and leave it alone
    if not needed:
        return root
    _download.fetch_all(root, needed, SHA256, mirrors, progress, deadline)
    return root


def _read_verified(path: Path, name: str) -> np.ndarray:
    """Read one cached file into memory once, check its SHA-256 and parse it without a copy."""
    fix = f"Run `nnscratch download-mnist --force --data-dir {path.parent}` to fetch it again."
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a directory, or a FIFO that would block the read
            raise MNISTCacheError(f"MNIST file {path} is not a regular file. {fix}")
        size = info.st_size
        if size > _download.MAX_BYTES:  # not MNIST, and too big to read just to find that out
            raise MNISTCacheError(f"MNIST file {path} is {size} bytes, far more than MNIST's. {fix}")
        buffer = bytearray(size)
        with open(path, "rb", buffering=0) as f:
            filled = 0
            while filled < size and (n := f.readinto(memoryview(buffer)[filled:])):
                filled += n
    except FileNotFoundError:
        raise MNISTCacheError(
            f"MNIST file {path} is missing. Run `nnscratch download-mnist --data-dir {path.parent}` "
            "(or load_mnist(download=True)) to fetch it."
        ) from None
    # hashed in place: no second copy of the file
    digest = hashlib.sha256(memoryview(buffer)[:filled]).hexdigest()
    if filled != size or digest != SHA256[name]:
        raise MNISTCacheError(
            f"MNIST file {path} is altered or truncated: its SHA-256 is {digest[:16]}..., "
            f"expected {SHA256[name][:16]}... ({filled} bytes). {fix}"
        )
    return parse_buffer(buffer, str(path), copy=False)


def load_mnist(data_dir=None, download=True, mirrors=None, progress=True, deadline=None):
    """Load MNIST as ``(x_train, y_train, x_test, y_test)``, downloading what the cache lacks.

    Every cached file is verified against ``SHA256`` first. A missing or bad file is fetched again
    when ``download`` is true (within ``deadline``: see ``download_mnist``), and raises
    ``MNISTCacheError`` (a ``ValueError``) otherwise.

    Shape:
        x_train (60000, 28, 28) uint8, y_train (60000,) int64 in 0-9,
        x_test (10000, 28, 28) uint8, y_test (10000,) int64 in 0-9.
    """
    root = resolve_data_dir(data_dir)
    arrays, bad = {}, []
    for name in FILES:
        try:
            arrays[name] = _read_verified(root / name, name)
        except MNISTCacheError:
            if not download:
                raise
            bad.append(name)
    if bad:
        _ensure(root, bad, mirrors, force=False, progress=progress, deadline=deadline)
        for name in bad:
            arrays[name] = _read_verified(root / name, name)
    x_train, y_train = _pair(arrays, "train", root)
    x_test, y_test = _pair(arrays, "t10k", root)
    return x_train, y_train, x_test, y_test


def _pair(arrays: dict, prefix: str, root: Path):
    """Check one images/labels pair for consistency and return (images, int64 labels)."""
    images, labels = arrays[f"{prefix}-images-idx3-ubyte"], arrays[f"{prefix}-labels-idx1-ubyte"]
    where = f"MNIST files {prefix}-images-idx3-ubyte / {prefix}-labels-idx1-ubyte in {root}"
    if images.ndim != 3 or images.dtype != np.uint8:
        raise IDXFormatError(f"{where}: images must be 3-D uint8, got shape {images.shape} {images.dtype}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise IDXFormatError(f"{where}: labels must be 1-D uint8, got shape {labels.shape} {labels.dtype}")
    if len(images) != len(labels):
        raise IDXFormatError(f"{where}: {len(images)} images but {len(labels)} labels")
    if labels.size and labels.max() >= NUM_CLASSES:
        raise IDXFormatError(f"{where}: labels must be 0-9, found {int(labels.max())}")
    return images, labels.astype(np.int64)


def scale_images(x, dtype=np.float32) -> np.ndarray:
    """Pixels from uint8 0-255 to floats in [0, 1]: x / 255.

    Shape:
        any, e.g. (N, 28, 28) -> (N, 28, 28); add the channel axis with ``x[:, None]`` for conv layers.
    """
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise TypeError(f"scale_images: expected uint8 pixels 0-255, got an array of {x.dtype}")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"scale_images: dtype must be a float type, got {dtype}")
    out = x.astype(dtype)
    out /= 255  # in place: one output array, no float temporary
    return out


def one_hot(labels, num_classes=NUM_CLASSES, dtype=np.float32) -> np.ndarray:
    """Class indices to one-hot rows: out[i, labels[i]] = 1, zeros elsewhere.

    Shape:
        labels (N,) integers in [0, num_classes) -> (N, num_classes).
    """
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"one_hot: labels must be integers, got an array of {labels.dtype}")
    if labels.ndim != 1:
        raise ValueError(f"one_hot: labels must be 1-D (N,), got shape {labels.shape}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"one_hot: num_classes must be a positive int, got {num_classes!r}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"one_hot: labels must be in [0, {num_classes}), got values from {labels.min()} to {labels.max()}"
        )
    out = np.zeros((labels.shape[0], int(num_classes)), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out
