"""The max-pooling passes (nnscratch/kernels/pool.py), without the layer: the windows each kernel
offset sees, the maximum and the offset that won it (the first on ties, in one byte unless the kernel
has more than 256 offsets), the gradient sent back to each winner, and the input's memory order kept
throughout. The layers built on them: tests/layers/test_pool.py and tests/reference/test_pool.py."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch.kernels.pool import max_pool_backward, max_pool_forward, windows
from nnscratch.kernels.recycle import memory_order

from helpers.naive import naive_maxpool2d_backward, naive_maxpool2d_forward

# (kernel, stride, input shape)
CASES = [((2, 2), (2, 2), (2, 3, 6, 8)), ((3, 3), (1, 1), (1, 2, 5, 5)), ((2, 3), (1, 2), (2, 1, 5, 7)),
         ((3, 2), (2, 3), (1, 2, 7, 8))]
IDS = ["tiled", "overlapping", "overlapping-rows", "gaps"]


def out_shape(x_shape, kernel, stride):
    n, c, h, w = x_shape
    return (n, c, (h - kernel[0]) // stride[0] + 1, (w - kernel[1]) // stride[1] + 1)


def test_windows_yield_one_view_per_offset_in_row_major_order():
    x = np.arange(2 * 1 * 4 * 5, dtype=float).reshape(2, 1, 4, 5)
    views = list(windows(x, (2, 2), (2, 2), (2, 2)))
    assert len(views) == 4
    for k, view in enumerate(views):
        i, j = divmod(k, 2)
        np.testing.assert_array_equal(view, x[:, :, i : i + 3 : 2, j : j + 3 : 2])
        assert np.shares_memory(view, x)  # views, no copies


@pytest.mark.parametrize("kernel, stride, shape", CASES, ids=IDS)
def test_forward_is_the_window_maximum_and_argmax_its_offset(kernel, stride, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    y, argmax = max_pool_forward(x, kernel, stride, out_shape(shape, kernel, stride), {})
    np.testing.assert_array_equal(y, naive_maxpool2d_forward(x, kernel, stride))
    assert argmax.dtype == np.uint8
    n, c, oh, ow = y.shape
    for b, ch, oy, ox in np.ndindex(n, c, oh, ow):
        i, j = divmod(int(argmax[b, ch, oy, ox]), kernel[1])
        assert x[b, ch, oy * stride[0] + i, ox * stride[1] + j] == y[b, ch, oy, ox]


def test_ties_go_to_the_first_offset_in_row_major_order():
    x = np.array([[[[1.0, 5.0], [5.0, 5.0]], [[2.0, 2.0], [2.0, 2.0]]]])  # (1, 2, 2, 2)
    y, argmax = max_pool_forward(x, (2, 2), (2, 2), (1, 2, 1, 1), {})
    assert y.ravel().tolist() == [5.0, 2.0] and argmax.ravel().tolist() == [1, 0]


def test_more_than_256_offsets_need_wider_indices():
    x = np.random.default_rng(1).standard_normal((1, 1, 17, 17))
    x[0, 0, 16, 16] = 100.0  # the last of 289 offsets wins: index 288 does not fit a byte
    y, argmax = max_pool_forward(x, (17, 17), (1, 1), (1, 1, 1, 1), {})
    assert argmax.dtype == np.int32 and int(argmax[0, 0, 0, 0]) == 288 and y[0, 0, 0, 0] == 100.0


@pytest.mark.parametrize("kernel, stride, shape", CASES, ids=IDS)
def test_backward_sends_each_delta_to_its_winner(kernel, stride, shape):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    store = {}
    y, argmax = max_pool_forward(x, kernel, stride, out_shape(shape, kernel, stride), store)
    delta = rng.standard_normal(y.shape)
    dx = max_pool_backward(delta, argmax, x.shape, memory_order(x), kernel, stride, store)
    np.testing.assert_allclose(dx, naive_maxpool2d_backward(x, delta, kernel, stride), rtol=1e-15, atol=0)


@pytest.mark.parametrize("kernel, stride, shape", CASES, ids=IDS)
def test_the_input_s_memory_order_is_kept_and_a_delta_in_another_order_is_copied_into_it(kernel, stride, shape):
    rng = np.random.default_rng(3)
    shape = (2, 3, *shape[2:])  # one image or one channel would be both orders at once
    x = np.ascontiguousarray(rng.standard_normal(shape).transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    order = memory_order(x)
    assert order != memory_order(np.empty(shape))  # channel-major, not C order
    store = {}
    y, argmax = max_pool_forward(x, kernel, stride, out_shape(shape, kernel, stride), store)
    assert memory_order(y) == memory_order(argmax) == order
    delta = rng.standard_normal(y.shape)  # C order, unlike x
    kept = delta.copy()
    dx = max_pool_backward(delta, argmax, x.shape, order, kernel, stride, store)
    assert memory_order(dx) == order
    np.testing.assert_allclose(dx, naive_maxpool2d_backward(x, delta, kernel, stride), rtol=1e-15, atol=0)
    np.testing.assert_array_equal(delta, kept)  # the caller's delta is left alone


def test_results_come_from_the_store_and_are_reused_once_dropped():
    x = np.random.default_rng(4).standard_normal((2, 2, 4, 4))
    store = {}
    y, argmax = max_pool_forward(x, (2, 2), (2, 2), (2, 2, 2, 2), store)
    assert store  # the results and the scratch of the passes live in the caller's store
    address = y.ctypes.data
    del y, argmax
    again, _ = max_pool_forward(x, (2, 2), (2, 2), (2, 2, 2, 2), store)
    assert again.ctypes.data == address
