"""The bounded archive reader: the members of an uncompressed zip of ``.npy`` arrays, each read
into memory the caller has already sized, in bounded chunks, never beyond its stated size.

Only a regular file is opened (a FIFO would block, a device could stream forever). Every member
must be stored uncompressed, so none holds more bytes than it takes on disk, and the members read
must fit in the file together (no two share bytes, as in a zip bomb). Each ``.npy`` header is read
from at most ``NPY_HEADER_BYTES`` and checked against the member's size before its data is read.

Every problem is ``checker.fail(message)`` (see ``nnscratch.io.format.Checker``), which raises
a ``ValueError`` naming the file.
"""

from __future__ import annotations

import io
import math
import os
import stat
import zipfile
from pathlib import Path

import numpy as np

MAX_NDIM = 8  # a member with more axes is not a parameter of any layer
NPY_HEADER_BYTES = 4096  # np.save writes 128; anything much larger is not ours
CHUNK = 1 << 20  # bytes read from a member at a time


class Archive:
    """The members of an uncompressed zip, read one at a time and never beyond their stated size.

    ``members`` maps each member's name (without ``.npy``) to its ``ZipInfo``. Use it as a
    context manager: the file is closed on leaving.
    """

    def __init__(self, path: Path, checker):
        self.checker = checker
        self.file = open_regular(path, checker)
        try:
            self.size = os.fstat(self.file.fileno()).st_size
            self.zip = zipfile.ZipFile(self.file)
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError) as error:
            self.file.seek(0)
            magic = self.file.read(6)
            self.close()
            if magic == b"\x93NUMPY":
                checker.fail("not an nnscratch checkpoint: a single .npy array, expected an .npz archive")
            checker.fail(f"not a readable nnscratch checkpoint (.npz): {type(error).__name__}: {error}")
        self.members = {}
        for info in infos:
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if name in self.members:
                self.close()
                checker.fail(f"not an nnscratch checkpoint: the member {name!r:.100} appears twice")
            self.members[name] = info

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = self.members[name]
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            self.checker.fail(
                f"the member {name!r} is compressed; checkpoints are stored uncompressed (as save writes "
                "them), so that loading one costs no more memory than its size on disk"
            )
        if info.file_size > self.size:
            self.checker.fail(f"the member {name!r} says it holds {info.file_size} bytes, the file has {self.size}")
        return info

    def check_total(self, names) -> None:
        """The members to be read fit in the file together (no two share bytes: no zip bomb)."""
        total = sum(self._info(name).file_size for name in names)
        if total > self.size:
            self.checker.fail(f"the members say they hold {total} bytes, more than the file's {self.size}")

    def npy_header(self, name: str) -> tuple:
        """(shape, dtype, fortran_order, data offset) of member ``name``, its size checked."""
        info = self._info(name)
        try:
            with self.zip.open(info) as member:
                start = io.BytesIO(member.read(min(info.file_size, NPY_HEADER_BYTES)))
            version = np.lib.format.read_magic(start)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(start, NPY_HEADER_BYTES)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(start, NPY_HEADER_BYTES)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except Exception as error:  # zipfile, zlib and numpy's own format errors, all of them
            self.checker.fail(f"the member {name!r} is not .npy data: {type(error).__name__}: {error}")
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
            self.checker.fail(f"the member {name!r} holds {dtype} data, not plain numbers or text (object arrays would need pickle, which is never used)")
        if len(shape) > MAX_NDIM:
            self.checker.fail(f"the member {name!r} has {len(shape)} dimensions")
        offset = start.tell()
        if info.file_size - offset != math.prod(shape) * dtype.itemsize:
            self.checker.fail(
                f"the member {name!r} holds {info.file_size - offset} bytes of data, its .npy header "
                f"announces {shape} {dtype} ({math.prod(shape) * dtype.itemsize} bytes)"
            )
        return shape, dtype, fortran_order, offset

    def read_into(self, name: str, out: np.ndarray, fortran_order: bool, offset: int) -> None:
        """Fill ``out`` (C order, of the member's shape and dtype) with the member's data."""
        info = self._info(name)
        # A Fortran-order member holds the transpose's bytes in C order.
        staging = np.empty(out.shape[::-1], out.dtype) if fortran_order and out.ndim > 1 else out
        buffer = memoryview(staging.reshape(-1).view(np.uint8))
        try:
            with self.zip.open(info) as member:
                member.read(offset)
                done = 0
                while done < len(buffer):
                    got = member.readinto(buffer[done : done + CHUNK])
                    if not got:
                        raise EOFError(f"{done} of {len(buffer)} bytes")
                    done += got
                if member.read(1):  # also makes zipfile check the CRC
                    raise ValueError("more data than announced")
        except Exception as error:  # truncation, CRC mismatch, I/O errors
            self.checker.fail(f"the member {name!r} cannot be read: {type(error).__name__}: {error}")
        if staging is not out:
            out[...] = staging.T

    def text(self, name: str, max_chars: int) -> str:
        """The text of member ``name`` (a 0-d unicode array), refused unread if it could hold more
        than ``max_chars`` characters."""
        info = self._info(name)
        if info.file_size > NPY_HEADER_BYTES + 4 * max_chars:
            self.checker.fail(f"the {name} is {info.file_size} bytes, more than a checkpoint's header may be")
        shape, dtype, _, offset = self.npy_header(name)
        if dtype.kind != "U" or shape != ():
            self.checker.fail(f"not an nnscratch checkpoint: the {name} is {shape} {dtype}, not text")
        if dtype.itemsize > 4 * max_chars:
            self.checker.fail(f"the {name} has {dtype.itemsize // 4} characters, more than {max_chars}")
        value = np.empty((), dtype)
        self.read_into(name, value, False, offset)
        try:
            return value.item()  # a str, converted once (str(value[()]) converts twice, 7x slower)
        except (ValueError, UnicodeError) as error:
            self.checker.fail(f"the {name} is not valid text: {error}")


def open_regular(path: Path, checker):
    """Open ``path`` for reading if it is a regular file; a FIFO or device is refused, not waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except IsADirectoryError:
        checker.fail("not a regular file (a directory)")
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            checker.fail("not a regular file (a directory)")
        if not stat.S_ISREG(mode):
            checker.fail("not a regular file (a FIFO, device or socket cannot be a checkpoint)")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
