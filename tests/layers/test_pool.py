"""MaxPool2D against its textbook twin nnscratch.reference.MaxPool2D (checked against the loop twins in
tests/reference/test_pool.py); AvgPool2D and GlobalAvgPool2D against the loop-based twins in
helpers/naive.py; hand-computed values, sanity_check and PyTorch. The max-pooling passes on their
own: tests/kernels/test_pool.py."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnscratch import AvgPool2D, GlobalAvgPool2D, MaxPool2D, reference, sanity_check
from helpers.layer_configs import LAYOUTS, MAXPOOL_CONFIGS, with_layout
from helpers.naive import (
    naive_avgpool2d_backward,
    naive_avgpool2d_forward,
    naive_global_avgpool2d,
    naive_maxpool2d_backward,
    naive_maxpool2d_forward,
)

CONFIGS = MAXPOOL_CONFIGS
# The tests of what both levels share (constructor, checks, dtype, hand-computed values) run on both.
BOTH = pytest.mark.parametrize("cls", [MaxPool2D, reference.MaxPool2D], ids=["fast", "reference"])


def check_against_reference(layer, x, delta_seed=0):
    """The fast MaxPool2D against its textbook twin nnscratch.reference.MaxPool2D (itself checked
    against the loop twins in tests/reference/test_pool.py): the same maxima, the same winners, exactly."""
    twin = reference.MaxPool2D(**layer.config())
    y, y_ref = layer.forward(x), twin.forward(x)
    assert y.dtype == y_ref.dtype
    np.testing.assert_array_equal(y, y_ref)
    delta = np.random.default_rng(delta_seed).standard_normal(y.shape).astype(y.dtype)
    dx, dx_ref = layer.backward(delta), twin.backward(delta)
    assert dx.dtype == dx_ref.dtype and dx.shape == x.shape
    # Overlapping windows add their deltas in another order: equal up to the rounding of those sums.
    # A sum of at most kh*kw terms in either order is within kh*kw * eps * (the sum of the terms'
    # magnitudes) of the exact one: a bound per element, which holds where the terms cancel too
    # (a relative tolerance does not: float32 found 6.9e-6 relative on a near-zero sum).
    kh, kw = layer.kernel_size
    magnitudes = twin.backward(np.abs(delta)).astype(np.float64)
    bound = kh * kw * np.finfo(dx.dtype).eps * magnitudes
    error = np.abs(dx.astype(np.float64) - dx_ref.astype(np.float64))
    assert np.all(error <= bound), f"dx off by {error.max():.3g}, beyond the rounding bound where it is largest"
    return y, dx, delta


@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_matches_reference_twin(config):
    _, kernel, stride, shape = config
    layer = MaxPool2D(kernel, stride)
    x = np.random.default_rng(0).standard_normal(shape)
    y, _, _ = check_against_reference(layer, x)
    assert y.shape == layer.output_shape(shape)


@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_ties_send_the_gradient_to_exactly_one_element(config):
    _, kernel, stride, shape = config
    layer = MaxPool2D(kernel, stride)
    x = np.random.default_rng(1).integers(0, 2, shape).astype(np.float64)  # ties everywhere
    y, dx, delta = check_against_reference(layer, x, delta_seed=1)
    np.testing.assert_allclose(dx.sum(), delta.sum())
    # all-equal input: each window sends its delta to its first element only
    ones = np.ones(shape)
    layer.forward(ones)
    dx = layer.backward(np.ones(y.shape))
    assert dx.sum() == y.size
    if layer.stride[0] >= layer.kernel_size[0] and layer.stride[1] >= layer.kernel_size[1]:
        assert np.count_nonzero(dx) == y.size  # non-overlapping: one element per window


@BOTH
def test_hand_computed_2x2(cls):
    x = np.array([[1.0, 3.0, 2.0, 2.0],
                  [4.0, 0.0, 2.0, 1.0],
                  [5.0, 5.0, -1.0, -2.0],
                  [5.0, 0.0, -3.0, -1.0]]).reshape(1, 1, 4, 4)
    layer = cls(2)
    np.testing.assert_array_equal(layer.forward(x)[0, 0], [[4.0, 2.0], [5.0, -1.0]])
    dx = layer.backward(np.array([[[[10.0, 20.0], [30.0, 40.0]]]]))
    # ties (2, 2 and 5, 5, 5) go to the first in row-major order
    np.testing.assert_array_equal(dx[0, 0], [[0, 0, 20, 0], [10, 0, 0, 0], [30, 0, 40, 0], [0, 0, 0, 0]])


@BOTH
def test_hand_computed_overlapping(cls):
    # 3x3 windows, stride 1, on a 4x4 with the maximum 9 in the middle: all four windows pick it.
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 2] = 9.0
    layer = cls(3, stride=1)
    np.testing.assert_array_equal(layer.forward(x)[0, 0], [[9.0, 9.0], [9.0, 9.0]])
    dx = layer.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    assert dx[0, 0, 1, 2] == 10.0 and np.count_nonzero(dx) == 1


def test_large_kernel_uses_wide_indices():
    # 17 x 17 = 289 offsets: more than a byte can index
    layer = MaxPool2D(17, stride=3)
    x = np.random.default_rng(2).standard_normal((1, 2, 23, 20))
    check_against_reference(layer, x)


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(1, 4))))
    h, w = draw(st.integers(kh, 9)), draw(st.integers(kw, 9))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    values = draw(st.sampled_from(["distinct", "ties"]))
    layout = draw(st.sampled_from(LAYOUTS))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    return (kh, kw), stride, (n, c, h, w), values, layout, dtype, draw(st.integers(0, 2**16))


@settings(max_examples=100, deadline=None)
@given(pool_cases())
def test_random_configurations_match_reference_twin(case):
    # Shapes, strides, dtypes, ties and memory layouts (C order, channel-major, non-contiguous).
    kernel, stride, shape, values, layout, dtype, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) if values == "distinct" else rng.integers(-1, 2, shape).astype(np.float64)
    layer = MaxPool2D(kernel, stride)
    _, dx, delta = check_against_reference(layer, with_layout(x.astype(dtype), layout), delta_seed=seed)
    np.testing.assert_allclose(dx.sum(dtype=np.float64), delta.sum(dtype=np.float64), rtol=1e-5, atol=1e-5)


def test_keeps_dtype_and_layout():
    layer = MaxPool2D(2)
    x32 = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    y = layer.forward(x32)
    assert y.dtype == np.float32
    assert layer.backward(np.ones(y.shape)).dtype == np.float32  # float64 delta is cast
    y64 = layer.forward(x32.astype(np.float64))
    assert y64.dtype == np.float64 and layer.backward(np.ones(y.shape)).dtype == np.float64
    assert layer.forward(np.arange(16).reshape(1, 1, 4, 4)).dtype == np.float32  # integers
    # a channel-major input (what Conv2D hands out) gives channel-major output and gradient
    channel_major = np.ascontiguousarray(x32.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    y = layer.forward(channel_major)
    assert y.transpose(1, 0, 2, 3).flags.c_contiguous
    assert layer.backward(np.ones(y.shape, np.float32)).transpose(1, 0, 2, 3).flags.c_contiguous


@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_a_delta_laid_out_unlike_the_input_gives_the_same_gradient(config):
    # backward copies such a delta into the input's layout first; the result must not change
    _, kernel, stride, shape = config
    layer = MaxPool2D(kernel, stride)
    rng = np.random.default_rng(2)
    channel_major = np.ascontiguousarray(rng.standard_normal(shape).transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    y = layer.forward(channel_major)
    delta = rng.standard_normal(y.shape)  # C order, unlike the channel-major input
    expected = naive_maxpool2d_backward(channel_major, delta, layer.kernel_size, layer.stride)
    kept = delta.copy()
    other_layouts = [delta, np.asfortranarray(delta), np.ascontiguousarray(delta[:, :, ::-1, :])[:, :, ::-1, :]]
    for layout in other_layouts:
        dx = layer.backward(layout)
        np.testing.assert_allclose(dx, expected, rtol=1e-12, atol=1e-12)
        assert dx.transpose(1, 0, 2, 3).flags.c_contiguous  # still the input's layout
    np.testing.assert_array_equal(delta, kept)  # the caller's delta is left alone


@BOTH
def test_backward_twice_gives_the_same(cls):
    layer = cls(3, stride=2)
    x = np.random.default_rng(0).standard_normal((2, 2, 7, 7))
    y = layer.forward(x)
    delta = np.random.default_rng(1).standard_normal(y.shape)
    dx1 = layer.backward(delta).copy()
    np.testing.assert_array_equal(dx1, layer.backward(delta))


@BOTH
def test_config_and_output_shape(cls):
    layer = cls((2, 3), stride=(1, 2))
    assert layer.config() == {"kernel_size": [2, 3], "stride": [1, 2]}
    assert cls(**layer.config()).config() == layer.config()
    assert cls(2).config() == {"kernel_size": 2, "stride": 2}
    assert repr(cls(3)) == "MaxPool2D(kernel_size=3, stride=3)"
    assert layer.parameters == [] and layer.parameters_deltas == []
    assert layer.output_shape((4, 3, 7, 8)) == (4, 3, 6, 3)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"kernel_size": 0}, ValueError, r"MaxPool2D: kernel_size must be a positive int, got 0"),
        ({"kernel_size": (2, -1)}, ValueError, r"MaxPool2D: kernel_size must be a positive int, got -1"),
        ({"kernel_size": 2, "stride": 0}, ValueError, r"MaxPool2D: stride must be a positive int, got 0"),
        ({"kernel_size": 2, "stride": (1, 2, 3)}, ValueError, r"MaxPool2D: stride must be an int or an \(h, w\) pair"),
        ({"kernel_size": 1.5}, TypeError, r"MaxPool2D: kernel_size must be an int, got float"),
    ],
)
@BOTH
def test_bad_hyperparameters(kwargs, error, match, cls):
    with pytest.raises(error, match=match):
        cls(**kwargs)


@BOTH
def test_bad_inputs_and_delta(cls):
    layer = cls(3)
    with pytest.raises(ValueError, match=r"MaxPool2D: expected a 4-D input \(N, C, H, W\), got shape \(2, 6, 6\)"):
        layer.forward(np.zeros((2, 6, 6)))
    with pytest.raises(ValueError, match=r"MaxPool2D: expected an input at least as large as the kernel 3x3, "
                                         r"got x of shape \(1, 1, 2, 6\)"):
        layer.forward(np.zeros((1, 1, 2, 6)))
    with pytest.raises(TypeError, match=r"MaxPool2D: expected a numpy array"):
        layer.forward([[1.0]])
    with pytest.raises(RuntimeError, match=r"MaxPool2D.backward called before forward"):
        layer.backward(np.zeros((1, 1, 2, 2)))
    layer.forward(np.zeros((1, 1, 6, 6)))
    with pytest.raises(ValueError, match=r"MaxPool2D.backward: expected delta of shape \(1, 1, 2, 2\).*got \(1, 1, 3, 3\)"):
        layer.backward(np.zeros((1, 1, 3, 3)))


def separated(shape, seed):
    """A random permutation of values 0.1 apart: no near-ties, so central differences are exact."""
    values = np.random.default_rng(seed).permutation(int(np.prod(shape))) * 0.1
    return values.reshape(shape)


@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_sanity_check(config):
    _, kernel, stride, shape = config
    report = sanity_check(MaxPool2D(kernel, stride), separated(shape, 3), max_coords=80)
    assert report.passed and [row.tensor for row in report] == ["input"]


@pytest.mark.torch
@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
@BOTH
def test_matches_pytorch(config, cls):
    torch = pytest.importorskip("torch")
    _, kernel, stride, shape = config
    layer = cls(kernel, stride)
    x = np.random.default_rng(4).standard_normal(shape)
    y = layer.forward(x)
    delta = np.random.default_rng(5).standard_normal(y.shape)
    dx = layer.backward(delta)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.max_pool2d(tx, layer.kernel_size, layer.stride)
    ty.backward(torch.tensor(delta))
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_results_held_by_the_caller_are_never_overwritten_and_dropped_ones_are_recycled():
    layer = MaxPool2D(2)
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((2, 3, 2, 6, 6))
    y1 = layer.forward(x1)
    dx1 = layer.backward(np.ones(y1.shape))
    y1_copy, dx1_copy = y1.copy(), dx1.copy()
    y2 = layer.forward(x2)
    dx2 = layer.backward(np.full(y2.shape, 2.0))
    np.testing.assert_array_equal(y1, y1_copy)
    np.testing.assert_array_equal(dx1, dx1_copy)
    np.testing.assert_array_equal(y2, naive_maxpool2d_forward(x2, 2))
    address = y2.ctypes.data
    del y2, dx2
    assert layer.forward(x2).ctypes.data == address  # dropped: same memory again


# -- AvgPool2D and GlobalAvgPool2D ---------------------------------------------------------------
# (id, kernel, stride, padding, input shape)
AVG_CONFIGS = [
    ("2x2, default stride", 2, None, 0, (2, 3, 4, 4)),
    ("2x2 stride 2 on odd 7x7: floor drops the edge", 2, 2, 0, (2, 2, 7, 7)),
    ("3x3 stride 1, padding 1 (same size)", 3, 1, 1, (2, 2, 5, 5)),
    ("overlapping 3x3 stride 2, padding 1", 3, 2, 1, (1, 3, 7, 8)),
    ("gaps: 2x2 stride 3", 2, 3, 0, (1, 2, 8, 8)),
    ("rectangular kernel (2, 3), stride (1, 2), padding (1, 1)", (2, 3), (1, 2), (1, 1), (2, 2, 5, 7)),
    ("kernel (4, 5) the size of the input, padding (2, 0)", (4, 5), None, (2, 0), (2, 1, 4, 5)),
    ("1x1 kernel stride 2", 1, 2, 0, (1, 2, 5, 4)),
]


def check_avg_against_naive(layer, x, seed=0):
    y = layer.forward(x)
    k, s, p = layer.kernel_size, layer.stride, layer.padding
    np.testing.assert_allclose(y, naive_avgpool2d_forward(x, k, s, p), rtol=1e-13, atol=1e-15)
    delta = np.random.default_rng(seed).standard_normal(y.shape)
    dx = layer.backward(delta)
    np.testing.assert_allclose(dx, naive_avgpool2d_backward(x.shape, delta, k, s, p), rtol=1e-13, atol=1e-15)
    return y, dx


@pytest.mark.parametrize("config", AVG_CONFIGS, ids=[c[0] for c in AVG_CONFIGS])
def test_avg_pool_matches_naive_twin(config):
    _, kernel, stride, padding, shape = config
    x = np.random.default_rng(1).standard_normal(shape)
    y, dx = check_avg_against_naive(AvgPool2D(kernel, stride, padding), x)
    assert y.dtype == np.float64 and dx.dtype == np.float64 and dx.shape == x.shape


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_avg_pool_random_configurations_match_naive_twin(data):
    kh, kw = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    ph, pw = data.draw(st.integers(0, kh // 2)), data.draw(st.integers(0, kw // 2))
    sh, sw = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    h, w = data.draw(st.integers(max(kh - 2 * ph, 1), 8)), data.draw(st.integers(max(kw - 2 * pw, 1), 8))
    layout = data.draw(st.sampled_from(["C", "channel-major", "strided"]))
    x = np.random.default_rng(data.draw(st.integers(0, 2**16))).standard_normal((2, 3, h, w))
    if layout == "channel-major":
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    elif layout == "strided":
        x = np.repeat(x, 2, axis=3)[..., ::2]
    check_avg_against_naive(AvgPool2D((kh, kw), (sh, sw), (ph, pw)), x)


def test_avg_pool_hand_computed():
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(AvgPool2D(2).forward(x), [[[[2.5, 4.5], [10.5, 12.5]]]])
    # padding 1 with a 3x3 kernel: the corner window holds 0, 1, 4, 5 and five zeros, divided by 9
    layer = AvgPool2D(3, stride=1, padding=1)
    y = layer.forward(x)
    assert y[0, 0, 0, 0] == pytest.approx((0 + 1 + 4 + 5) / 9)
    assert y[0, 0, 1, 1] == pytest.approx((0 + 1 + 2 + 4 + 5 + 6 + 8 + 9 + 10) / 9)
    # every input lies in 9 windows except the edges: the corner in 4, an edge in 6
    dx = layer.backward(np.ones(y.shape))
    np.testing.assert_allclose(dx[0, 0], np.array([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]]) / 9)


def test_global_avg_pool_matches_naive_twin_and_hand_values():
    x = np.random.default_rng(2).standard_normal((3, 4, 5, 2))
    layer = GlobalAvgPool2D()
    y = layer.forward(x)
    expected_y, slope = naive_global_avgpool2d(x)
    assert y.shape == (3, 4)
    np.testing.assert_allclose(y, expected_y, rtol=1e-13)
    delta = np.random.default_rng(3).standard_normal((3, 4))
    np.testing.assert_allclose(layer.backward(delta), np.broadcast_to(delta[:, :, None, None] * slope, x.shape), rtol=1e-13)
    np.testing.assert_array_equal(layer.forward(np.arange(8.0).reshape(2, 1, 2, 2)), [[1.5], [5.5]])
    # a global average pool is an AvgPool2D over the whole image
    np.testing.assert_allclose(y, AvgPool2D((5, 2)).forward(x)[:, :, 0, 0], rtol=1e-13)


@pytest.mark.parametrize("make", [lambda: AvgPool2D(3, 2, 1), lambda: GlobalAvgPool2D()], ids=["avg", "global"])
def test_avg_pools_keep_dtype_and_layout(make):
    layer = make()
    x32 = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    y = layer.forward(x32)
    assert y.dtype == np.float32
    assert layer.backward(np.ones(y.shape)).dtype == np.float32  # a float64 delta is cast
    assert layer.forward(x32.astype(np.float64)).dtype == np.float64
    assert layer.backward(np.ones(y.shape)).dtype == np.float64
    assert layer.forward(np.arange(72).reshape(2, 1, 6, 6)).dtype == np.float32  # integers
    channel_major = np.ascontiguousarray(x32.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    y = layer.forward(channel_major)
    if y.ndim == 4:
        assert y.transpose(1, 0, 2, 3).flags.c_contiguous
    assert layer.backward(np.ones(y.shape, np.float32)).transpose(1, 0, 2, 3).flags.c_contiguous


def test_avg_pool_config_repr_output_shape():
    layer = AvgPool2D((2, 3), stride=(1, 2), padding=(1, 0))
    assert layer.config() == {"kernel_size": [2, 3], "stride": [1, 2], "padding": [1, 0]}
    assert AvgPool2D(**layer.config()).config() == layer.config()
    assert repr(AvgPool2D(3)) == "AvgPool2D(kernel_size=3, stride=3, padding=0)"
    assert layer.output_shape((4, 3, 7, 8)) == (4, 3, 8, 3)
    assert repr(GlobalAvgPool2D()) == "GlobalAvgPool2D()" and GlobalAvgPool2D().output_shape((4, 3, 7, 8)) == (4, 3)
    assert layer.parameters == [] and GlobalAvgPool2D().parameters == []


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"kernel_size": 0}, ValueError, r"AvgPool2D: kernel_size must be a positive int, got 0"),
        ({"kernel_size": 2, "stride": (1, 0)}, ValueError, r"AvgPool2D: stride must be a positive int, got 0"),
        ({"kernel_size": 2, "padding": -1}, ValueError, r"AvgPool2D: padding must be a non-negative int, got -1"),
        ({"kernel_size": 2, "padding": 1.0}, TypeError, r"AvgPool2D: padding must be an int, got float"),
        ({"kernel_size": 3, "padding": 2}, ValueError,
         r"AvgPool2D: padding must be at most half the kernel size \(h: kernel 3, so at most 1\), got padding 2 for kernel_size 3"),
        ({"kernel_size": (4, 1), "padding": (2, 1)}, ValueError,
         r"AvgPool2D: padding must be at most half the kernel size \(w: kernel 1, so at most 0\), got padding \[2, 1\] for kernel_size \[4, 1\]"),
    ],
)
def test_avg_pool_bad_hyperparameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        AvgPool2D(**kwargs)


@pytest.mark.parametrize("cls", [AvgPool2D, GlobalAvgPool2D])
def test_avg_pools_bad_inputs_and_delta(cls):
    layer = AvgPool2D(3) if cls is AvgPool2D else GlobalAvgPool2D()
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"{name}: expected a 4-D input \(N, C, H, W\), got shape \(2, 6, 6\)"):
        layer.forward(np.zeros((2, 6, 6)))
    with pytest.raises(TypeError, match=rf"{name}: expected a numpy array as input, got list"):
        layer.forward([[1.0]])
    with pytest.raises(RuntimeError, match=rf"{name}.backward called before forward"):
        layer.backward(np.zeros((1, 1)))
    y = layer.forward(np.zeros((1, 2, 6, 6)))
    with pytest.raises(ValueError, match=rf"{name}.backward: expected delta of shape {re.escape(str(y.shape))}.*got \(1, 1\)"):
        layer.backward(np.zeros((1, 1)))
    if cls is AvgPool2D:
        with pytest.raises(ValueError, match=r"AvgPool2D: expected an input at least as large as the kernel 3x3, got x of shape \(1, 1, 2, 6\)"):
            layer.forward(np.zeros((1, 1, 2, 6)))
        with pytest.raises(ValueError, match=r"AvgPool2D: expected an input at least as large as the kernel 4x4 after "
                                             r"padding \(1, 1\), got x of shape \(1, 1, 1, 6\), 3x8 padded"):
            AvgPool2D(4, padding=1).forward(np.zeros((1, 1, 1, 6)))
    else:
        with pytest.raises(ValueError, match=r"GlobalAvgPool2D: expected an input with at least one position \(H, W > 0\), got \(1, 2, 0, 3\)"):
            layer.forward(np.zeros((1, 2, 0, 3)))


@pytest.mark.parametrize("config", AVG_CONFIGS, ids=[c[0] for c in AVG_CONFIGS])
def test_avg_pool_sanity_check(config):
    _, kernel, stride, padding, shape = config
    x = np.random.default_rng(6).standard_normal(shape)
    report = sanity_check(AvgPool2D(kernel, stride, padding), x, max_coords=80)
    assert report.passed and [row.tensor for row in report] == ["input"]


def test_global_avg_pool_sanity_check():
    report = sanity_check(GlobalAvgPool2D(), np.random.default_rng(7).standard_normal((2, 3, 4, 5)))
    assert report.passed and [row.tensor for row in report] == ["input"]


def test_avg_pools_save_load_round_trip(tmp_path):
    import nnscratch as nn

    net = nn.Sequential(nn.Conv2D(2, 3, 3, rng=0), AvgPool2D((3, 2), stride=(1, 2), padding=(1, 1)), GlobalAvgPool2D())
    loaded = nn.load(nn.save(net, tmp_path / "net.npz"))
    assert repr(loaded) == repr(net)
    x = np.random.default_rng(8).standard_normal((2, 2, 7, 6)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))


@pytest.mark.torch
@pytest.mark.parametrize("config", AVG_CONFIGS, ids=[c[0] for c in AVG_CONFIGS])
@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 1e-6)], ids=["float64", "float32"])
def test_avg_pool_matches_pytorch(config, dtype, tolerance):
    torch = pytest.importorskip("torch")
    _, kernel, stride, padding, shape = config
    layer = AvgPool2D(kernel, stride, padding)
    x = np.random.default_rng(4).standard_normal(shape).astype(dtype)
    y = layer.forward(x)
    delta = np.random.default_rng(5).standard_normal(y.shape).astype(dtype)
    dx = layer.backward(delta)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.avg_pool2d(tx, layer.kernel_size, layer.stride, layer.padding)  # count_include_pad=True
    ty.backward(torch.tensor(delta))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tolerance, atol=tolerance)


@pytest.mark.torch
def test_global_avg_pool_matches_pytorch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(9).standard_normal((3, 4, 5, 6))
    delta = np.random.default_rng(10).standard_normal((3, 4))
    layer = GlobalAvgPool2D()
    y, dx = layer.forward(x), layer.backward(delta)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.adaptive_avg_pool2d(tx, 1).flatten(1)
    ty.backward(torch.tensor(delta))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12)

def test_a_copy_leaves_the_recycled_behind_and_release_memory_drops_them():
    import copy

    from nnscratch.check.working_copy import float64_copy

    layer = MaxPool2D(2)
    x = np.random.default_rng(0).standard_normal((4, 3, 6, 6))
    y = layer.forward(x).copy()
    delta = np.random.default_rng(1).standard_normal(y.shape)
    dx = layer.backward(delta).copy()
    for twin in (copy.deepcopy(layer), float64_copy(layer, "MaxPool2D")):
        assert twin._recycled == {}
        np.testing.assert_array_equal(twin.backward(delta), dx)  # the last forward's winners came along
    assert layer._recycled  # the original keeps its own
    layer.release_memory()
    assert layer._recycled == {} and layer._argmax is None and layer._input_layout is None
    with pytest.raises(RuntimeError, match="MaxPool2D.backward called before forward"):
        layer.backward(delta)
    np.testing.assert_array_equal(layer.forward(x), y)


@pytest.mark.parametrize("make", [lambda: AvgPool2D(2), lambda: GlobalAvgPool2D()], ids=["avg", "global"])
def test_avg_pools_release_memory(make):
    layer = make()
    layer.forward(np.ones((1, 1, 4, 4)))
    layer.release_memory()
    with pytest.raises(RuntimeError, match=r"backward called before forward"):
        layer.backward(np.ones((1, 1)))
