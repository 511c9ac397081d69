"""Each preprocessing step of nnscratch.data.digits on synthetic images with known answers."""

import numpy as np
import pytest

from nnscratch.data.digits import (
    INK_THRESHOLD,
    BlankImageError,
    border,
    centre_by_mass,
    centre_of_mass,
    crop_to_ink,
    light_on_dark,
    prepare_digit,
    scale_to_box,
    to_uint8,
)

pytest.importorskip("PIL")  # scale_to_box (and so prepare_digit) resample with Pillow


def bar(height=60, width=40, top=10, left=15, bar_h=30, bar_w=6, ink=1.0, paper=0.0):
    """A rectangle of ``ink`` on ``paper``: the simplest digit (a '1')."""
    image = np.full((height, width), paper, dtype=np.float32)
    image[top : top + bar_h, left : left + bar_w] = ink
    return image


# -- light_on_dark -------------------------------------------------------------------------------
def test_border_takes_each_edge_pixel_once():
    image = np.arange(20, dtype=np.float32).reshape(4, 5)
    assert sorted(border(image)) == [0, 1, 2, 3, 4, 5, 9, 10, 14, 15, 16, 17, 18, 19]


@pytest.mark.parametrize("ink, paper", [(1.0, 0.0), (0.0, 1.0), (0.2, 0.7), (0.9, 0.4)])
def test_light_on_dark_maps_paper_to_0_and_ink_to_1_whichever_is_lighter(ink, paper):
    out = light_on_dark(bar(ink=ink, paper=paper))
    np.testing.assert_allclose(out, bar(), atol=1e-6)
    assert out.dtype == np.float32


def test_light_on_dark_decides_from_the_border_even_when_the_digit_covers_most_of_the_image():
    # dark ink covering 60% of a white page: the median of the whole image is ink, the border's is paper
    image = np.ones((50, 50), dtype=np.float32)
    image[2:48, 5:35] = 0.1
    out = light_on_dark(image)
    assert out[0, 0] == 0 and out[25, 20] == pytest.approx(1.0)


def test_light_on_dark_ignores_noise_on_the_paper():
    rng = np.random.default_rng(0)
    image = np.clip(bar(ink=0.05, paper=0.95) + rng.normal(0, 0.02, size=(60, 40)), 0, 1)
    out = light_on_dark(image)
    paper = np.delete(out.ravel(), np.flatnonzero(bar().ravel()))
    assert out[10:40, 15:21].mean() > 0.9
    assert paper.mean() < 0.02 and paper.max() < INK_THRESHOLD  # the grain stays below what crop_to_ink counts


@pytest.mark.parametrize("image", [np.full((20, 20), 0.5), np.full((20, 20), 0.5) + np.eye(20) * 0.05])
def test_light_on_dark_refuses_an_image_without_contrast(image):
    with pytest.raises(BlankImageError, match=r"no digit found: nothing stands out from the background \(contrast 0\.0"):
        light_on_dark(image)


@pytest.mark.parametrize("image, kind, message", [
    (np.zeros((3, 4, 3)), ValueError, r"light_on_dark: expected a 2-D \(H, W\) grayscale image, got shape \(3, 4, 3\)"),
    (np.zeros((4, 4), dtype=bool), TypeError, "light_on_dark: expected numeric gray levels, got an array of bool"),
    (np.full((4, 4), np.nan), ValueError, "light_on_dark: the image holds NaN or infinite values"),
])  # fmt: skip
def test_light_on_dark_refuses_bad_arrays(image, kind, message):
    with pytest.raises(kind, match=message):
        light_on_dark(image)


# -- crop_to_ink ---------------------------------------------------------------------------------
def test_crop_to_ink_keeps_exactly_the_ink_box():
    out = crop_to_ink(bar(top=7, left=3, bar_h=20, bar_w=5))
    assert out.shape == (20, 5) and out.min() == 1.0


def test_crop_to_ink_ignores_faint_noise_but_keeps_the_faint_edge_inside_the_box():
    image = bar(top=10, left=10, bar_h=20, bar_w=10)
    image[0, 0] = image[59, 39] = 0.15  # specks below the threshold, at the far corners
    image[10, 10] = 0.5  # a soft corner of the stroke, above it
    image[20, 14] = 0.1  # faint inside the box: kept, the box is not a mask
    out = crop_to_ink(image)
    assert out.shape == (20, 10) and out[0, 0] == 0.5 and out[10, 4] == pytest.approx(0.1)


def test_crop_to_ink_refuses_an_image_with_only_faint_noise():
    with pytest.raises(BlankImageError, match="no digit found: no pixel is brighter than 0.2"):
        crop_to_ink(np.full((10, 10), 0.19, dtype=np.float32))


# -- scale_to_box --------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, expected", [
    ((100, 40), (20, 8)), ((40, 100), (8, 20)), ((7, 7), (20, 20)), ((300, 3), (20, 1)), ((20, 13), (20, 13)),
])  # fmt: skip
def test_scale_to_box_makes_the_longer_side_20_and_keeps_the_aspect(shape, expected):
    out = scale_to_box(np.ones(shape, dtype=np.float32))
    assert out.shape == expected and out.dtype == np.float32
    np.testing.assert_allclose(out, 1.0, atol=1e-5)  # a uniform image stays uniform, nothing clipped


def test_scale_to_box_antialiases_a_thin_stroke_into_a_fainter_one():
    # a 2-pixel-wide vertical line in a 200x200 image: at 1/10 scale it is 0.2 px wide, so its ink
    # must show as a faint column (mass kept), not vanish as nearest-neighbour sampling would
    image = np.zeros((200, 200), dtype=np.float32)
    image[:, 101:103] = 1.0
    out = scale_to_box(image)
    assert out.shape == (20, 20)
    columns = out.mean(axis=0)
    assert columns.sum() == pytest.approx(2 / 10, rel=0.05)  # the ink is conserved: 2 px of 200 -> 0.2 px of 20
    assert 0 < columns.max() < 0.5 and np.count_nonzero(columns > 1e-3) <= 3


# -- centre_by_mass ------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_centre_by_mass_puts_the_centre_of_mass_at_14_14_within_half_a_pixel(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(5, 21, size=2)
    digit = rng.random((h, w)).astype(np.float32) ** 3  # lopsided ink
    out = centre_by_mass(digit)
    assert out.shape == (28, 28)
    row, col = centre_of_mass(out)
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5
    assert out.sum() == pytest.approx(digit.sum(), rel=1e-6)  # moved, not cut


def test_centre_of_mass_by_hand():
    image = np.zeros((3, 4))
    image[0, 0], image[2, 3] = 1.0, 3.0
    assert centre_of_mass(image) == (pytest.approx(1.5), pytest.approx(2.25))


def test_centre_by_mass_keeps_a_lopsided_digit_inside_the_frame():
    digit = np.zeros((20, 20), dtype=np.float32)
    digit[0, :] = 1.0  # all the ink on the top row: centring it would push the rest out of the frame
    out = centre_by_mass(digit)
    assert out.sum() == 20 and out[8, 4:24].sum() == 20  # moved down as far as the frame allows


def test_centre_by_mass_refuses_a_digit_larger_than_the_frame():
    with pytest.raises(ValueError, match=r"centre_by_mass: the digit \(29x10\) must fit in the 28x28 frame"):
        centre_by_mass(np.ones((29, 10)))


# -- the whole pipeline --------------------------------------------------------------------------
def test_prepare_digit_on_a_dark_bar_on_a_large_white_page():
    page = bar(height=300, width=200, top=40, left=150, bar_h=100, bar_w=20, ink=0.1, paper=0.95)
    out = prepare_digit(page)
    assert out.shape == (28, 28) and out.dtype == np.uint8
    ink = out > 127
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    assert rows[-1] - rows[0] + 1 == 20 and cols[-1] - cols[0] + 1 == 4  # 100x20 -> 20x4
    row, col = centre_of_mass(out.astype(float))
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5
    assert out.max() == 255 and out[0].max() == 0


def test_to_uint8_rounds_and_clips():
    np.testing.assert_array_equal(to_uint8([[-0.5, 0.0, 0.5, 1.0, 2.0]]), [[0, 0, 128, 255, 255]])
