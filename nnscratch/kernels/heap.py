"""Hand memory the process has freed back to the operating system, where the C library keeps it.

glibc's malloc serves large blocks with mmap and unmaps them when freed, but only above a threshold
that it raises to the size of every such block freed (up to 32 MiB on 64-bit). After a layer drops
a few large buffers, the next arrays of up to that size come from the heap instead, and freeing them
leaves the pages mapped to the process for reuse. Measured with the cnn preset predicting 10,000
MNIST-sized images in batches of 1000 (72 MB of RSS before): with every layer's buffers dropped, the
process still held 140 MB when predict returned; with ``malloc_trim(0)`` called there, 76 MB. ``malloc_trim`` costs a walk over
the allocator's free lists, a few milliseconds at most, so it runs once at the end of ``predict`` or
``evaluate``, never per batch or per training step.

Other C libraries (musl, macOS, Windows) have no ``malloc_trim``; there ``trim`` does nothing.
"""

from __future__ import annotations

import ctypes
import sys

_UNSET = object()
_malloc_trim = _UNSET


def _find_malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None).malloc_trim  # the C library this interpreter already runs on
    except (OSError, AttributeError):  # no such symbol: not glibc
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return function


def trim() -> bool:
    """Return the freed memory at the heap's top and inside it to the system (glibc); True if the
    C library has a way to and did release something."""
    global _malloc_trim
    if _malloc_trim is _UNSET:
        _malloc_trim = _find_malloc_trim()
    return bool(_malloc_trim(0)) if _malloc_trim is not None else False
