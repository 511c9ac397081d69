"""Data sets: the IDX format and MNIST."""

from .download import DEFAULT_MIRRORS, MNISTDownloadError, resolve_mirrors
from .idx import IDXFormatError, read_idx, write_idx
from .mnist import (
    FILES,
    SHA256,
    MNISTCacheError,
    download_mnist,
    load_mnist,
    one_hot,
    resolve_data_dir,
    scale_images,
)

__all__ = [
    "DEFAULT_MIRRORS",
    "FILES",
    "IDXFormatError",
    "MNISTCacheError",
    "MNISTDownloadError",
    "SHA256",
    "download_mnist",
    "load_mnist",
    "one_hot",
    "read_idx",
    "resolve_data_dir",
    "resolve_mirrors",
    "scale_images",
    "write_idx",
]
