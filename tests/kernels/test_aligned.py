"""64-byte aligned arrays: the helpers, and the training arrays that are made with them."""

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.kernels import aligned
from nnscratch.kernels.recycle import recycled_empty


def starts_on_64_bytes(array):
    return array.ctypes.data % 64 == 0


SHAPES = [(), (0,), (1,), (3,), (7, 5), (784, 256), (2, 3, 4, 5)]
DTYPES = [np.float32, np.float64, np.uint8, bool, np.int32]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_and_zeros_have_the_shape_dtype_and_layout_of_numpys(shape, dtype):
    for array in (aligned.empty(shape, dtype), aligned.zeros(shape, dtype)):
        assert array.shape == shape and array.dtype == np.dtype(dtype)
        assert array.flags.c_contiguous and array.flags.writeable
        if array.size:  # an empty array has no data to align (numpy may give it any address)
            assert starts_on_64_bytes(array) and aligned.is_aligned(array)
    np.testing.assert_array_equal(aligned.zeros(shape, dtype), np.zeros(shape, dtype))


def test_many_arrays_in_a_row_are_all_aligned():
    # NumPy's own allocator lands on any 16-byte offset (numpy 2.4 here); these must never.
    arrays = [aligned.empty(n, np.float32) for n in range(1, 200)]
    assert all(starts_on_64_bytes(a) for a in arrays)


def test_an_int_shape_and_the_like_and_copy_helpers():
    assert aligned.empty(5).shape == (5,) and aligned.empty(np.int64(5)).dtype == np.float32
    source = np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2]  # a strided view
    copied = aligned.copy(source)
    np.testing.assert_array_equal(copied, source)
    assert copied.dtype == source.dtype and copied.flags.c_contiguous and starts_on_64_bytes(copied)
    copied[0, 0] = 99
    assert source[0, 0] == 0  # a copy, not a view
    like = aligned.zeros_like(np.ones((2, 3), np.float32))
    assert like.shape == (2, 3) and like.dtype == np.float32 and not like.any() and starts_on_64_bytes(like)
    assert aligned.copy([1.5, 2.5]).tolist() == [1.5, 2.5]


def test_not_aligned_is_reported():
    raw = aligned.empty(64, np.uint8)
    assert aligned.is_aligned(raw) and not aligned.is_aligned(raw[16:])


def test_parameters_deltas_and_optimizer_state_are_aligned():
    net = nn.Sequential(
        nn.Conv2D(1, 4, 3, padding=1, rng=0), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 3, rng=1),
        nn.SoftmaxCrossEntropy(), nn.Mean(),
    )
    x = np.random.default_rng(0).random((2, 1, 5, 5), dtype=np.float32)
    net.forward(x, np.array([0, 2]))
    net.backward(1.0)
    sgd, adam = nn.SGD(net, lr=0.1, momentum=0.9), nn.Adam(net)
    sgd.step()
    adam.step()
    arrays = net.parameters + net.parameters_deltas + sgd.velocity + adam.m + adam.v
    assert len(arrays) == 4 * 5
    assert all(starts_on_64_bytes(a) for a in arrays)
    # Resuming from a checkpoint gives aligned state again.
    fresh = nn.SGD(net, lr=0.1, momentum=0.9)
    fresh.load_state_dict(sgd.state_dict())
    assert all(starts_on_64_bytes(v) for v in fresh.velocity)
    for ours, saved in zip(fresh.velocity, sgd.velocity):
        np.testing.assert_array_equal(ours, saved)


def test_recycled_results_and_convolution_buffers_are_aligned():
    store = {}
    assert starts_on_64_bytes(recycled_empty(store, "y", (3, 5), np.float32))
    conv = nn.Conv2D(2, 3, 3, padding=1, rng=0)
    y = conv.forward(np.ones((2, 2, 6, 6), np.float32))
    plan = conv._plan
    assert all(starts_on_64_bytes(a) for a in (plan.columns, plan._padded, plan._delta_grid, plan._columns_gradient))
    assert starts_on_64_bytes(y)  # an (N, C, H, W) view that starts where its channel-major memory does
