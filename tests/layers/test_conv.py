"""The fast Conv2D against its textbook twin nnscratch.reference.Conv2D (itself checked against the
loop twin in tests/reference/test_conv.py), hand-computed values, sanity_check and PyTorch; and what only the
fast layer has: plans, recycled results, needs_input_delta."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import Conv2D, MaxPool2D, ReLU, Sequential, reference, sanity_check
from nnscratch.kernels import conv_plan
from helpers.layer_configs import CONV_CONFIGS, LAYOUTS, with_layout
from helpers.naive import naive_conv2d_backward, naive_conv2d_forward

CONFIGS = CONV_CONFIGS
# The tests of what both levels share (constructor, checks, dtype, hand-computed values) run on both.
BOTH = pytest.mark.parametrize("cls", [Conv2D, reference.Conv2D], ids=["fast", "reference"])


def make_layer(c_in, c_out, kernel, stride, padding, bias, dtype=np.float64, seed=0, cls=Conv2D):
    layer = cls(c_in, c_out, kernel, stride=stride, padding=padding, bias=bias, dtype=dtype, rng=seed)
    if bias:  # a non-zero bias, or its gradient path would not be tested
        layer.bias[...] = np.random.default_rng(seed + 1).standard_normal(c_out)
    return layer


def check_against_reference(layer, x, delta_seed=0):
    """Forward, input gradient and every parameter gradient of the fast layer against its reference
    twin with the same parameters: 1e-10 relative in float64, float32 rounding in float32 (the
    rounding of the sums, up to the magnitude of the largest output)."""
    twin = reference.Conv2D(**layer.config())
    for mine, theirs in zip(layer.parameters, twin.parameters):
        theirs[...] = mine
    float32 = layer.weight.dtype == np.float32
    delta = np.random.default_rng(delta_seed).standard_normal(layer.output_shape(x.shape))

    def close(got, want):
        assert got.dtype == want.dtype == layer.weight.dtype
        if float32:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(want).max()))
        else:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(want).max()))

    y, y_ref = layer.forward(x), twin.forward(x)
    close(y, y_ref)
    dx, dx_ref = layer.backward(delta), twin.backward(delta)
    close(dx, dx_ref)
    for got, want in zip(layer.parameters_deltas, twin.parameters_deltas):
        close(got, want)
    return y, dx


@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_reference_twin(config, dtype):
    _, c_in, c_out, kernel, stride, padding, bias, shape = config
    layer = make_layer(c_in, c_out, kernel, stride, padding, bias, dtype=dtype)
    x = np.random.default_rng(5).standard_normal(shape).astype(dtype)
    y, _ = check_against_reference(layer, x)
    assert y.shape == layer.output_shape(shape)


@st.composite
def conv_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 9))
    w = draw(st.integers(max(1, kw - 2 * pw), 9))
    n, c_in, c_out = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    bias = draw(st.booleans())
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    layout = draw(st.sampled_from(LAYOUTS))
    seed = draw(st.integers(0, 2**16))
    return (c_in, c_out, (kh, kw), (sh, sw), (ph, pw), bias, (n, c_in, h, w), dtype, layout, seed)


@settings(max_examples=120, deadline=None)
@given(conv_cases(), st.sampled_from([1, 2**18]))
def test_random_configurations_match_reference_twin(case, block_work):
    # Shapes, strides, padding, dtypes and memory layouts (C order, channel-major views as Conv2D and
    # MaxPool2D hand out, non-contiguous); the weight gradient in one product or in blocks of images.
    c_in, c_out, kernel, stride, padding, bias, shape, dtype, layout, seed = case
    saved = conv_plan._BLOCK_WORK
    conv_plan._BLOCK_WORK = block_work  # 1: the weight gradient in one block per image
    try:
        layer = make_layer(c_in, c_out, kernel, stride, padding, bias, dtype=dtype, seed=seed)
        x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
        check_against_reference(layer, with_layout(x, layout), delta_seed=seed)
    finally:
        conv_plan._BLOCK_WORK = saved


@BOTH
def test_hand_computed_4x4_by_3x3(cls):
    # x = 0..15 row-major, W = ones: each output is the sum of a 3x3 window.
    layer = cls(1, 1, 3, bias=False, dtype=np.float64)
    layer.weight[...] = 1.0
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    y = layer.forward(x)
    np.testing.assert_array_equal(y[0, 0], [[45.0, 54.0], [81.0, 90.0]])
    assert naive_conv2d_forward(x, layer.weight)[0, 0].tolist() == [[45.0, 54.0], [81.0, 90.0]]
    dx = layer.backward(np.ones((1, 1, 2, 2)))
    # dL/dx counts the windows covering each pixel; dL/dW[i, j] sums x over the 2x2 block at (i, j).
    np.testing.assert_array_equal(dx[0, 0], [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])
    i, j = np.indices((3, 3))
    np.testing.assert_array_equal(layer.parameters_deltas[0][0, 0], 10 + 16 * i + 4 * j)


@BOTH
def test_hand_computed_padding_stride_and_bias(cls):
    # 3x3 input, 2x2 kernel of ones, padding 1, stride 2: windows at rows/cols -1 and 1.
    layer = cls(1, 1, 2, stride=2, padding=1, dtype=np.float64)
    layer.weight[...] = 1.0
    layer.bias[...] = 0.5
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # [[1 2 3] [4 5 6] [7 8 9]]
    y = layer.forward(x)
    np.testing.assert_array_equal(y[0, 0], [[1.5, 5.5], [11.5, 28.5]])
    dx = layer.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    np.testing.assert_array_equal(dx[0, 0], [[1, 2, 2], [3, 4, 4], [3, 4, 4]])
    np.testing.assert_array_equal(layer.parameters_deltas[1], [10.0])


@pytest.mark.parametrize("images_per_block", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("stride", [1, 2])
def test_weight_gradient_in_blocks_of_images(monkeypatch, images_per_block, stride):
    # Small tests fit in one block; make blocks of 1, 2, 3 (4 -> 3: whole images) or 6 images here.
    grid = (5, 7) if stride == 1 else (3, 3)  # per image: (oh, Wp) flat, (oh, ow) strided
    work_per_image = 3 * (2 * 3 * 3 + 1) * grid[0] * grid[1]  # F * (C*kh*kw + 1) * positions
    monkeypatch.setattr(conv_plan, "_BLOCK_WORK", images_per_block * work_per_image)
    layer = make_layer(2, 3, 3, stride, 1, True)
    check_against_reference(layer, np.random.default_rng(0).standard_normal((6, 2, 5, 5)))
    assert layer._plan._weight_gradient_blocks == {1: 6, 2: 3, 3: 2, 4: 2, 6: 1}[images_per_block]


@pytest.mark.parametrize("threshold_offset, blocks", [(0, 1), (1, 3)])
@pytest.mark.parametrize("stride", [1, 2])
def test_weight_gradient_one_product_from_threaded_outputs_on(monkeypatch, threshold_offset, blocks, stride):
    # 3 filters x (2*3*3 + 1) rows = 57 outputs: one product at a threshold of 57, blocks above it.
    grid = (5, 7) if stride == 1 else (3, 3)
    monkeypatch.setattr(conv_plan, "_BLOCK_WORK", 2 * 57 * grid[0] * grid[1])  # 2 images a block
    monkeypatch.setattr(conv_plan, "_THREADED_OUTPUTS", 57 + threshold_offset)
    layer = make_layer(2, 3, 3, stride, 1, True)
    check_against_reference(layer, np.random.default_rng(0).standard_normal((6, 2, 5, 5)))
    assert layer._plan._weight_gradient_blocks == blocks


def test_weight_gradient_of_a_wide_layer_is_one_product_and_matches_reference_twin():
    # 16 filters x (8*3*3 + 1) = 1168 outputs: past the real threshold, with the real block size.
    layer = make_layer(8, 16, 3, 1, 1, True)
    check_against_reference(layer, np.random.default_rng(0).standard_normal((4, 8, 6, 6)))
    assert layer._plan._weight_gradient_blocks == 1


def test_backward_twice_gives_the_same_and_deltas_are_overwritten():
    layer = make_layer(2, 3, 3, 1, 1, True)
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    y = layer.forward(x)
    delta = np.random.default_rng(1).standard_normal(y.shape)
    dx1 = layer.backward(delta).copy()
    deltas1 = [d.copy() for d in layer.parameters_deltas]
    dx2 = layer.backward(delta)
    np.testing.assert_array_equal(dx1, dx2)
    for a, b in zip(deltas1, layer.parameters_deltas):
        np.testing.assert_array_equal(a, b)
    layer.backward(2 * delta)  # overwritten: twice the gradient, not three times
    for a, b in zip(deltas1, layer.parameters_deltas):
        np.testing.assert_allclose(b, 2 * a)


def test_results_do_not_alias_between_calls():
    # Buffers are reused inside the layer; what it hands out must not change under the caller.
    layer = make_layer(1, 2, 3, 1, 1, True)
    x1, x2 = np.random.default_rng(0).standard_normal((2, 2, 1, 6, 6))
    y1 = layer.forward(x1)
    y1_copy = y1.copy()
    dx1 = layer.backward(np.ones_like(y1))
    dx1_copy = dx1.copy()
    layer.forward(x2)
    layer.backward(np.full_like(y1, 3.0))
    np.testing.assert_array_equal(y1, y1_copy)
    np.testing.assert_array_equal(dx1, dx1_copy)


def test_changing_batch_size_and_dtype_rebuilds_buffers():
    layer = make_layer(2, 3, 3, 1, 1, True)
    rng = np.random.default_rng(0)
    for n in (4, 1, 3, 4, 2):  # more shapes than the two cached ones
        check_against_reference(layer, rng.standard_normal((n, 2, 5, 4)), delta_seed=n)
    layer32 = make_layer(2, 3, 3, 2, 1, True, dtype=np.float32)
    check_against_reference(layer32, rng.standard_normal((3, 2, 6, 6)).astype(np.float32))


def test_parameters_swapped_for_float64_copies_get_float64_deltas():
    # A user converting a float32 layer by hand: both the attributes and the parameters list.
    layer = make_layer(2, 3, 3, 1, 1, True, dtype=np.float32)
    layer.weight, layer.bias = layer.weight.astype(np.float64), layer.bias.astype(np.float64)
    layer.parameters[:] = [layer.weight, layer.bias]
    deltas = layer.parameters_deltas
    check_against_reference(layer, np.random.default_rng(0).standard_normal((3, 2, 5, 5)))
    assert layer.parameters_deltas is deltas  # remade in the same list, which an optimizer may hold
    assert [d.dtype for d in deltas] == [np.float64, np.float64]


@BOTH
def test_float32_stays_float32(cls):
    layer = cls(3, 4, 3, stride=2, padding=1)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 7))  # float64 input is cast
    y = layer.forward(x)
    assert y.dtype == np.float32
    dx = layer.backward(np.ones(y.shape))  # float64 delta is cast too
    assert dx.dtype == np.float32
    assert [d.dtype for d in layer.parameters_deltas] == [np.float32, np.float32]
    stride1 = cls(3, 4, 3, padding=1)
    assert stride1.forward(x.astype(np.float32)).dtype == np.float32
    assert stride1.backward(np.ones((2, 4, 7, 7), np.float32)).dtype == np.float32


@BOTH
def test_float64_layer_stays_float64(cls):
    layer = cls(1, 2, 3, dtype="float64")
    y = layer.forward(np.ones((1, 1, 4, 4), np.float32))
    assert y.dtype == np.float64 and layer.backward(np.ones(y.shape)).dtype == np.float64


@BOTH
def test_parameters_shapes_and_no_bias_entry(cls):
    layer = cls(3, 5, (3, 2))
    assert [p.shape for p in layer.parameters] == [(5, 3, 3, 2), (5,)]
    assert layer.parameters[0] is layer.weight and layer.parameters[1] is layer.bias
    assert [d.shape for d in layer.parameters_deltas] == [(5, 3, 3, 2), (5,)]
    no_bias = cls(3, 5, 3, bias=False)
    assert len(no_bias.parameters) == 1 and len(no_bias.parameters_deltas) == 1
    assert no_bias.bias is None


@BOTH
def test_he_uniform_initialisation_and_zero_bias(cls):
    layer = cls(16, 64, 5, rng=0)
    bound = math.sqrt(6.0 / (16 * 5 * 5))
    assert np.abs(layer.weight).max() <= bound
    assert np.abs(layer.weight).max() > 0.99 * bound
    # U(-b, b) has standard deviation b / sqrt(3)
    assert abs(layer.weight.std() - bound / math.sqrt(3)) < 0.02 * bound
    assert not layer.bias.any()


@BOTH
def test_seeded_initialisation_is_reproducible(cls):
    nnscratch.seed(3)
    a = cls(2, 4, 3)
    nnscratch.seed(3)
    b = cls(2, 4, 3)
    np.testing.assert_array_equal(a.weight, b.weight)
    nnscratch.seed(4)
    assert not np.array_equal(cls(2, 4, 3).weight, a.weight)
    np.testing.assert_array_equal(cls(2, 4, 3, rng=7).weight, cls(2, 4, 3, rng=7).weight)
    assert not np.array_equal(cls(2, 4, 3, rng=7).weight, cls(2, 4, 3, rng=8).weight)


@BOTH
def test_config_rebuilds_and_output_shape(cls):
    layer = cls(3, 4, (3, 2), stride=(2, 1), padding=1, bias=False, dtype=np.float64)
    config = layer.config()
    assert config == {"in_channels": 3, "out_channels": 4, "kernel_size": [3, 2], "stride": [2, 1],
                      "padding": 1, "bias": False, "dtype": "float64"}
    assert cls(**config).config() == config
    assert repr(layer).startswith("Conv2D(in_channels=3, out_channels=4, kernel_size=[3, 2]")
    for shape in [(2, 3, 7, 7), (1, 3, 1, 5), (5, 3, 10, 3)]:
        assert layer.output_shape(shape) == layer.forward(np.zeros(shape)).shape


def test_needs_input_delta_false_skips_dx_but_sets_parameter_deltas():
    layer = make_layer(1, 3, 3, 1, 1, True)
    x = np.random.default_rng(0).standard_normal((2, 1, 5, 5))
    delta = np.random.default_rng(1).standard_normal((2, 3, 5, 5))
    layer.forward(x)
    layer.backward(delta)
    expected = [d.copy() for d in layer.parameters_deltas]
    layer.needs_input_delta = False
    layer.forward(x)
    assert layer.backward(delta) is None
    for a, b in zip(expected, layer.parameters_deltas):
        np.testing.assert_allclose(a, b)


def test_in_a_network_with_pooling_matches_naive_twins():
    # Layers hand each other channel-major views; the chain must still be right end to end.
    from helpers.naive import naive_maxpool2d_backward, naive_maxpool2d_forward

    rng = np.random.default_rng(0)
    conv1, conv2 = make_layer(1, 3, 3, 1, 1, True, seed=1), make_layer(3, 2, 3, 1, 1, True, seed=2)
    net = Sequential(conv1, ReLU(), MaxPool2D(2), conv2)
    x = rng.standard_normal((2, 1, 8, 8))
    y = net.forward(x)
    a1 = naive_conv2d_forward(x, conv1.weight, conv1.bias, 1, 1)
    r1 = np.maximum(a1, 0)
    p1 = naive_maxpool2d_forward(r1, 2)
    y_ref = naive_conv2d_forward(p1, conv2.weight, conv2.bias, 1, 1)
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
    delta = rng.standard_normal(y.shape)
    dx = net.backward(delta)
    dp1, dw2, db2 = naive_conv2d_backward(p1, conv2.weight, delta, 1, 1)
    da1 = naive_maxpool2d_backward(r1, dp1, 2) * (a1 > 0)
    dx_ref, dw1, db1 = naive_conv2d_backward(x, conv1.weight, da1, 1, 1)
    for got, want in zip([dx, *conv1.parameters_deltas, *conv2.parameters_deltas], [dx_ref, dw1, db1, dw2, db2]):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"in_channels": 0}, ValueError, r"Conv2D: in_channels must be a positive int, got 0"),
        ({"out_channels": -2}, ValueError, r"Conv2D: out_channels must be a positive int, got -2"),
        ({"kernel_size": 0}, ValueError, r"Conv2D: kernel_size must be a positive int, got 0"),
        ({"kernel_size": (3, -1)}, ValueError, r"Conv2D: kernel_size must be a positive int, got -1"),
        ({"kernel_size": (3, 3, 3)}, ValueError, r"Conv2D: kernel_size must be an int or an \(h, w\) pair"),
        ({"stride": 0}, ValueError, r"Conv2D: stride must be a positive int, got 0"),
        ({"stride": (1, 0)}, ValueError, r"Conv2D: stride must be a positive int, got 0"),
        ({"padding": -1}, ValueError, r"Conv2D: padding must be a non-negative int, got -1"),
        ({"padding": (0, -2)}, ValueError, r"Conv2D: padding must be a non-negative int, got -2"),
        ({"kernel_size": 2.5}, TypeError, r"Conv2D: kernel_size must be an int, got float"),
        ({"bias": "yes"}, TypeError, r"Conv2D: bias must be True or False"),
        ({"bias": "no"}, TypeError, r"Conv2D: bias must be True or False, got str 'no'"),
        ({"bias": 0}, TypeError, r"Conv2D: bias must be True or False, got int 0"),
        ({"dtype": np.int32}, TypeError, r"Conv2D: dtype must be float32 or float64, got int32"),
        ({"dtype": np.float16}, TypeError, r"Conv2D: dtype float16 is not supported"),
    ],
)
@BOTH
def test_bad_hyperparameters(kwargs, error, match, cls):
    args = {"in_channels": 1, "out_channels": 1, "kernel_size": 3, **kwargs}
    with pytest.raises(error, match=match):
        cls(**args)


@BOTH
def test_bad_inputs(cls):
    layer = cls(3, 2, 3, padding=1)
    with pytest.raises(ValueError, match=r"Conv2D: expected a 4-D input \(N, C, H, W\), got shape \(3, 5, 5\)"):
        layer.forward(np.zeros((3, 5, 5)))
    with pytest.raises(ValueError, match=r"Conv2D: expected 3 input channels .* got x of shape \(2, 1, 5, 5\)"):
        layer.forward(np.zeros((2, 1, 5, 5)))
    with pytest.raises(TypeError, match=r"Conv2D: expected a numpy array"):
        layer.forward([[[[1.0]]]])
    big = cls(1, 1, (5, 2), padding=1)
    with pytest.raises(ValueError, match=r"Conv2D: .*kernel 5x2 after padding \(1, 1\), got x of shape \(1, 1, 2, 6\), 4x8 padded"):
        big.forward(np.zeros((1, 1, 2, 6)))
    with pytest.raises(ValueError, match=r"kernel 5x2"):
        big.output_shape((1, 1, 2, 6))
    big.forward(np.zeros((1, 1, 3, 6)))  # 5x8 padded: just fits


@BOTH
def test_bad_delta_and_backward_before_forward(cls):
    layer = cls(1, 2, 3)
    with pytest.raises(RuntimeError, match=r"Conv2D.backward called before forward"):
        layer.backward(np.zeros((1, 2, 2, 2)))
    layer.forward(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"Conv2D.backward: expected delta of shape \(1, 2, 2, 2\).*got \(1, 2, 4, 4\)"):
        layer.backward(np.zeros((1, 2, 4, 4)))


@BOTH
def test_sequential_names_the_layer_on_bad_input(cls):
    net = Sequential(cls(1, 2, 3), ReLU(), cls(3, 2, 3))
    with pytest.raises(ValueError, match=r"layer 2 \(Conv2D\).*expected 3 input channels"):
        net.forward(np.zeros((1, 1, 6, 6)))


# -- numerical gradient checks ---------------------------------------------------------------------
@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_sanity_check(config):
    _, c_in, c_out, kernel, stride, padding, bias, shape = config
    layer = make_layer(c_in, c_out, kernel, stride, padding, bias, dtype=np.float32)
    x = np.random.default_rng(2).standard_normal(shape)
    report = sanity_check(layer, x, max_coords=60)
    assert report.passed
    assert [row.tensor for row in report] == ["input", "parameter 0"] + (["parameter 1"] if bias else [])
    assert layer.weight.dtype == np.float32  # the layer is left as it was found


def test_sanity_check_catches_a_broken_weight_gradient():
    class Broken(Conv2D):
        def backward(self, delta):
            dx = super().backward(delta)
            self.parameters_deltas[0][0, 0, 0, 0] += 1.0
            return dx

    layer = Broken(2, 2, 3, padding=1, rng=0)
    with pytest.raises(AssertionError, match=r"parameter 0"):
        sanity_check(layer, np.random.default_rng(0).standard_normal((1, 2, 4, 4)), max_coords=None)


# -- PyTorch as an independent reference -------------------------------------------------------------
@pytest.mark.torch
@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
@BOTH
def test_matches_pytorch(config, cls):
    torch = pytest.importorskip("torch")
    _, c_in, c_out, kernel, stride, padding, bias, shape = config
    layer = make_layer(c_in, c_out, kernel, stride, padding, bias, cls=cls)
    x = np.random.default_rng(3).standard_normal(shape)
    y = layer.forward(x)
    delta = np.random.default_rng(4).standard_normal(y.shape)
    dx = layer.backward(delta)

    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.weight, requires_grad=True)
    tb = torch.tensor(layer.bias, requires_grad=True) if bias else None
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=layer.stride, padding=layer.padding)
    ty.backward(torch.tensor(delta))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.parameters_deltas[0], tw.grad.numpy(), rtol=1e-10, atol=1e-12)
    if bias:
        np.testing.assert_allclose(layer.parameters_deltas[1], tb.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.torch
def test_matches_pytorch_at_mnist_sizes_in_float32():
    torch = pytest.importorskip("torch")
    layer = Conv2D(8, 16, 3, padding=1, rng=0)
    layer.bias[...] = np.linspace(-1, 1, 16, dtype=np.float32)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 8, 14, 14)).astype(np.float32)
    y = layer.forward(x)
    delta = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(delta)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.weight, requires_grad=True)
    tb = torch.tensor(layer.bias, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, tb, padding=1)
    ty.backward(torch.tensor(delta))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.parameters_deltas[0], tw.grad.numpy(), rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(layer.parameters_deltas[1], tb.grad.numpy(), rtol=1e-3, atol=1e-2)


# -- recycled result buffers --------------------------------------------------------------------------
@pytest.mark.parametrize("stride", [1, 2])
def test_conv_recycles_its_output_and_input_gradient_once_dropped(stride):
    layer = make_layer(2, 3, 3, stride, 1, True, dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((4, 2, 8, 8)).astype(np.float32)
    y = layer.forward(x)
    delta = np.ones(y.shape, np.float32)
    y_address, dx_address = y.ctypes.data, layer.backward(delta).ctypes.data
    del y
    again = layer.forward(x)
    assert again.ctypes.data == y_address  # same memory: no fresh pages to fault in
    assert layer.backward(delta).ctypes.data == dx_address
    kept = layer.forward(2 * x)  # `again` is still held: it must keep its values
    np.testing.assert_allclose(kept - again, np.asarray(again) - layer.bias[:, None, None], rtol=1e-5, atol=1e-5)


# -- copies leave the plans behind -----------------------------------------------------------------
def test_a_copy_leaves_the_plans_behind_and_still_computes_the_same():
    import copy
    import pickle

    from nnscratch.check.working_copy import float64_copy

    layer = make_layer(2, 3, 3, 1, 1, True, dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((40, 2, 12, 12)).astype(np.float32)
    y = layer.forward(x).copy()
    plans = dict(layer._plans)
    for twin in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert twin._plans == {} and twin._plan is None
        np.testing.assert_array_equal(twin.forward(x), y)
    # sanity_check's float64 working copy: no plan copied (a plan is the size of its batch)
    work = float64_copy(layer, "Conv2D")
    assert work._plans == {} and work._plan is None and work.weight.dtype == np.float64
    assert layer._plans == plans  # the original keeps its own


def test_release_memory_drops_the_plans_and_the_next_forward_rebuilds_them():
    layer = make_layer(2, 3, 3, 2, 1, True)
    x = np.random.default_rng(0).standard_normal((3, 2, 7, 7))
    y = layer.forward(x).copy()
    layer.release_memory()
    assert layer._plans == {} and layer._plan is None
    with pytest.raises(RuntimeError, match="Conv2D.backward called before forward"):
        layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(layer.forward(x), y)
