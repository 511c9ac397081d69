"""Embedding: forward and backward against loops written from the definition, CS231n's published
word_embedding_forward value, the scatter-add against np.add.at, the gradient check, padding, init,
bad ids, training with fit, save/load and PyTorch's nn.Embedding."""

import copy

import numpy as np
import pytest

import nnscratch as nn

from helpers.dtypes import each_dtype
from nnscratch.layers.embedding import scatter_add_rows


def loop_forward(weight, ids):
    """y[n, t] = weight[ids[n, t]], one position at a time."""
    y = np.zeros((*ids.shape, weight.shape[1]))
    for index in np.ndindex(ids.shape):
        for d in range(weight.shape[1]):
            y[index + (d,)] = weight[ids[index], d]
    return y


def loop_weight_gradient(num_embeddings, ids, delta, padding_idx=None):
    """dL/dweight[v] = the sum of delta over the positions holding id v (none for padding_idx)."""
    grad = np.zeros((num_embeddings, delta.shape[-1]))
    for index in np.ndindex(ids.shape):
        if ids[index] != padding_idx:
            grad[ids[index]] += delta[index]
    return grad


@pytest.mark.parametrize("shape", [(2, 5), (7,), (2, 3, 4), ()], ids=str)
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_forward_and_backward_equal_the_loops(shape, padding_idx):
    rng = np.random.default_rng(sum(shape))
    layer = nn.Embedding(6, 3, padding_idx=padding_idx, dtype=np.float64, rng=0)
    ids = rng.integers(0, 6, shape)
    delta = rng.normal(size=(*shape, 3))
    y = layer.forward(ids)
    assert y.shape == (*shape, 3) and y.dtype == np.float64
    np.testing.assert_array_equal(y, loop_forward(layer.weight, ids))
    assert layer.backward(delta) is None  # ids have no gradient
    padding = None if padding_idx is None else padding_idx % 6
    np.testing.assert_allclose(layer.parameters_deltas[0], loop_weight_gradient(6, ids, delta, padding), rtol=1e-12)


def test_backward_overwrites_the_gradient_never_accumulates():
    layer = nn.Embedding(4, 2, rng=0)
    ids = np.array([[0, 1, 1]])
    for _ in range(2):
        layer.forward(ids)
        layer.backward(np.ones((1, 3, 2), np.float32))
    np.testing.assert_array_equal(layer.parameters_deltas[0], [[1, 1], [2, 2], [0, 0], [0, 0]])


def test_cs231n_word_embedding_forward():
    # CS231n assignment 3, RNN_Captioning.ipynb, "Word embedding: forward": W = np.linspace(0, 1, V * D)
    # as (V, D) with N, T, V, D = 2, 4, 5, 3; the notebook's expected_out, typed as published.
    x = np.asarray([[0, 3, 1, 2], [2, 1, 0, 3]])
    layer = nn.Embedding(5, 3, dtype=np.float64)
    layer.weight[...] = np.linspace(0, 1, num=5 * 3).reshape(5, 3)
    expected_out = np.asarray([
        [[0., 0.07142857, 0.14285714],
         [0.64285714, 0.71428571, 0.78571429],
         [0.21428571, 0.28571429, 0.35714286],
         [0.42857143, 0.5, 0.57142857]],
        [[0.42857143, 0.5, 0.57142857],
         [0.21428571, 0.28571429, 0.35714286],
         [0., 0.07142857, 0.14285714],
         [0.64285714, 0.71428571, 0.78571429]]])
    np.testing.assert_allclose(layer.forward(x), expected_out, rtol=0, atol=5e-9)  # 8 decimals


@pytest.mark.parametrize("num_embeddings, rows", [(65, 768), (5, 40), (1000, 50), (3, 1)])
def test_scatter_add_equals_np_add_at(num_embeddings, rows):
    rng = np.random.default_rng(rows)
    ids = rng.integers(0, num_embeddings, rows)
    values = rng.normal(size=(rows, 4))
    expected = np.zeros((num_embeddings, 4))
    np.add.at(expected, ids, values)
    out = np.full((num_embeddings, 4), np.nan)  # every row rewritten, those of absent ids with 0
    np.testing.assert_allclose(scatter_add_rows(out, ids, values), expected, rtol=1e-12, atol=1e-15)
    assert not scatter_add_rows(out, ids[:0], values[:0]).any()


def test_initialisation_is_standard_normal_and_the_padding_row_zero():
    layer = nn.Embedding(400, 250, padding_idx=7, rng=0)
    weight = np.delete(layer.weight, 7, axis=0)
    assert layer.weight.dtype == np.float32 and layer.weight.shape == (400, 250)
    assert abs(weight.mean()) < 0.01 and abs(weight.std() - 1.0) < 0.01  # 99,750 draws of N(0, 1)
    assert not layer.weight[7].any()
    np.testing.assert_array_equal(nn.Embedding(9, 4, rng=3).weight, nn.Embedding(9, 4, rng=3).weight)
    assert nn.Embedding(9, 4, padding_idx=-1).padding_idx == 8
    assert nn.Embedding.integer_input is True and nn.Sequential(nn.Embedding(3, 2), nn.ReLU()).integer_input


def test_the_padding_row_never_moves_in_training():
    layer = nn.Embedding(5, 3, padding_idx=0, rng=1)
    layer.weight[0] = 0.5  # a padding vector set by hand stays as set, as in PyTorch
    optimizer = nn.SGD(layer, lr=0.1)
    for _ in range(3):
        layer.forward(np.array([[0, 1, 0], [2, 0, 4]]))
        layer.backward(np.ones((2, 3, 3), np.float32))
        assert not layer.parameters_deltas[0][0].any()
        optimizer.step()
    np.testing.assert_array_equal(layer.weight[0], [0.5, 0.5, 0.5])


def test_gradient_check_of_the_weight_with_the_ids_skipped():
    ids = np.array([[0, 3, 1, 3], [2, 1, 1, 4]])
    report = nn.sanity_check(nn.Embedding(5, 3, rng=2), ids)
    assert report.passed and [(row.tensor, row.result) for row in report] == [("input", "SKIP"), ("parameter 0", "PASS")]
    assert report[0].skipped == "integer ids have no gradient" and report[1].coords == 15


def test_the_padding_row_gradient_is_zero_by_decree_not_the_derivative():
    # Ids without the padding id: the padding row does not change the output, so 0 is its derivative.
    layer = nn.Embedding(5, 3, padding_idx=1, rng=2)
    assert nn.sanity_check(layer, np.array([[0, 3, 2, 3], [2, 4, 0, 4]])).passed
    # With padding ids the output does depend on that row; its gradient stays 0 all the same, as
    # PyTorch's does: the check says so, for that row only.
    with pytest.raises(nn.GradientCheckError, match=r"parameter 0 \(shape \(5, 3\)\) at index \(1, "):
        nn.sanity_check(layer, np.array([[0, 1, 2, 1]]))


def test_a_backward_that_ignores_repeated_ids_fails_the_check():
    class LastWins(nn.Embedding):  # the classic bug: weight_grad[ids] = delta keeps one of the repeats
        def backward(self, delta):
            self.parameters_deltas[0][...] = 0
            self.parameters_deltas[0][self._ids.ravel()] = delta.reshape(-1, self.embedding_dim)

    with pytest.raises(nn.GradientCheckError, match="parameter 0"):
        nn.sanity_check(LastWins(5, 3, rng=2), np.array([[0, 3, 3, 3]]))


@pytest.mark.parametrize("ids, error, message", [
    (np.array([[1.0, 2.0]]), TypeError, r"Embedding: ids must be integers \(an int array\), got an array of float64 "
                                        r"\(value 1.0 at index \(0, 0\)\)"),
    (np.array([True, False]), TypeError, r"got an array of bool \(value True at index \(0,\)\)"),
    (np.array(["a"]), TypeError, r"Embedding: the ids must be real numbers \(bool, int or float\), got an array of <U1$"),
    ([[1, 2]], TypeError, r"Embedding: expected a numpy array of ids as input, got list"),
    (np.array([[0, 1, 2], [3, 9, 4]]), ValueError, r"Embedding: id 9 at index \(1, 1\) is out of range: ids must be "
                                                   r"in \[0, 5\) for num_embeddings=5"),
    (np.array([0, -1]), ValueError, r"Embedding: id -1 at index \(1,\) is out of range"),
    (np.array([5], np.uint8), ValueError, r"Embedding: id 5 at index \(0,\) is out of range"),
])
def test_bad_ids(ids, error, message):
    with pytest.raises(error, match=message):
        nn.Embedding(5, 2, rng=0).forward(ids)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"num_embeddings": 0}, ValueError, r"Embedding: num_embeddings must be a positive int, got 0"),
    ({"embedding_dim": 2.0}, TypeError, r"Embedding: embedding_dim must be an int, got float 2.0"),
    ({"padding_idx": 5}, ValueError, r"Embedding: padding_idx must be an int in \[-5, 4\], got 5"),
    ({"padding_idx": -6}, ValueError, r"Embedding: padding_idx must be an int in \[-5, 4\], got -6"),
    ({"padding_idx": True}, TypeError, r"Embedding: padding_idx must be an int, got bool True"),
    ({"dtype": np.int32}, TypeError, r"Embedding: dtype must be float32 or float64, got int32"),
])
def test_bad_hyperparameters(kwargs, error, message):
    arguments = {"num_embeddings": 5, "embedding_dim": 2, **kwargs}
    with pytest.raises(error, match=message):
        nn.Embedding(**arguments)


def test_bad_delta_and_order_of_calls():
    layer = nn.Embedding(5, 2, rng=0)
    with pytest.raises(RuntimeError, match=r"Embedding.backward called before forward"):
        layer.backward(np.ones((1, 2)))
    layer.forward(np.array([[1, 2, 3]]))
    with pytest.raises(ValueError, match=r"Embedding.backward: expected delta of shape \(1, 3, 2\)"):
        layer.backward(np.ones((1, 3)))
    layer.weight = layer.weight.copy()
    with pytest.raises(ValueError, match=r"Embedding: weight is not the array in parameters"):
        layer.forward(np.array([1]))


def test_release_memory_forgets_the_ids():
    layer = nn.Embedding(5, 2, rng=0)
    layer.forward(np.arange(5)[None])
    copied = copy.deepcopy(layer)
    layer.release_memory()
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.ones((1, 5, 2)))
    assert copied.backward(np.ones((1, 5, 2), np.float32)) is None


def test_save_and_load_round_trip(tmp_path):
    net = nn.Sequential(nn.Embedding(7, 4, padding_idx=0, dtype=np.float64, rng=0), nn.Linear(4, 7, dtype=np.float64, rng=1))
    loaded = nn.load(nn.save(net, tmp_path / "net.npz"))
    assert repr(loaded) == repr(net) and loaded[0].config() == {
        "num_embeddings": 7, "embedding_dim": 4, "padding_idx": 0, "dtype": "float64"}
    ids = np.array([[1, 0, 6], [3, 3, 2]])
    np.testing.assert_array_equal(loaded.forward(ids), net.forward(ids))
    assert "(N, 3, 4)     28" in nn.Sequential(nn.Embedding(7, 4)).summary((3,))  # ids (3,) per sample -> (3, 4)


def test_sequential_starting_with_embedding_passes_no_gradient_to_the_ids():
    net = nn.Sequential(nn.Embedding(6, 4, rng=0), nn.Tanh(), nn.Linear(4, 3, rng=1))
    ids = np.array([[0, 5, 2], [1, 1, 4]])
    y = net.forward(ids)
    assert y.shape == (2, 3, 3) and net.output_shape((2, 3)) == (2, 3, 3)
    assert net.backward(np.ones_like(y)) is None
    full = [d.copy() for d in net.parameters_deltas]
    assert net.backward(np.ones_like(y), input_delta=False) is None
    for got, expected in zip(net.parameters_deltas, full, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_fit_trains_a_model_starting_with_embedding():
    # next character of a fixed cycle: the model must learn id v -> (v + 1) % 5, token by token
    rng = np.random.default_rng(0)
    starts = rng.integers(0, 5, 64)
    ids = (starts[:, None] + np.arange(7)) % 5
    x, y = ids[:, :-1], ids[:, 1:].copy()
    y[:, 0] = -100  # some targets ignored
    model = nn.Sequential(nn.Embedding(5, 8, rng=1), nn.Linear(8, 5, rng=2))
    loss = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
    before = model[0].weight.copy()
    history = nn.fit(model, loss, nn.Adam(model, lr=0.05), x, y, epochs=20, batch_size=16, rng=0, progress=False)
    assert history[-1]["accuracy"] == 1.0 and history[-1]["loss"] < 0.1 < history[0]["loss"]
    assert not np.array_equal(model[0].weight, before)
    result = nn.evaluate(model, x, y, loss=loss)
    assert result["accuracy"] == 1.0 and result["loss"] == pytest.approx(history[-1]["loss"], abs=0.05)


@pytest.mark.torch
@each_dtype(float64=1e-12, float32=1e-6)
def test_matches_pytorch_embedding(torch, dtype, tolerance):
    rng = np.random.default_rng(3)
    for case in range(6):
        num, dim = int(rng.integers(1, 40)), int(rng.integers(1, 9))
        shape = tuple(int(v) for v in rng.integers(1, 6, int(rng.integers(1, 4))))
        padding_idx = None if case % 2 else int(rng.integers(-num, num))
        layer = nn.Embedding(num, dim, padding_idx=padding_idx, dtype=dtype, rng=case)
        ids = rng.integers(0, num, shape)
        delta = rng.normal(size=(*shape, dim)).astype(dtype)
        y = layer.forward(ids)
        layer.backward(delta)
        twin = torch.nn.Embedding(num, dim, padding_idx=padding_idx, dtype=getattr(torch, np.dtype(dtype).name))
        with torch.no_grad():
            twin.weight.copy_(torch.tensor(layer.weight))
        ty = twin(torch.tensor(ids))
        ty.backward(torch.tensor(delta))
        np.testing.assert_array_equal(y, ty.detach().numpy())
        np.testing.assert_allclose(layer.parameters_deltas[0], twin.weight.grad.numpy(), rtol=tolerance, atol=tolerance)
