"""read_digit: image files of every common kind, .npy arrays, and one clear error per bad file."""

import io
import os
import struct
import sys
import threading
import time
import zlib

import numpy as np
import pytest

from nnscratch.data import digit_files
from nnscratch.data.digit_files import DigitFileError, read_digit
from nnscratch.data.digits import prepare_digit

Image = pytest.importorskip("PIL.Image")


def page(height=120, width=90):
    """Dark ink (a '7' of two strokes) on white paper, as gray levels in [0, 1]."""
    gray = np.ones((height, width), dtype=np.float32)
    gray[20:28, 15:70] = 0.05
    for row in range(28, 100):
        col = 70 - (row - 28) // 3
        gray[row, col - 4 : col + 4] = 0.05
    return gray


def expected():
    return prepare_digit(page()).astype(np.float32) / 255


def save(path, gray, mode="L", **kwargs):
    """Save the gray levels as an image file (or into a BytesIO, given ``format=``); returns ``path``."""
    pixels = np.rint(gray * 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    if mode == "1":
        image = image.point(lambda v: 255 if v > 127 else 0).convert("1")  # thresholded, not dithered
    elif mode != "L":
        image = image.convert(mode)
    image.save(path, **kwargs)
    return path


# -- images --------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode, name", [("L", "d.png"), ("RGB", "d.png"), ("RGB", "d.bmp"), ("P", "d.gif"),
                                        ("RGBA", "d.png"), ("1", "d.png"), ("RGB", "d.tiff")])  # fmt: skip
def test_lossless_images_of_any_mode_give_the_prepared_digit(tmp_path, mode, name):
    x = read_digit(save(tmp_path / name, page(), mode))
    assert x.shape == (28, 28) and x.dtype == np.float32
    np.testing.assert_allclose(x, expected(), atol=1 / 255 + 1e-6)


def test_a_jpeg_gives_nearly_the_same_digit(tmp_path):
    x = read_digit(save(tmp_path / "d.jpg", page(), "RGB", quality=75))
    assert np.abs(x - expected()).mean() < 0.03


def test_a_16_bit_png(tmp_path):
    path = tmp_path / "d16.png"
    Image.fromarray((page() * 65535).astype(np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    np.testing.assert_allclose(read_digit(path), expected(), atol=1 / 255 + 1e-6)


@pytest.mark.parametrize("ink", [0, 255])
def test_a_transparent_background_keeps_dark_or_light_ink_visible(tmp_path, ink):
    # a drawing app's export: ink opaque, the rest fully transparent (its colour channels arbitrary)
    alpha = np.rint((1 - page()) / 0.95 * 255).astype(np.uint8)
    rgba = np.zeros((*alpha.shape, 4), dtype=np.uint8)
    rgba[..., :3] = ink
    rgba[..., 3] = alpha
    path = tmp_path / "t.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    np.testing.assert_allclose(read_digit(path), expected(), atol=2 / 255)


def test_a_large_photo_is_reduced_while_decoding_and_still_read(tmp_path, monkeypatch):
    monkeypatch.setattr(digit_files, "WORK_SIDE", 64)
    big = np.kron(page(), np.ones((8, 8), dtype=np.float32))  # 960x720
    x = read_digit(save(tmp_path / "big.png", big))
    assert np.abs(x - expected()).mean() < 0.03


def test_exif_orientation_is_applied(tmp_path):
    # stored sideways with the EXIF tag saying "rotate 90 degrees clockwise to view" (orientation 6)
    image = Image.fromarray(np.rint(np.rot90(page(), k=1) * 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "sideways.jpg"
    image.save(path, quality=95, exif=exif)
    assert np.abs(read_digit(path) - expected()).mean() < 0.03


# -- .npy ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(28, 28), (1, 28, 28), (784,)])
def test_npy_uint8_and_float_arrays_are_taken_as_they_are(tmp_path, shape):
    pixels = np.random.default_rng(0).integers(0, 256, size=(28, 28), dtype=np.uint8)
    np.save(tmp_path / "u.npy", pixels.reshape(shape))
    np.testing.assert_array_equal(read_digit(tmp_path / "u.npy"), pixels.astype(np.float32) / 255)
    np.save(tmp_path / "f.npy", (pixels / 255).reshape(shape))  # float64 in [0, 1]
    out = read_digit(tmp_path / "f.npy")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, pixels / 255, rtol=1e-6)
    np.save(tmp_path / "i.npy", pixels.astype(np.int64).reshape(shape))
    np.testing.assert_array_equal(read_digit(tmp_path / "i.npy"), pixels.astype(np.float32) / 255)


def test_npy_is_recognised_by_its_content_not_its_name(tmp_path):
    path = tmp_path / "digit.dat"
    with open(path, "wb") as f:
        np.save(f, np.zeros((28, 28), dtype=np.uint8))
    np.testing.assert_array_equal(read_digit(path), np.zeros((28, 28)))


def npy(tmp_path, array, name="a.npy", **kwargs):
    path = tmp_path / name
    np.save(path, array, **kwargs)
    return path


@pytest.mark.parametrize("array, message", [
    (np.zeros((28, 27)), r"expected one MNIST digit of shape \(28, 28\), \(1, 28, 28\) or \(784,\), got shape \(28, 27\)"),
    (np.zeros((2, 28, 28)), r"expected one MNIST digit of .*, got shape \(2, 28, 28\)$"),
    (np.zeros(()), r"expected one MNIST digit of .*, got shape \(\)$"),
    (np.zeros((28, 28), dtype=bool), "expected numeric pixels .*, got an array of bool"),
    (np.zeros((28, 28), dtype=complex), "expected numeric pixels .*, got an array of complex128"),
    (np.full((28, 28), 256, dtype=np.int16), "integer pixels must be 0-255, got values from 256 to 256"),
    (np.full((28, 28), -1, dtype=np.int8), "integer pixels must be 0-255, got values from -1 to -1"),
    (np.full((28, 28), 255.0), r"float pixels must be in \[0, 1\] as scale_images gives them, got values from 255 to 255 "
                               r"\(for 0-255 values, divide by 255"),
    (np.full((28, 28), np.nan), "the array holds NaN or infinite values"),
])  # fmt: skip
def test_bad_npy_arrays_are_refused_with_what_was_expected(tmp_path, array, message):
    path = npy(tmp_path, array)
    with pytest.raises(DigitFileError, match=f"^{path}: {message}"):
        read_digit(path)


def test_a_pickled_npy_is_never_unpickled(tmp_path):
    path = npy(tmp_path, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DigitFileError, match=f"^{path}: not a readable .npy array .*allow_pickle=False"):
        read_digit(path)


def test_truncated_and_oversized_npy(tmp_path, monkeypatch):
    path = npy(tmp_path, np.zeros((28, 28)))
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DigitFileError, match=f"^{path}: not a readable .npy array"):
        read_digit(path)
    big = npy(tmp_path, np.zeros((400, 400)), "big.npy")
    with pytest.raises(DigitFileError, match=f"^{big}: a .npy file of 1,280,128 bytes, far more than one 28x28 digit takes"):
        read_digit(big)


# -- files that are not digits -------------------------------------------------------------------
def test_missing_empty_directory_junk_and_zip_files(tmp_path):
    with pytest.raises(DigitFileError, match=f"^{tmp_path / 'nope.png'}: no such file$"):
        read_digit(tmp_path / "nope.png")
    with pytest.raises(DigitFileError, match=f"^{tmp_path}: is a directory, expected an image or .npy file$"):
        read_digit(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DigitFileError, match="empty.png: the file is empty$"):
        read_digit(tmp_path / "empty.png")
    (tmp_path / "notes.txt").write_text("seven")
    with pytest.raises(DigitFileError, match=r"notes.txt: not an image Pillow can read \(nor a .npy array\)$"):
        read_digit(tmp_path / "notes.txt")
    (tmp_path / "fake.npy").write_text("seven")
    with pytest.raises(DigitFileError, match="fake.npy: not a .npy file"):
        read_digit(tmp_path / "fake.npy")
    np.savez(tmp_path / "a.npz", x=np.zeros((28, 28)))
    with pytest.raises(DigitFileError, match=r"a.npz: a zip \(.npz\) archive; expected one image or one .npy array"):
        read_digit(tmp_path / "a.npz")


def test_an_unreadable_file(tmp_path, monkeypatch):
    path = save(tmp_path / "d.png", page())

    real_open = os.open

    def refuse(name, *args, **kwargs):  # chmod 0 would not stop root, who runs the tests in some setups
        if os.fspath(name) == os.fspath(path):
            raise PermissionError(13, "Permission denied")
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(digit_files.os, "open", refuse)
    with pytest.raises(DigitFileError, match=r"d.png: cannot read it \(Permission denied\)$"):
        read_digit(path)


def test_a_truncated_png(tmp_path):
    path = save(tmp_path / "d.png", page())
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DigitFileError, match=r"d.png: a damaged or truncated image \("):
        read_digit(path)


def test_a_blank_image_says_no_digit(tmp_path):
    with pytest.raises(DigitFileError, match="blank.png: no digit found: nothing stands out from the background"):
        read_digit(save(tmp_path / "blank.png", np.full((50, 50), 0.8)))


def test_the_cost_of_an_image_is_bounded_before_decoding(tmp_path, monkeypatch):
    path = save(tmp_path / "d.png", page())  # 120x90 = 10,800 pixels
    monkeypatch.setattr(digit_files, "MAX_PIXELS", 10_000)
    with pytest.raises(DigitFileError, match="d.png: 10,800 pixels, more than the 10,000 an image to classify may have$"):
        read_digit(path)
    monkeypatch.setattr(digit_files, "MAX_FILE_BYTES", 100)
    with pytest.raises(DigitFileError, match=r"d.png: [\d,]+ bytes, more than the 100 an image to classify may have"):
        read_digit(path)


def test_pillow_s_decompression_bomb_guard_is_a_clear_error(tmp_path, monkeypatch):
    path = save(tmp_path / "d.png", page())
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow warns above this, refuses above twice it
    with pytest.raises(DigitFileError, match="d.png: 10,800 pixels, more than the 1,000 an image to classify may have$"):
        read_digit(path)  # the user's lower limit holds
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_without_pillow_images_name_the_extra_and_npy_still_works(tmp_path, monkeypatch):
    image_path = save(tmp_path / "d.png", page())
    npy_path = npy(tmp_path, np.zeros((28, 28), dtype=np.uint8))
    for name in [m for m in sys.modules if m == "PIL" or m.startswith("PIL.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "PIL", None)  # `import PIL` now raises ImportError
    with pytest.raises(ImportError):
        import PIL  # noqa: F401
    with pytest.raises(DigitFileError, match=f"^{image_path}: reading image files needs Pillow, which is not installed: "
                                             r"pip install 'nnscratch\[images\]' \(.npy arrays work without it\)$"):
        read_digit(image_path)
    np.testing.assert_array_equal(read_digit(npy_path), np.zeros((28, 28)))


# -- what is not a regular file: refused, never waited on -----------------------------------------
def read_within(path, seconds=5.0):
    """read_digit(path) in a thread: (its result or error), or a failure if it is still running."""
    outcome = []

    def target():
        try:
            outcome.append(read_digit(path))
        except Exception as error:  # noqa: BLE001 (the test looks at it)
            outcome.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        pytest.fail(f"read_digit({path}) still running after {seconds} s (blocked on the open?)")
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    error = read_within(tmp_path / "pipe.png")
    assert isinstance(error, DigitFileError)
    assert str(error) == (f"{tmp_path / 'pipe.png'}: not a regular file but a FIFO; expected an image or .npy file "
                          "(save what a pipe or device gives to a file first)")


@pytest.mark.parametrize("source", ["/dev/urandom", "pipe"])
def test_devices_and_pipes_are_named_for_what_they_are_not_called_empty(source):
    if source == "pipe":  # what <(cat x.png) hands over: /dev/fd/N, a pipe with a writer
        reader, writer = os.pipe()
        os.write(writer, save(io.BytesIO(), page(), format="PNG").getvalue())
        path = f"/dev/fd/{reader}"
        if not os.path.exists(path):
            pytest.skip("no /dev/fd here")
    else:
        path = source
        if not os.path.exists(path):
            pytest.skip(f"no {path} here")
    try:
        error = read_within(path)
    finally:
        if source == "pipe":
            os.close(reader)
            os.close(writer)
    kind = "FIFO" if source == "pipe" else "character device"
    assert isinstance(error, DigitFileError) and error.reason.startswith(f"not a regular file but a {kind};")
    assert str(error.path) == path and "empty" not in str(error)


# -- float images: NaN and infinities refused, huge values kept ------------------------------------
def float_tiff(path, values):
    Image.fromarray(values.astype(np.float32), mode="F").save(path)
    return path


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_a_float_tiff_with_nan_or_infinite_pixels_is_refused(tmp_path, bad):
    values = 1.0 - page()
    values[3, 4] = bad
    with pytest.raises(DigitFileError, match=r"t.tif: the image holds NaN or infinite pixel values$"):
        read_digit(float_tiff(tmp_path / "t.tif", values))


def test_a_float_tiff_keeps_its_contrast_near_float32_s_limits(tmp_path):
    ink = page() < 0.5  # the digit's pixels
    ordinary = read_digit(float_tiff(tmp_path / "a.tif", np.where(ink, 1.0, -1.0)))
    np.testing.assert_allclose(ordinary, expected(), atol=1 / 255 + 1e-6)
    for scale in (3e38, 1e38):
        huge = read_digit(float_tiff(tmp_path / "b.tif", np.where(ink, scale, -scale)))
        np.testing.assert_array_equal(huge, ordinary)


# -- metadata and containers ------------------------------------------------------------------------
def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


JUNK_EXIF = b"junk, not a TIFF header at all"


def test_junk_exif_is_ignored_in_a_png_as_in_a_jpeg(tmp_path):
    png = save(io.BytesIO(), page(), format="PNG").getvalue()
    idat = png.index(b"IDAT") - 4
    (tmp_path / "exif.png").write_bytes(png[:idat] + png_chunk(b"eXIf", JUNK_EXIF) + png[idat:])
    np.testing.assert_array_equal(read_digit(tmp_path / "exif.png"), expected())
    clean = read_digit(save(tmp_path / "clean.jpg", page(), "RGB", quality=90))
    junk = read_digit(save(tmp_path / "junk.jpg", page(), "RGB", quality=90, exif=b"Exif\0\0" + JUNK_EXIF))
    np.testing.assert_array_equal(junk, clean)


def ico_holding_png(width, height) -> bytes:
    """An ICO whose directory says 256x256 and whose one image is a valid black 1-bit PNG of
    ``width`` x ``height`` (its zlib stream is small: the rows are zeros)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compressobj(9)
    row = b"\0" * (1 + (width + 7) // 8)
    body = b"".join(rows.compress(row) for _ in range(height)) + rows.flush()
    png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")
    directory = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(png), 22)
    return directory + png


def test_an_ico_holding_a_huge_png_is_refused_before_it_is_decoded(tmp_path):
    path = tmp_path / "big.ico"
    path.write_bytes(ico_holding_png(11_000, 8_000))  # 88 Mpx behind a 256x256 directory entry
    start = time.perf_counter()
    with pytest.raises(DigitFileError, match=r"big.ico: 88,000,000 pixels, more than the 50,000,000 an image to "):
        read_digit(path)
    assert time.perf_counter() - start < 0.5  # refused from the header: 88 Mpx are never decoded
    before = Image.MAX_IMAGE_PIXELS
    (tmp_path / "small.ico").write_bytes(ico_holding_png(300, 200))
    with pytest.raises(DigitFileError, match="small.ico: no digit found"):  # a small one is read
        read_digit(tmp_path / "small.ico")
    assert Image.MAX_IMAGE_PIXELS == before  # Pillow's own limit is back as it was
