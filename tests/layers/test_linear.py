"""Linear: forward and backward against loops written from the definition, dtype, init, errors."""

import re

import numpy as np
import pytest

import nnscratch as nn


def naive_linear(x, weight, bias):
    """y[n, j] = sum_i x[n, i] W[i, j] + b[j], one element at a time."""
    n_rows, n_in = x.shape
    n_out = weight.shape[1]
    y = np.zeros((n_rows, n_out))
    for n in range(n_rows):
        for j in range(n_out):
            total = 0.0 if bias is None else bias[j]
            for i in range(n_in):
                total += x[n, i] * weight[i, j]
            y[n, j] = total
    return y


def naive_linear_backward(x, weight, delta):
    """dW[i, j] = sum_n x[n, i] delta[n, j]; db[j] = sum_n delta[n, j]; dx[n, i] = sum_j delta[n, j] W[i, j]."""
    n_rows, n_in = x.shape
    n_out = weight.shape[1]
    d_weight = np.zeros_like(weight)
    d_bias = np.zeros(n_out)
    d_x = np.zeros_like(x)
    for n in range(n_rows):
        for j in range(n_out):
            d_bias[j] += delta[n, j]
            for i in range(n_in):
                d_weight[i, j] += x[n, i] * delta[n, j]
                d_x[n, i] += delta[n, j] * weight[i, j]
    return d_x, d_weight, d_bias


@pytest.mark.parametrize("bias", [True, False])
def test_forward_and_backward_match_loops(bias):
    rng = np.random.default_rng(0)
    layer = nn.Linear(5, 3, bias=bias, dtype=np.float64, rng=1)
    if bias:
        layer.bias[:] = rng.normal(size=3)
    x = rng.normal(size=(4, 5))
    delta = rng.normal(size=(4, 3))

    y = layer.forward(x)
    np.testing.assert_allclose(y, naive_linear(x, layer.weight, layer.bias), rtol=1e-12)

    d_x = layer.backward(delta)
    ref_x, ref_w, ref_b = naive_linear_backward(x, layer.weight, delta)
    np.testing.assert_allclose(d_x, ref_x, rtol=1e-12)
    np.testing.assert_allclose(layer.parameters_deltas[0], ref_w, rtol=1e-12)
    if bias:
        assert len(layer.parameters) == 2
        np.testing.assert_allclose(layer.parameters_deltas[1], ref_b, rtol=1e-12)
    else:
        assert len(layer.parameters) == 1 and len(layer.parameters_deltas) == 1


def test_parameters_layout_and_he_uniform_init():
    layer = nn.Linear(400, 300, rng=0)
    weight, bias = layer.parameters
    assert weight is layer.weight and bias is layer.bias
    assert weight.shape == (400, 300) and bias.shape == (300,)
    bound = np.sqrt(6 / 400)
    assert np.abs(weight).max() <= bound
    # U(-b, b) has variance b^2 / 3 = 2 / fan_in.
    assert weight.var() == pytest.approx(2 / 400, rel=0.02)
    assert not bias.any()


def test_deltas_are_overwritten_not_accumulated():
    layer = nn.Linear(3, 2, rng=0)
    x = np.ones((2, 3), np.float32)
    layer.forward(x)
    layer.backward(np.ones((2, 2), np.float32))
    first = [d.copy() for d in layer.parameters_deltas]
    layer.backward(np.ones((2, 2), np.float32))
    for before, after in zip(first, layer.parameters_deltas):
        np.testing.assert_array_equal(before, after)


def test_parameters_swapped_for_float64_copies_get_float64_deltas():
    # A user converting a float32 layer by hand: both the attributes and the parameters list.
    layer = nn.Linear(4, 3, rng=0)
    layer.weight, layer.bias = layer.weight.astype(np.float64), layer.bias.astype(np.float64) + 0.5
    layer.parameters[:] = [layer.weight, layer.bias]
    deltas = layer.parameters_deltas
    rng = np.random.default_rng(1)
    x, delta = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    layer.forward(x)
    layer.backward(delta)
    assert layer.parameters_deltas is deltas  # remade in the same list, which an optimizer may hold
    assert [d.dtype for d in deltas] == [np.float64, np.float64]
    np.testing.assert_allclose(deltas[0], x.T @ delta, rtol=1e-12)
    np.testing.assert_allclose(deltas[1], delta.sum(axis=0), rtol=1e-12)


def test_float32_end_to_end_even_for_float64_and_uint8_input():
    layer = nn.Linear(4, 3, rng=0)
    for x in (np.ones((2, 4)), np.ones((2, 4), np.uint8)):
        y = layer.forward(x)
        d_x = layer.backward(np.ones((2, 3)))
        assert y.dtype == np.float32 and d_x.dtype == np.float32
        assert all(d.dtype == np.float32 for d in layer.parameters_deltas)


def test_seeded_init_is_reproducible():
    nn.seed(123)
    a = nn.Linear(6, 4)
    nn.seed(123)
    b = nn.Linear(6, 4)
    c = nn.Linear(6, 4)
    np.testing.assert_array_equal(a.weight, b.weight)
    assert not np.array_equal(b.weight, c.weight)
    np.testing.assert_array_equal(nn.Linear(6, 4, rng=7).weight, nn.Linear(6, 4, rng=7).weight)


def test_config_rebuilds_the_layer():
    layer = nn.Linear(3, 2, bias=False, dtype=np.float64)
    assert layer.config() == {"in_features": 3, "out_features": 2, "bias": False, "dtype": "float64"}
    again = nn.Linear(**layer.config())
    assert again.weight.dtype == np.float64 and again.bias is None
    assert repr(layer) == "Linear(in_features=3, out_features=2, bias=False, dtype='float64')"


def test_sanity_check_on_input_and_parameters():
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    report = nn.sanity_check(nn.Linear(4, 5, rng=0), x)
    assert report.passed
    assert [(row.tensor, row.shape) for row in report] == [("input", (3, 4)), ("parameter 0", (4, 5)),
                                                           ("parameter 1", (5,))]
    assert max(row.max_abs_err for row in report) < 1e-8


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((0, 3), ValueError, r"Linear: in_features must be a positive int, got 0"),
        ((3, -1), ValueError, r"Linear: out_features must be a positive int, got -1"),
        ((3.5, 2), TypeError, r"Linear: in_features must be an int, got float"),
    ],
)
def test_bad_constructor_arguments(args, error, match):
    with pytest.raises(error, match=match):
        nn.Linear(*args)


@pytest.mark.parametrize("dtype", [np.int32, "complex64", np.longdouble, "not a dtype", object])
def test_bad_dtype(dtype):
    with pytest.raises(TypeError, match=r"Linear: dtype must be float32 or float64, got "):
        nn.Linear(2, 2, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float16, "float16", "half"])
def test_float16_is_refused_with_the_reason(dtype):
    with pytest.raises(TypeError, match=r"Linear: dtype float16 is not supported .*use float32"):
        nn.Linear(2, 2, dtype=dtype)


@pytest.mark.parametrize("bias", ["no", "false", 0, 1, None, np.array([True])])
def test_bias_must_be_a_real_bool(bias):
    with pytest.raises(TypeError, match=r"Linear: bias must be True or False, got "):
        nn.Linear(2, 2, bias=bias)


def test_wrong_feature_count_names_layer_expected_and_received():
    layer = nn.Linear(784, 10)
    with pytest.raises(ValueError, match=r"Linear: expected 784 input features .* got x of shape \(2, 100\)"):
        layer.forward(np.zeros((2, 100), np.float32))


def test_a_single_sample_without_its_batch_axis_is_refused():
    with pytest.raises(ValueError, match=r"Linear: expected 784 input features \(x of shape \(N, 784\) or \(N, \.\.\., 784\)\), got x of shape \(784,\)"):
        nn.Linear(784, 10).forward(np.zeros(784, np.float32))


@pytest.mark.parametrize("shape", [(2, 5, 4), (3, 1, 2, 4), (1, 1, 4)])
def test_leading_axes_are_rows_of_one_matrix_as_in_pytorch(shape):
    # (N, T, in) is the (N*T, in) matrix of its rows: every row gets the same affine map, and the
    # gradients are the sums over all rows, exactly those of the flattened batch.
    rng = np.random.default_rng(0)
    layer, flat = nn.Linear(4, 3, rng=1), nn.Linear(4, 3, rng=1)
    x = rng.standard_normal(shape)
    delta = rng.standard_normal((*shape[:-1], 3))
    y = layer.forward(x)
    assert y.shape == (*shape[:-1], 3) and layer.output_shape(shape) == y.shape
    y_flat = flat.forward(x.reshape(-1, 4))
    np.testing.assert_array_equal(y, y_flat.reshape(y.shape))
    dx = layer.backward(delta)
    dx_flat = flat.backward(delta.reshape(-1, 3))
    np.testing.assert_array_equal(dx, dx_flat.reshape(shape))
    for d, d_flat in zip(layer.parameters_deltas, flat.parameters_deltas):
        np.testing.assert_array_equal(d, d_flat)
    # and against loops over the rows, in float64
    weight, bias = layer.weight.astype(np.float64), layer.bias.astype(np.float64)
    rows = x.reshape(-1, 4)
    expected = np.array([[sum(r[i] * weight[i, j] for i in range(4)) + bias[j] for j in range(3)] for r in rows])
    np.testing.assert_allclose(y.reshape(-1, 3), expected, rtol=1e-5, atol=1e-6)


def test_a_sequence_input_passes_the_gradient_check():
    report = nn.sanity_check(nn.Linear(4, 3, rng=0), np.random.default_rng(0).standard_normal((2, 5, 4)))
    assert report.passed and [row.tensor for row in report] == ["input", "parameter 0", "parameter 1"]


@pytest.mark.parametrize("make", [lambda: nn.Linear(3, 2, rng=0), lambda: nn.Conv2D(1, 2, 3, rng=0)],
                         ids=["Linear", "Conv2D"])
def test_a_rebound_weight_or_bias_is_an_error_naming_the_fix(make):
    # An optimizer updates the arrays in parameters; a rebound attribute would be silently left out.
    x = np.ones((2, 3), np.float32) if isinstance(make(), nn.Linear) else np.ones((2, 1, 4, 4), np.float32)
    name = type(make()).__name__
    for attribute in ("weight", "bias"):
        layer = make()
        setattr(layer, attribute, getattr(layer, attribute).copy())
        with pytest.raises(ValueError, match=rf"{name}: {attribute} is not the array in parameters .*"
                                             rf"assign into it instead: layer\.{attribute}\[\.\.\.\] = new_values"):
            layer.forward(x)
    layer = make()
    optimizer = nn.SGD(layer, lr=0.5)
    layer.weight[...] = 1.0  # assigning into the array: what the message asks for
    layer.forward(x)
    layer.backward(np.ones_like(layer.forward(x)))
    optimizer.step()
    assert layer.parameters[0] is layer.weight and not np.all(layer.weight == 1.0)  # trained


def test_a_bias_set_on_a_layer_built_without_one_is_an_error():
    layer = nn.Linear(3, 2, bias=False, rng=0)
    layer.bias = np.zeros(2, np.float32)
    with pytest.raises(ValueError, match=r"Linear: bias is set, but the layer was built without it \(bias=False\)"):
        layer.forward(np.ones((2, 3), np.float32))


def test_non_array_input_and_bad_delta():
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"Linear: expected a numpy array as input, got list"):
        layer.forward([[1.0, 2.0]])
    with pytest.raises(RuntimeError, match=r"Linear.backward called before forward"):
        layer.backward(np.zeros((1, 2)))
    layer.forward(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"Linear.backward: expected delta of shape \(3, 2\).*got \(3, 5\)"):
        layer.backward(np.zeros((3, 5), np.float32))


def test_output_shape_checks_the_input_like_forward():
    layer = nn.Linear(3, 2, rng=0)
    assert layer.output_shape((5, 3)) == (5, 2) and layer.output_shape((5, 1, 3)) == (5, 1, 2)
    for shape in [(5, 4), (5, 3, 1), (3,)]:
        with pytest.raises(ValueError, match=rf"Linear: expected 3 input features .*got x of shape {re.escape(str(shape))}"):
            layer.output_shape(shape)


def test_a_linear_told_to_skip_returns_none_but_sets_its_deltas():
    layer = nn.Linear(3, 2, rng=0)
    x, delta = np.ones((4, 3), np.float32), np.ones((4, 2), np.float32)
    layer.forward(x)
    full = layer.backward(delta)
    expected = [d.copy() for d in layer.parameters_deltas]
    layer.parameters_deltas[0][...] = 0
    layer.needs_input_delta = False
    assert layer.backward(delta) is None
    np.testing.assert_array_equal(layer.parameters_deltas[0], expected[0])
    layer.needs_input_delta = True
    np.testing.assert_array_equal(layer.backward(delta), full)
