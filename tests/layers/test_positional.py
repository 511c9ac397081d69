"""PositionalEmbedding and SinusoidalPositionalEncoding: against loops from the definitions, the
table of "Attention is all you need" element by element, CS231n's published PositionalEncoding
output, the gradient check, bad input, save/load and PyTorch (a learned table as a parameter)."""

import copy
import math

import numpy as np
import pytest

import nnscratch as nn

from helpers.dtypes import each_dtype


def loop_add_positions(x, table):
    """y[n, t, d] = x[n, t, d] + table[t, d], one element at a time."""
    y = np.zeros(x.shape)
    for n, t, d in np.ndindex(x.shape):
        y[n, t, d] = x[n, t, d] + table[t, d]
    return y


def loop_table_gradient(delta, max_len):
    """dL/dweight[t, d] = sum over n of delta[n, t, d]; 0 for the positions the input did not reach."""
    grad = np.zeros((max_len, delta.shape[2]))
    for n, t, d in np.ndindex(delta.shape):
        grad[t, d] += delta[n, t, d]
    return grad


def vaswani(t, j, dim):
    """PE(pos, 2i) = sin(pos / 10000^(2i / d)), PE(pos, 2i + 1) = cos(pos / 10000^(2i / d))."""
    i = j // 2
    angle = t / 10000 ** (2 * i / dim)
    return math.sin(angle) if j % 2 == 0 else math.cos(angle)


# -- PositionalEmbedding ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape, max_len", [((2, 5, 3), 8), ((3, 8, 4), 8), ((1, 1, 2), 4)], ids=str)
def test_learned_positions_equal_the_loops(shape, max_len):
    rng = np.random.default_rng(shape[1])
    layer = nn.PositionalEmbedding(max_len, shape[2], dtype=np.float64, rng=0)
    x, delta = rng.normal(size=shape), rng.normal(size=shape)
    np.testing.assert_allclose(layer.forward(x), loop_add_positions(x, layer.weight), rtol=1e-15)
    np.testing.assert_array_equal(layer.backward(delta), delta)
    np.testing.assert_allclose(layer.parameters_deltas[0], loop_table_gradient(delta, max_len), rtol=1e-12)


def test_learned_positions_start_as_nanogpt_and_keep_float32():
    layer = nn.PositionalEmbedding(512, 200, rng=0)
    assert layer.weight.shape == (512, 200) and layer.weight.dtype == np.float32
    assert abs(layer.weight.mean()) < 1e-3 and abs(layer.weight.std() - 0.02) < 2e-4  # N(0, 0.02^2)
    np.testing.assert_array_equal(nn.PositionalEmbedding(5, 3, rng=4).weight, nn.PositionalEmbedding(5, 3, rng=4).weight)
    y = layer.forward(np.ones((2, 3, 200), np.int64))  # integers computed in the weight's dtype
    assert y.dtype == np.float32 and layer.backward(np.ones((2, 3, 200))).dtype == np.float32


def test_the_gradient_beyond_the_input_is_zero_after_a_longer_one():
    layer = nn.PositionalEmbedding(6, 2, rng=0)
    layer.forward(np.zeros((1, 6, 2)))
    layer.backward(np.ones((1, 6, 2)))
    layer.forward(np.zeros((2, 3, 2)))
    layer.backward(np.ones((2, 3, 2)))
    np.testing.assert_array_equal(layer.parameters_deltas[0], [[2, 2]] * 3 + [[0, 0]] * 3)


def test_learned_positions_gradient_check():
    report = nn.sanity_check(nn.PositionalEmbedding(5, 3, rng=1), np.random.default_rng(2).normal(size=(2, 4, 3)))
    assert report.passed and [row.tensor for row in report] == ["input", "parameter 0"]
    assert report[1].coords == 15  # the row of position 4 included: its gradient is 0, and so is its derivative


# -- SinusoidalPositionalEncoding ------------------------------------------------------------------
@pytest.mark.parametrize("dim", [6, 7, 16, 1])
def test_the_table_is_attention_is_all_you_need_element_by_element(dim):
    layer = nn.SinusoidalPositionalEncoding(dim, max_len=50)
    table = layer.table(50)
    assert table.shape == (50, dim) and table.dtype == np.float64
    for t, j in np.ndindex(table.shape):
        assert table[t, j] == pytest.approx(vaswani(t, j, dim), abs=1e-12)
    np.testing.assert_array_equal(table[0], [(j % 2) for j in range(dim)])  # sin 0 = 0, cos 0 = 1


@pytest.mark.torch
def test_cs231n_positional_encoding(torch):
    # CS231n assignment 3 (Transformer_Captioning, test_case_positional_encoding): torch.manual_seed(231),
    # data = torch.randn(1, 2, 6), PositionalEncoding(6) with dropout 0.1 in training; its published
    # expected_pe_output, to 4 decimals. Dropout scales kept values by 1 / 0.9 and zeroed one (-0.0000):
    # every other value is (data + P) / 0.9, which pins down the interleaving of sines and cosines.
    torch.manual_seed(231)
    data = torch.randn(1, 2, 6).numpy().astype(np.float64)
    expected_pe_output = np.asarray([[[-1.2340, 1.1127, 1.6978, -0.0865, -0.0000, 1.2728],
                                      [0.9028, -0.4781, 0.5535, 0.8133, 1.2644, 1.7034]]])
    y = nn.SinusoidalPositionalEncoding(6).forward(data)
    kept = expected_pe_output != 0
    assert kept.sum() == 11
    np.testing.assert_allclose((y / 0.9)[kept], expected_pe_output[kept], rtol=0, atol=5e-5)


def test_fixed_positions_equal_the_loop_and_pass_the_gradient_through():
    rng = np.random.default_rng(3)
    x, delta = rng.normal(size=(3, 7, 5)), rng.normal(size=(3, 7, 5))
    layer = nn.SinusoidalPositionalEncoding(5, max_len=7)
    table = np.array([[vaswani(t, j, 5) for j in range(5)] for t in range(7)])
    np.testing.assert_allclose(layer.forward(x), loop_add_positions(x, table), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(layer.backward(delta), delta)
    assert layer.parameters == [] and layer.config() == {"dim": 5, "max_len": 7}


def test_fixed_positions_keep_the_input_dtype_and_reuse_one_table():
    layer = nn.SinusoidalPositionalEncoding(4)
    y = layer.forward(np.zeros((2, 3, 4), np.float32))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y[0], layer.table(3).astype(np.float32))
    assert layer.forward(np.zeros((1, 2, 4), np.int64)).dtype == np.float32
    table = layer.table(3, np.float32)
    assert layer.table(2, np.float32).base is table.base  # shorter inputs read the same table
    assert nn.SinusoidalPositionalEncoding(4).forward(np.zeros((1, 3, 4))).dtype == np.float64
    layer.release_memory()
    assert layer._tables == {} and not copy.deepcopy(layer)._tables


def test_fixed_positions_gradient_check():
    report = nn.sanity_check(nn.SinusoidalPositionalEncoding(4, max_len=6), np.random.default_rng(4).normal(size=(2, 6, 4)))
    assert report.passed and [row.tensor for row in report] == ["input"]


# -- both ------------------------------------------------------------------------------------------
MAKERS = [lambda: nn.PositionalEmbedding(4, 3, rng=0), lambda: nn.SinusoidalPositionalEncoding(3, max_len=4)]


@pytest.mark.parametrize("make", MAKERS, ids=["PositionalEmbedding", "SinusoidalPositionalEncoding"])
def test_bad_input(make):
    layer = make()
    name = layer.name
    with pytest.raises(ValueError, match=rf"{name}: the input has T = 5 positions, longer than max_len = 4"):
        layer.forward(np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match=rf"{name}: expected an input \(N, T, 3\), got shape \(2, 4, 2\)"):
        layer.forward(np.zeros((2, 4, 2)))
    with pytest.raises(ValueError, match=rf"{name}: expected an input \(N, T, 3\), got shape \(4, 3\)"):
        layer.forward(np.zeros((4, 3)))
    with pytest.raises(TypeError, match=rf"{name}: expected a numpy array as input, got list"):
        layer.forward([[[0.0, 0.0, 0.0]]])
    with pytest.raises(ValueError, match=rf"{name}: the input has T = 9 positions, longer than max_len = 4"):
        layer.output_shape((1, 9, 3))
    with pytest.raises(RuntimeError, match=rf"{name}.backward called before forward"):
        layer.backward(np.zeros((1, 2, 3)))
    layer.forward(np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match=rf"{name}.backward: expected delta of shape \(1, 2, 3\)"):
        layer.backward(np.zeros((1, 3, 3)))


@pytest.mark.parametrize("make, error, message", [
    (lambda: nn.PositionalEmbedding(0, 3), ValueError, r"PositionalEmbedding: max_len must be a positive int, got 0"),
    (lambda: nn.PositionalEmbedding(4, 2.5), TypeError, r"PositionalEmbedding: dim must be an int, got float 2.5"),
    (lambda: nn.PositionalEmbedding(4, 3, dtype="float16"), TypeError, r"PositionalEmbedding: dtype float16"),
    (lambda: nn.SinusoidalPositionalEncoding(0), ValueError, r"SinusoidalPositionalEncoding: dim must be a positive int"),
    (lambda: nn.SinusoidalPositionalEncoding(4, max_len=None), TypeError,
     r"SinusoidalPositionalEncoding: max_len must be an int, got NoneType None"),
])
def test_bad_hyperparameters(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_save_and_load_round_trip(tmp_path):
    net = nn.Sequential(nn.Embedding(9, 4, rng=0), nn.PositionalEmbedding(6, 4, dtype=np.float32, rng=1),
                        nn.SinusoidalPositionalEncoding(4, max_len=6), nn.Linear(4, 9, rng=2))
    loaded = nn.load(nn.save(net, tmp_path / "net.npz"))
    assert repr(loaded) == repr(net)
    ids = np.array([[1, 2, 3, 4, 5, 6], [0, 0, 8, 7, 1, 2]])
    np.testing.assert_array_equal(loaded.forward(ids), net.forward(ids))


@pytest.mark.torch
@each_dtype(float64=1e-12, float32=1e-6)
def test_learned_positions_match_pytorch_a_parameter_added_to_x(torch, dtype, tolerance):
    rng = np.random.default_rng(5)
    for case in range(5):
        n, t, d = (int(v) for v in rng.integers(1, 7, 3))
        max_len = t + int(rng.integers(0, 4))
        layer = nn.PositionalEmbedding(max_len, d, dtype=dtype, rng=case)
        x, delta = rng.normal(size=(n, t, d)).astype(dtype), rng.normal(size=(n, t, d)).astype(dtype)
        y, dx = layer.forward(x), layer.backward(delta)
        wpe = torch.nn.Parameter(torch.tensor(layer.weight.copy()))  # nanoGPT: x + wpe(arange(t))
        tx = torch.tensor(x, requires_grad=True)
        ty = tx + wpe[:t]
        ty.backward(torch.tensor(delta))
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(layer.parameters_deltas[0], wpe.grad.numpy(), rtol=tolerance, atol=tolerance)
