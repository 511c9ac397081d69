"""The IDX file format (MNIST's): a strict reader and a small atomic writer.

An IDX file is a 4-byte magic number, then one big-endian unsigned 32-bit size per dimension,
then the payload in row-major (C) order, big-endian:

    byte 0, 1   zero
    byte 2      type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte 3      number of dimensions D
    4 * D bytes the sizes, big-endian uint32
    payload     prod(sizes) * itemsize bytes, nothing more, nothing less

Files may be gzip-compressed; the reader recognises gzip by its magic bytes, not by the name.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import stat
import zlib
from pathlib import Path

import numpy as np

from ..atomic_file import atomic_write

# type code -> big-endian dtype of the payload
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TYPE_NAMES = {0x08: "ubyte", 0x09: "byte", 0x0B: "short", 0x0C: "int", 0x0D: "float", 0x0E: "double"}
_GZIP_MAGIC = b"\x1f\x8b"
# numpy's own limit on dimensions (32 before numpy 2, 64 since)
_MAX_DIMS = 64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32
# gzip is decompressed in chunks of this size (1 MiB reads are ~2x faster than one huge readinto)
_CHUNK = 1 << 20


class IDXFormatError(ValueError):
    """The bytes are not a valid IDX file; the message says what is wrong and where."""


def parse_header(data, source: str = "IDX data") -> tuple[np.dtype, tuple[int, ...], int]:
    """Check an IDX header and return (payload dtype, shape, header length in bytes).

    ``data`` holds at least the header (extra bytes are ignored here).
    """
    if len(data) < 4:
        raise IDXFormatError(f"{source}: too short for an IDX header: {len(data)} bytes, expected at least 4")
    if data[0] != 0 or data[1] != 0:
        raise IDXFormatError(
            f"{source}: not an IDX file: the first two bytes must be zero, got {bytes(data[:2]).hex(' ')}"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} {n}" for c, n in _TYPE_NAMES.items())
        raise IDXFormatError(f"{source}: unknown IDX type code 0x{code:02X}; expected one of {known}")
    if not 1 <= ndim <= _MAX_DIMS:
        raise IDXFormatError(f"{source}: number of dimensions must be 1 to {_MAX_DIMS}, got {ndim}")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise IDXFormatError(
            f"{source}: header truncated: {ndim} dimensions need {header_len} header bytes, got {len(data)}"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return IDX_DTYPES[code], shape, header_len


def _payload_size(dtype: np.dtype, shape: tuple[int, ...]) -> int:
    size = dtype.itemsize
    for n in shape:
        size *= n
    return size


def parse_buffer(buffer, source: str = "IDX data", copy: bool = True) -> np.ndarray:
    """Parse a complete, uncompressed IDX file held in memory.

    With ``copy=False`` and a writable buffer (``bytearray``) a uint8/int8 result is a view of the
    buffer: no second copy of the data, which is how MNIST loading stays within 1x its size.

    Shape:
        the shape the header declares; the dtype is the native-endian twin of the payload's.
    """
    dtype, shape, header_len = parse_header(buffer, source)
    expected = _payload_size(dtype, shape)
    got = len(buffer) - header_len
    if got != expected:
        which = "truncated" if got < expected else "has trailing bytes"
        raise IDXFormatError(
            f"{source}: payload {which}: shape {shape} of {dtype.name} needs {expected} bytes "
            f"after the {header_len}-byte header, got {got}"
        )
    # The payload fits, yet numpy refuses any shape whose nonzero dimensions span more bytes than
    # an index can address, even when another dimension is 0 and the array would be empty.
    span = dtype.itemsize * math.prod(n for n in shape if n)
    if span > np.iinfo(np.intp).max:
        raise IDXFormatError(
            f"{source}: shape {shape} of {dtype.name} is too large for an array "
            f"({span} bytes across its nonzero dimensions, at most {np.iinfo(np.intp).max})"
        )
    array = np.frombuffer(buffer, dtype=dtype, count=expected // dtype.itemsize, offset=header_len)
    array = array.reshape(shape)
    native = dtype.newbyteorder("=")
    if native != dtype or copy or not array.flags.writeable:
        # astype always copies here: big-endian -> native, or an owned, writable array
        array = array.astype(native)
    return array


def _read_gzip(fileobj, source: str) -> bytearray:
    """Decompress gzip content whose inner file is IDX, reading exactly what the header declares."""
    try:
        with gzip.GzipFile(fileobj=fileobj, mode="rb") as stream:
            head = stream.read(4)
            if len(head) == 4 and head[:2] == b"\0\0" and head[2] in IDX_DTYPES:
                head += stream.read(4 * head[3])
            dtype, shape, header_len = parse_header(head, source)
            total = header_len + _payload_size(dtype, shape)
            buffer = bytearray(head)
            # append chunk by chunk: memory follows the data actually present, so a header
            # claiming terabytes fails on the short data instead of on a huge allocation
            while len(buffer) < total:
                chunk = stream.read(min(total - len(buffer), _CHUNK))
                if not chunk:
                    raise IDXFormatError(
                        f"{source}: payload truncated: shape {shape} of {dtype.name} needs "
                        f"{total - header_len} bytes after the header, got {len(buffer) - header_len}"
                    )
                buffer += chunk
            # reading one byte more also makes gzip check its CRC and length trailer
            if stream.read(1):
                raise IDXFormatError(
                    f"{source}: payload has trailing bytes after the {total - header_len} bytes "
                    f"that shape {shape} of {dtype.name} needs"
                )
    except (OSError, EOFError, zlib.error) as error:
        raise IDXFormatError(f"{source}: invalid gzip data ({error})") from None
    return buffer


def _open_regular(path: Path, source: str):
    """``open(path, "rb")`` for a regular file only: a FIFO would block the read forever."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IDXFormatError(f"{source}: not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_raw(f, source: str) -> np.ndarray:
    """An uncompressed IDX file, its header checked against the file's size before the payload is
    read: a header that does not match costs its few bytes, not a read of the whole file."""
    size = os.fstat(f.fileno()).st_size
    f.seek(0)
    head = f.read(4)
    if len(head) == 4 and head[:2] == b"\0\0" and head[2] in IDX_DTYPES:
        head += f.read(4 * head[3])
    dtype, shape, header_len = parse_header(head, source)
    expected = _payload_size(dtype, shape)
    if size - header_len != expected:
        which = "truncated" if size - header_len < expected else "has trailing bytes"
        raise IDXFormatError(
            f"{source}: payload {which}: shape {shape} of {dtype.name} needs {expected} bytes "
            f"after the {header_len}-byte header, got {size - header_len}"
        )
    buffer = bytearray(size)
    buffer[:header_len] = head
    filled = header_len
    while filled < size and (n := f.readinto(memoryview(buffer)[filled:])):
        filled += n
    return parse_buffer(memoryview(buffer)[:filled], source, copy=False)


def read_idx(path_or_bytes) -> np.ndarray:
    """Read an IDX file (raw or gzip) from a path or from its bytes into a native-endian array.

    Strict: the two zero bytes, a known type code, 1 or more dimensions, big-endian uint32 sizes
    and a payload of exactly the declared length; anything else raises ``IDXFormatError``.
    ``bytes``/``bytearray``/``memoryview`` are file contents, ``str``/``os.PathLike`` a path.

    Shape:
        the shape the header declares, e.g. (60000, 28, 28) uint8 for MNIST training images.
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = memoryview(path_or_bytes).cast("B")
        source = "IDX data"
        if data[:2] == _GZIP_MAGIC:
            return parse_buffer(_read_gzip(io.BytesIO(data), source), source, copy=False)
        return parse_buffer(data, source, copy=True)
    if isinstance(path_or_bytes, (str, os.PathLike)):
        path = Path(path_or_bytes)
        source = str(path)
        with _open_regular(path, source) as f:
            if f.read(2) == _GZIP_MAGIC:
                f.seek(0)
                return parse_buffer(_read_gzip(f, source), source, copy=False)
            return _read_raw(f, source)
    raise TypeError(
        f"read_idx: expected a path (str or os.PathLike) or the file's bytes, "
        f"got {type(path_or_bytes).__name__}"
    )


def idx_bytes(array) -> bytes:
    """The uncompressed IDX encoding of ``array`` (header and big-endian payload)."""
    array = np.asarray(array)
    codes = {(d.kind, d.itemsize): c for c, d in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if (native.kind, native.itemsize) not in codes:
        names = ", ".join(d.newbyteorder("=").name for d in IDX_DTYPES.values())
        raise TypeError(f"write_idx: IDX stores only {names}; got an array of {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: IDX needs 1 to 255 dimensions, got an array of shape {array.shape}")
    if any(n >= 2**32 for n in array.shape):
        raise ValueError(f"write_idx: IDX sizes are uint32; shape {array.shape} does not fit")
    header = bytes([0, 0, codes[native.kind, native.itemsize], array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=native.newbyteorder(">")).tobytes()


def write_idx(path, array) -> Path:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz``; atomic.

    The bytes go to a temporary file in the same directory, which then replaces ``path``, so a
    reader never sees half a file (``nnscratch.atomic_file``). Returns the path.

    Shape:
        any shape with 1 to 255 dimensions; dtype uint8, int8, int16, int32, float32 or float64.
    """
    path = Path(path)
    data = idx_bytes(array)
    if path.name.endswith(".gz"):
        # mtime=0: the same array always gives the same bytes
        data = gzip.compress(data, mtime=0)
    with atomic_write(path) as f:
        f.write(data)
    return path
