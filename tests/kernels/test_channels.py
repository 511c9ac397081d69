"""kernels/channels.py: the (A, C, B) views of the batch norms' inputs and the per-channel sums."""

import numpy as np
import pytest

from nnscratch.kernels.recycle import memory_order
from nnscratch.kernels.channels import channel_dot, channel_sum, channel_view, delta_view, unview


def channel_major(x):
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


@pytest.mark.parametrize("x, layout, shape3", [
    (np.arange(12.0).reshape(4, 3), "C", (4, 3, 1)),
    (np.arange(24.0).reshape(2, 3, 4), "C", (2, 3, 4)),
    (np.arange(120.0).reshape(2, 3, 4, 5), "C", (2, 3, 20)),
    (channel_major(np.arange(120.0).reshape(2, 3, 4, 5)), "channel-major", (1, 3, 40)),
])
def test_views_cost_no_copy_and_come_back_in_the_input_layout(x, layout, shape3):
    x3, found = channel_view(x)
    assert found == layout and x3.shape == shape3 and np.shares_memory(x3, x)
    for c in range(x.shape[1]):  # channel c of the view holds exactly channel c's values
        np.testing.assert_array_equal(np.sort(x3[:, c].ravel()), np.sort(x[:, c].ravel()))
    back = unview(x3 * 2, x.shape, layout)
    np.testing.assert_array_equal(back, 2 * x)
    assert memory_order(back) == memory_order(x)
    for delta in (np.ascontiguousarray(x), x[..., ::-1] if x.ndim == 4 else x, channel_major(x) if x.ndim == 4 else x):
        d3 = delta_view(delta, layout)
        assert d3.shape == shape3
        np.testing.assert_array_equal(unview(d3, x.shape, layout), delta)


@pytest.mark.parametrize("shape", [(6, 4, 1), (5, 3, 7), (2, 3, 130), (1, 4, 300)])  # both sides of B = 128
def test_channel_sum_and_dot_equal_numpy(shape):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=shape), rng.normal(size=shape)
    np.testing.assert_allclose(channel_sum(a), a.sum(axis=(0, 2), keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(channel_dot(a, b), (a * b).sum(axis=(0, 2), keepdims=True), rtol=1e-12)
    assert channel_dot(a.astype(np.float32), b.astype(np.float32)).dtype == np.float32
