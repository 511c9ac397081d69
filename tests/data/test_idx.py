"""The IDX reader and writer, against hand-built bytes and a naive struct-based reference parser."""

from __future__ import annotations

import gzip
import math
import os
import stat
import struct
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnscratch.data import IDXFormatError, read_idx, write_idx

# type code -> struct format letter, as written in the IDX description
STRUCT_FORMATS = {0x08: "B", 0x09: "b", 0x0B: "h", 0x0C: "i", 0x0D: "f", 0x0E: "d"}
NUMPY_DIMS_LIMIT = 64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32


def header(code, shape):
    return bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", n) for n in shape)


def naive_parse(data: bytes):
    """The obvious slow reader: (struct letter, shape, values) or None when the bytes are invalid."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in STRUCT_FORMATS:
        return None
    letter, ndim = STRUCT_FORMATS[data[2]], data[3]
    if ndim == 0 or ndim > NUMPY_DIMS_LIMIT or len(data) < 4 + 4 * ndim:
        return None
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    if struct.calcsize(letter) * math.prod(n for n in shape if n) > sys.maxsize:
        return None  # no numpy array has such a shape, not even an empty one
    count = math.prod(shape)
    payload = data[4 + 4 * ndim :]
    if len(payload) != count * struct.calcsize(letter):
        return None
    return letter, shape, struct.unpack(">" + letter * count, payload)


def assert_matches_reference(array, reference):
    letter, shape, values = reference
    assert array.shape == shape
    assert array.dtype == np.dtype(letter)
    assert array.dtype.isnative
    np.testing.assert_array_equal(array.ravel(), np.array(values, dtype=np.dtype(letter)))


# -- reading: values -----------------------------------------------------------------------------
def test_reads_hand_built_ubyte_matrix():
    data = b"\x00\x00\x08\x02" + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x03" + bytes([1, 2, 3, 4, 5, 255])
    array = read_idx(data)
    assert array.dtype == np.uint8
    np.testing.assert_array_equal(array, [[1, 2, 3], [4, 5, 255]])


@pytest.mark.parametrize(
    "code, values",
    [
        (0x08, [0, 1, 128, 255]),
        (0x09, [-128, -1, 0, 127]),
        (0x0B, [-32768, -2, 258, 32767]),
        (0x0C, [-(2**31), -70000, 65536 + 3, 2**31 - 1]),
        (0x0D, [-1.5, 0.0, 3.25, 1e30]),
        (0x0E, [-1e-300, 2.5, math.pi, 1e300]),
    ],
)
def test_reads_every_type_code_big_endian(code, values):
    letter = STRUCT_FORMATS[code]
    data = header(code, (2, 2)) + struct.pack(">" + letter * 4, *values)
    array = read_idx(data)
    assert array.dtype == np.dtype(letter) and array.dtype.isnative
    assert array.shape == (2, 2)
    # struct's round trip gives the float32-rounded value for 0x0D
    expected = struct.unpack(">" + letter * 4, struct.pack(">" + letter * 4, *values))
    assert array.ravel().tolist() == list(expected)
    assert array.flags.writeable


def test_zero_sized_dimension_is_an_empty_array():
    array = read_idx(header(0x0C, (0, 5)))
    assert array.shape == (0, 5) and array.dtype == np.int32


def test_raw_gzip_path_and_buffers_agree(tmp_path):
    expected = np.arange(-6, 6, dtype=np.int16).reshape(3, 4)
    raw = header(0x0B, (3, 4)) + expected.astype(">i2").tobytes()
    (tmp_path / "a.idx").write_bytes(raw)
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "gz-without-suffix").write_bytes(gzip.compress(raw))  # gzip is found by its magic
    sources = [raw, bytearray(raw), memoryview(raw), gzip.compress(raw), tmp_path / "a.idx",
               str(tmp_path / "a.idx.gz"), tmp_path / "gz-without-suffix"]
    for source in sources:
        array = read_idx(source)
        np.testing.assert_array_equal(array, expected)
        assert array.dtype == np.int16 and array.flags.writeable


def test_result_does_not_alias_the_caller_buffer():
    data = bytearray(header(0x08, (3,)) + bytes([7, 8, 9]))
    array = read_idx(data)
    data[-1] = 0
    assert array.tolist() == [7, 8, 9]


# -- reading: errors -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "too short for an IDX header: 0 bytes"),
        (b"\x00\x00\x08", "too short"),
        (b"\x00\x01\x08\x01\x00\x00\x00\x00", "first two bytes must be zero, got 00 01"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x00", "first two bytes must be zero"),
        (b"\x00\x00\x0a\x01\x00\x00\x00\x00", "unknown IDX type code 0x0A"),
        (b"\x00\x00\x08\x00", "number of dimensions must be 1 to"),
        (b"\x00\x00\x08\xff" + b"\x00" * 1020, "number of dimensions must be 1 to"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x01\x00\x00", "header truncated: 2 dimensions need 12 header bytes, got 10"),
        (header(0x08, (3,)) + b"\x01\x02", r"payload truncated: shape \(3,\) of uint8 needs 3 bytes .* got 2"),
        (header(0x0C, (2,)) + b"\x00" * 9, r"payload has trailing bytes: shape \(2,\) of int32 needs 8 bytes .* got 9"),
        (header(0x08, (2**32 - 1, 2**32 - 1)), "payload truncated"),  # no 16 EB allocation
    ],
)
def test_malformed_raw_data_raises(data, match):
    with pytest.raises(IDXFormatError, match=match):
        read_idx(data)


def test_idx_format_error_is_a_value_error_naming_the_file(tmp_path):
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05\x01")
    with pytest.raises(ValueError, match=f"{path.name}: payload truncated"):
        read_idx(path)


GOOD = header(0x08, (3,)) + bytes([1, 2, 3])


@pytest.mark.parametrize(
    "data, match",
    [
        (gzip.compress(GOOD)[:-5], "invalid gzip data"),  # trailer cut off
        (gzip.compress(GOOD)[:12], "invalid gzip data|too short"),  # cut inside the deflate stream
        (gzip.compress(GOOD) + b"junk", "invalid gzip data"),
        (gzip.compress(GOOD)[:-8] + b"\x00\x00\x00\x00" + gzip.compress(GOOD)[-4:], "invalid gzip data"),  # CRC
        (b"\x1f\x8b\x08" + b"\x00" * 20, "invalid gzip data"),
        (gzip.compress(header(0x08, (3,)) + bytes([1, 2])), r"payload truncated: shape \(3,\)"),
        (gzip.compress(GOOD + b"\x04"), "payload has trailing bytes"),
        (gzip.compress(b"\x00\x00\x07\x01"), "unknown IDX type code 0x07"),
        (gzip.compress(gzip.compress(GOOD)), "first two bytes must be zero, got 1f 8b"),
        (gzip.compress(header(0x08, (2**32 - 1, 2**32 - 1)) + b"\x01"), "payload truncated"),
    ],
)
def test_malformed_gzip_raises(data, match):
    with pytest.raises(IDXFormatError, match=match):
        read_idx(data)


def test_gzip_with_trailing_zero_padding_is_accepted():
    # gzip tools pad archives with zeros (tape blocks); Python's gzip module skips them too
    np.testing.assert_array_equal(read_idx(gzip.compress(GOOD) + b"\x00" * 16), [1, 2, 3])


def test_read_idx_argument_errors(tmp_path):
    with pytest.raises(TypeError, match="expected a path .* got int"):
        read_idx(42)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


# -- writing ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "dtype, code", [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C),
                    (np.float32, 0x0D), (np.float64, 0x0E)]
)
def test_write_idx_bytes_match_the_format(tmp_path, dtype, code):
    array = (np.arange(6).reshape(1, 2, 3) - 2).astype(dtype)
    letter = STRUCT_FORMATS[code]
    expected = header(code, (1, 2, 3)) + struct.pack(">" + letter * 6, *array.ravel().tolist())
    assert write_idx(tmp_path / "a.idx", array).read_bytes() == expected
    assert gzip.decompress(write_idx(tmp_path / "a.idx.gz", array).read_bytes()) == expected
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx.gz"), array)
    # big-endian input arrays are written the same
    assert write_idx(tmp_path / "b.idx", array.astype(array.dtype.newbyteorder(">"))).read_bytes() == expected


def test_write_idx_is_atomic_and_deterministic(tmp_path):
    path = tmp_path / "x.idx.gz"
    path.write_bytes(b"old content")
    write_idx(path, np.zeros(4, np.uint8))
    first = path.read_bytes()
    write_idx(path, np.zeros(4, np.uint8))
    assert path.read_bytes() == first  # mtime=0 in the gzip header
    assert sorted(os.listdir(tmp_path)) == ["x.idx.gz"]  # no temporary file left behind


def test_write_idx_failure_leaves_the_old_file(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(b"old")
    with pytest.raises(TypeError, match="IDX stores only uint8, int8, int16, int32, float32, float64; got .*int64"):
        write_idx(path, np.zeros(3, np.int64))
    with pytest.raises(TypeError, match="bool"):
        write_idx(path, np.zeros(3, bool))
    with pytest.raises(ValueError, match=r"1 to 255 dimensions, got an array of shape \(\)"):
        write_idx(path, np.uint8(3))
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["x.idx"]


def test_write_idx_gives_the_permissions_the_umask_gives_a_new_file(tmp_path, umask):
    umask(0o027)  # a temporary file from mkstemp is 0o600; the written file must not stay so
    for name in ("x.idx", "x.idx.gz"):
        assert stat.S_IMODE(write_idx(tmp_path / name, np.zeros(4, np.uint8)).stat().st_mode) == 0o640


# -- fuzzing: IDXFormatError or exactly what the naive parser reads, nothing else -----------------
def check_against_reference(data: bytes, compressed: bool = False):
    try:
        array = read_idx(data)
    except IDXFormatError:
        array = None
    if compressed:
        try:
            inner = gzip.decompress(data)
        except Exception:  # noqa: BLE001 - anything gzip rejects must be rejected by read_idx
            inner = None
        reference = naive_parse(inner) if inner is not None else None
    else:
        reference = naive_parse(data)
    if reference is None:
        assert array is None, f"read_idx accepted bytes the reference rejects: {data[:40]!r}"
    else:
        assert array is not None, f"read_idx rejected bytes the reference accepts: {data[:40]!r}"
        assert_matches_reference(array, reference)


@st.composite
def valid_idx(draw):
    code = draw(st.sampled_from(sorted(STRUCT_FORMATS)))
    shape = draw(st.lists(st.integers(0, 4), min_size=1, max_size=3))
    size = math.prod(shape) * struct.calcsize(STRUCT_FORMATS[code])
    return header(code, shape) + draw(st.binary(min_size=size, max_size=size))


@st.composite
def mutated(draw, source):
    data = bytearray(draw(source))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "append"]))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete" and at < len(data):
            del data[at]
        elif kind == "append":
            data += draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
IDX_LIKE = st.builds(lambda code, ndim, rest: bytes([0, 0, code, ndim]) + rest,
                     st.sampled_from(sorted(STRUCT_FORMATS)), st.integers(0, 4), st.binary(max_size=64))


@FUZZ
@given(st.binary(max_size=64) | IDX_LIKE)
def test_fuzz_random_bytes(data):
    check_against_reference(data)


@FUZZ
@given(valid_idx())
def test_fuzz_valid_files_read_exactly(data):
    assert naive_parse(data) is not None
    check_against_reference(data)
    check_against_reference(gzip.compress(data), compressed=True)


@FUZZ
@given(mutated(valid_idx()))
def test_fuzz_mutated_raw_files(data):
    check_against_reference(data)


@FUZZ
@given(mutated(valid_idx().map(gzip.compress)))
def test_fuzz_mutated_gzip_files(data):
    check_against_reference(data, compressed=True)


@FUZZ
@given(mutated(valid_idx()).map(gzip.compress))
def test_fuzz_gzip_of_mutated_files(data):
    check_against_reference(data, compressed=True)


def test_header_whose_shape_no_array_can_have_is_a_format_error():
    # Found by the fuzzer: 838860800 x 0 x 1375731712 float64 is empty, yet numpy refuses the shape.
    data = header(0x0E, [838860800, 0, 1375731712])
    with pytest.raises(IDXFormatError, match=r"shape \(838860800, 0, 1375731712\) of float64 is too large"):
        read_idx(data)


def test_empty_array_with_a_representable_shape_still_reads():
    array = read_idx(header(0x0D, [0, 1000, 1000]))
    assert array.shape == (0, 1000, 1000) and array.dtype == np.float32


def test_a_huge_raw_file_whose_header_disagrees_is_refused_before_it_is_read(tmp_path):
    """A 3 GB raw file (sparse: no disk used) whose header says 1 byte: refused from its size."""
    import time
    import tracemalloc

    path = tmp_path / "huge-idx1-ubyte"
    with open(path, "wb") as f:
        f.write(b"\x00\x00\x08\x01\x00\x00\x00\x01")  # 1-D uint8, 1 element
        f.truncate(3 << 30)
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(IDXFormatError, match=r"huge-idx1-ubyte: payload has trailing bytes: shape \(1,\) of uint8 "
                                             r"needs 1 bytes after the 8-byte header, got 3221225464"):
        read_idx(path)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20 and seconds < 1  # it used to read all 3 GB first (24 s, 3.1 GB)


def test_a_fifo_is_refused_not_waited_on(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(IDXFormatError, match=r"pipe: not a regular file"):
        read_idx(tmp_path / "pipe")
