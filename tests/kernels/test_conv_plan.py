"""The plan of one convolution (nnscratch/kernels/conv_plan.py), without the layer: its geometry, the
column matrix entry by entry against the padded input, the forward product and every backward piece
against the loop twins, in both layouts (flat for stride 1, strided otherwise)."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch.kernels import conv_plan
from nnscratch.kernels.conv_plan import ConvPlan, window_slices

from helpers.naive import naive_conv2d_backward, naive_conv2d_forward

# (id, x shape, out channels, kernel, stride, padding)
PLANS = [
    ("flat-3x3-pad1", (2, 3, 5, 6), 4, (3, 3), (1, 1), (1, 1)),
    ("flat-2x3-unpadded", (3, 2, 4, 5), 2, (2, 3), (1, 1), (0, 0)),
    ("strided-3x3-s2", (2, 2, 7, 6), 3, (3, 3), (2, 2), (1, 0)),
    ("strided-1x2-s(1,3)", (1, 3, 4, 8), 2, (1, 2), (1, 3), (0, 1)),
]


def plan_case(config, ones_row=False, seed=0):
    """(plan, x, weight (F, C, kh, kw)) in float64."""
    _, x_shape, out_channels, kernel, stride, padding = config
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    weight = rng.standard_normal((out_channels, x_shape[1], *kernel))
    return ConvPlan(x_shape, out_channels, kernel, stride, padding, np.float64, ones_row), x, weight


def test_window_slices_are_the_rows_and_columns_one_kernel_offset_visits():
    assert window_slices(1, 2, (2, 3), (3, 4)) == (slice(1, 6, 2), slice(2, 12, 3))
    assert window_slices(0, 0, (1, 1), (5, 5)) == (slice(0, 5, 1), slice(0, 5, 1))
    grid = np.arange(8 * 12).reshape(8, 12)
    rows, cols = window_slices(1, 2, (2, 3), (3, 4))
    # the element offset (1, 2) of each of the 3 x 4 windows whose top left is (2 * oy, 3 * ox)
    expected = [[grid[2 * oy + 1, 3 * ox + 2] for ox in range(4)] for oy in range(3)]
    np.testing.assert_array_equal(grid[rows, cols], expected)


@pytest.mark.parametrize("config", PLANS, ids=[c[0] for c in PLANS])
def test_geometry_of_each_layout(config):
    plan, _, _ = plan_case(config)
    _, (n, c, h, w), _, (kh, kw), (sh, sw), (ph, pw) = config
    hp, wp = h + 2 * ph, w + 2 * pw
    out_hw = ((hp - kh) // sh + 1, (wp - kw) // sw + 1)
    assert plan.padded_hw == (hp, wp) and plan.out_hw == out_hw
    assert plan.flat == ((sh, sw) == (1, 1))
    # flat: every padded column is a position; strided: exactly the outputs
    assert plan.grid_hw == ((out_hw[0], wp) if plan.flat else out_hw)
    assert plan.positions == n * plan.grid_hw[0] * plan.grid_hw[1]
    assert plan.patch_size == c * kh * kw and plan.columns.shape == (c * kh * kw, plan.positions)


@pytest.mark.parametrize("config", PLANS, ids=[c[0] for c in PLANS])
def test_each_column_holds_the_patch_of_its_output_position(config):
    plan, x, _ = plan_case(config)
    _, (n, c, _, _), _, (kh, kw), (sh, sw), (ph, pw) = config
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    columns = plan.im2col(x)
    oh, ow = plan.out_hw
    grid_w = plan.grid_hw[1]
    for image in range(n):
        for oy in range(oh):
            for ox in range(ow):
                position = (image * oh + oy) * grid_w + ox
                patch = padded[image, :, oy * sh : oy * sh + kh, ox * sw : ox * sw + kw]
                np.testing.assert_array_equal(columns[:, position], patch.reshape(-1))


def test_the_ones_row_carries_the_bias_through_the_one_product():
    config = PLANS[0]
    plan, x, weight = plan_case(config, ones_row=True)
    bias = np.array([0.5, -1.0, 2.0, 0.25])
    assert plan.columns.shape[0] == plan.patch_size + 1
    np.testing.assert_array_equal(plan.columns[plan.patch_size], 1.0)
    plan.im2col(x)
    weight_2d = np.concatenate([weight.reshape(4, -1), bias[:, None]], axis=1)
    y = plan.output(plan.product(weight_2d))
    expected = naive_conv2d_forward(x, weight, bias, stride=config[4], padding=config[5])
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("config", PLANS, ids=[c[0] for c in PLANS])
def test_forward_is_the_loop_twin_and_the_output_is_a_view_of_the_product(config):
    plan, x, weight = plan_case(config)
    plan.im2col(x)
    y_grid = plan.product(weight.reshape(weight.shape[0], -1))
    y = plan.output(y_grid)
    expected = naive_conv2d_forward(x, weight, None, stride=config[4], padding=config[5])
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    assert np.shares_memory(y, y_grid)  # no copy: the valid positions of the product


@pytest.mark.parametrize("config", PLANS, ids=[c[0] for c in PLANS])
def test_backward_pieces_are_the_loop_twin_s_gradients(config):
    plan, x, weight = plan_case(config)
    weight_2d = weight.reshape(weight.shape[0], -1)
    plan.im2col(x)
    y = plan.output(plan.product(weight_2d))
    delta = np.random.default_rng(1).standard_normal(y.shape)
    dx_expected, dweight_expected, _ = naive_conv2d_backward(x, weight, delta, stride=config[4], padding=config[5])
    delta_grid = plan.delta_grid(delta)
    assert delta_grid.shape == (weight.shape[0], plan.positions)
    if plan.flat:  # the positions that are not outputs hold zero: they add nothing to any gradient
        grid = delta_grid.reshape(weight.shape[0], x.shape[0], *plan.grid_hw)
        assert not grid[..., plan.out_hw[1] :].any()
    dweight = plan.weight_gradient(delta_grid)
    np.testing.assert_allclose(dweight.reshape(weight.shape), dweight_expected, rtol=1e-12, atol=1e-12)
    dx = plan.col2im(plan.columns_gradient(weight_2d, delta_grid))
    assert dx.shape == x.shape
    np.testing.assert_allclose(dx, dx_expected, rtol=1e-12, atol=1e-12)


def test_block_count_splits_only_products_with_few_outputs_into_whole_images():
    assert ConvPlan._block_count(64, conv_plan._THREADED_OUTPUTS, 28 * 30) == 1
    blocks = ConvPlan._block_count(128, 9, 28 * 30)  # 1 channel, 3x3, 1 filter, on 28x28 padded by 1
    assert blocks == 2  # 69 images would make _BLOCK_WORK; 64 is the most that divides the batch
    images = 128 // blocks
    assert images * 9 * 28 * 30 <= conv_plan._BLOCK_WORK  # each block about _BLOCK_WORK or less
    assert ConvPlan._block_count(7, 9, 10**7) == 7  # an image bigger than a block: one block each


def test_weight_gradient_in_blocks_equals_the_one_product(monkeypatch):
    config = ("flat", (8, 1, 6, 6), 2, (3, 3), (1, 1), (1, 1))
    monkeypatch.setattr(conv_plan, "_BLOCK_WORK", 2 * 2 * 9 * 6 * 8)  # two images a block: 4 blocks
    plan, x, weight = plan_case(config)
    assert plan._weight_gradient_blocks == 4
    plan.im2col(x)
    delta_grid = plan.delta_grid(np.random.default_rng(2).standard_normal((8, 2, 6, 6)))
    whole = (plan.columns @ delta_grid.T).T
    np.testing.assert_allclose(plan.weight_gradient(delta_grid), whole, rtol=1e-12, atol=1e-12)


def test_results_are_recycled_only_once_the_caller_drops_them():
    plan, x, weight = plan_case(PLANS[0])
    weight_2d = weight.reshape(weight.shape[0], -1)
    plan.im2col(x)
    first = plan.product(weight_2d)
    kept = first.copy()
    second = plan.product(2 * weight_2d)
    assert not np.shares_memory(first, second)
    np.testing.assert_array_equal(first, kept)  # held by the caller: never overwritten
    address = second.ctypes.data
    del second
    assert plan.product(weight_2d).ctypes.data == address  # dropped: the same memory again
