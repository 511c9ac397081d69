"""The fast RNN, LSTM and GRU against their textbook twins (nnscratch.reference, themselves checked
against the loop twins in tests/reference/test_recurrent.py), sanity_check on the input,
every parameter and the initial state, save/load, Sequential, and what only the fast layers have:
recycled arrays, any memory layout of the input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as nn
from helpers.recurrent_cases import CELLS, EACH_CELL, make, normal, parts, random_state, twin_of
from nnscratch.commands.sanity_check_sequences import StartingFrom


def close(got, want, dtype):
    """Equal to float64 rounding, or to float32 rounding relative to the largest value."""
    assert got.dtype == dtype, (got.dtype, dtype)
    if dtype == np.float32:
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6 * max(1.0, float(np.abs(want).max(initial=0.0))))
    else:
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * max(1.0, float(np.abs(want).max(initial=0.0))))


def against_reference(layer, x, state, delta):
    """Forward, final state, dL/dx, dL/d(initial state) and every parameter gradient of the fast
    ``layer`` against its reference twin with the same parameters."""
    twin, dtype = twin_of(layer, nn.reference), layer.weight_ih.dtype
    y, y_twin = layer.forward(x, initial_state=state), twin.forward(x, initial_state=state)
    close(y, y_twin, dtype)
    for got, want in zip(parts(layer.final_state), parts(twin.final_state), strict=True):
        close(got, want, dtype)
    dx, dx_twin = layer.backward(delta), twin.backward(delta)
    close(dx, dx_twin, dtype)
    for got, want in zip(parts(layer.initial_state_delta), parts(twin.initial_state_delta), strict=True):
        close(got, want, dtype)
    for got, want in zip(layer.parameters_deltas, twin.parameters_deltas, strict=True):
        close(got, want, dtype)
    return y, dx


@EACH_CELL
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("given_state", [True, False])
def test_matches_reference_twin(cell, extra, dtype, bias, given_state):
    layer = make(nn, cell, extra, 5, 6, dtype=dtype, bias=bias, seed=1)
    state = random_state(cell, 4, 6, 2, dtype) if given_state else None
    y, dx = against_reference(layer, normal((4, 7, 5), 3, dtype=dtype), state, normal((4, 7, 6), 4, dtype=dtype))
    assert y.shape == (4, 7, 6) and dx.shape == (4, 7, 5)
    assert y.flags.c_contiguous and dx.flags.c_contiguous  # no transposed views handed out


def laid_out(x: np.ndarray, layout: str) -> np.ndarray:
    """The same values as a time-major view, a strided slice, or integers (cast by the layer)."""
    if layout == "time-major":
        return np.ascontiguousarray(x.transpose(1, 0, 2)).transpose(1, 0, 2)
    if layout == "strided":
        bigger = np.zeros((x.shape[0], 2 * x.shape[1], x.shape[2] + 1), x.dtype)
        bigger[:, ::2, :-1] = x
        return bigger[:, ::2, :-1]
    if layout == "integers":
        return np.round(x * 2).astype(np.int16)
    return x


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(range(len(CELLS))), st.integers(1, 5), st.integers(1, 9), st.integers(1, 7),
       st.integers(1, 7), st.booleans(), st.sampled_from([np.float64, np.float32]),
       st.sampled_from(["C", "time-major", "strided", "integers"]), st.booleans(), st.integers(0, 2**16))
def test_random_configurations_match_reference_twin(which, n, steps, d, h, bias, dtype, layout, given_state, seed):
    cell, extra = CELLS[which]
    layer = make(nn, cell, extra, d, h, dtype=dtype, bias=bias, seed=seed)
    x = laid_out(normal((n, steps, d), seed + 1), layout)
    state = random_state(cell, n, h, seed + 2) if given_state else None  # float64 state: cast to the layer's
    against_reference(layer, x, state, normal((n, steps, h), seed + 3))


@EACH_CELL
def test_batch_size_and_length_change_from_call_to_call(cell, extra):
    layer = make(nn, cell, extra, 3, 4, seed=2)
    for index, (n, steps) in enumerate([(4, 6), (1, 6), (4, 2), (3, 9), (4, 6)]):
        against_reference(layer, normal((n, steps, 3), index), None, normal((n, steps, 4), 10 + index))


@EACH_CELL
def test_backward_twice_gives_the_same_and_deltas_are_overwritten(cell, extra):
    layer = make(nn, cell, extra, 3, 4, seed=3)
    y = layer.forward(normal((2, 5, 3), 0), initial_state=random_state(cell, 2, 4))
    delta = normal(y.shape, 1)
    dx = layer.backward(delta).copy()
    first = [d.copy() for d in layer.parameters_deltas] + [p.copy() for p in parts(layer.initial_state_delta)]
    np.testing.assert_array_equal(layer.backward(delta), dx)
    layer.backward(2 * delta)  # set, not accumulated: twice the gradient, not three times
    again = list(layer.parameters_deltas) + list(parts(layer.initial_state_delta))
    for a, b in zip(first, again, strict=True):
        np.testing.assert_allclose(b, 2 * a, rtol=1e-12)


@EACH_CELL
def test_results_do_not_change_under_the_caller(cell, extra):
    # Arrays are recycled inside the layer; what it hands out must never be overwritten later.
    layer = make(nn, cell, extra, 3, 4, seed=4)
    y = layer.forward(normal((2, 5, 3), 0))
    dx = layer.backward(normal(y.shape, 1))
    held = [y, dx, *parts(layer.final_state), *parts(layer.initial_state_delta)]
    kept = [a.copy() for a in held]
    for seed in range(3):
        layer.forward(normal((2, 5, 3), 10 + seed))
        layer.backward(normal(y.shape, 20 + seed))
    for a, b in zip(held, kept, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(parts(layer.final_state)[0], kept[2])  # new calls, new values


def test_float32_end_to_end_and_close_to_float64():
    layer32 = make(nn, "LSTM", {}, 4, 5, dtype=np.float32, seed=5)
    layer64 = nn.LSTM(**{**layer32.config(), "dtype": "float64"})
    for a, b in zip(layer64.parameters, layer32.parameters):
        a[...] = b
    x, delta = normal((3, 6, 4), 0), normal((3, 6, 5), 1)
    y32, y64 = layer32.forward(x), layer64.forward(x)  # float64 input: cast to float32 by the layer
    dx32, dx64 = layer32.backward(delta), layer64.backward(delta)
    assert y32.dtype == dx32.dtype == np.float32
    assert all(d.dtype == np.float32 for d in layer32.parameters_deltas + list(layer32.initial_state_delta))
    assert all(p.dtype == np.float32 for p in layer32.final_state)
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-5)


@EACH_CELL
def test_release_memory_drops_the_cache_and_the_recycled_arrays(cell, extra):
    layer = make(nn, cell, extra, 3, 4, seed=6)
    x = normal((2, 5, 3), 0)
    y = layer.forward(x).copy()
    assert layer._arrays
    layer.release_memory()
    assert layer._cache is None and layer._arrays == {}
    with pytest.raises(RuntimeError, match=f"{cell}.backward called before forward"):
        layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(layer.forward(x), y)


# -- the layer protocol's other members -----------------------------------------------------------
@EACH_CELL
def test_parameters_names_shapes_and_initialisation_are_pytorch_s(cell, extra):
    gates = {"RNN": 1, "LSTM": 4, "GRU": 3}[cell]
    layer = getattr(nn, cell)(20, 100, rng=0, **extra)
    assert layer.parameters == [layer.weight_ih, layer.weight_hh, layer.bias_ih, layer.bias_hh]
    assert [p.shape for p in layer.parameters] == [(gates * 100, 20), (gates * 100, 100), (gates * 100,),
                                                   (gates * 100,)]
    assert all(p.dtype == np.float32 for p in layer.parameters + layer.parameters_deltas)
    values = np.concatenate([p.ravel() for p in layer.parameters])
    assert np.abs(values).max() <= 0.1  # U(-1/sqrt(H), 1/sqrt(H)), H = 100
    assert abs(values.std() - 0.1 / np.sqrt(3)) < 0.002 and abs(values.mean()) < 0.002
    no_bias = getattr(nn, cell)(2, 3, bias=False, **extra)
    assert no_bias.parameters == [no_bias.weight_ih, no_bias.weight_hh] and no_bias.bias_ih is None
    different = getattr(nn, cell)(20, 100, rng=1, **extra)
    assert not np.array_equal(different.weight_hh, layer.weight_hh)


def test_config_repr_and_output_shape():
    layer = nn.RNN(3, 8, nonlinearity="relu", bias=False, stateful=True, dtype=np.float64)
    assert layer.config() == {"input_size": 3, "hidden_size": 8, "nonlinearity": "relu", "bias": False,
                              "stateful": True, "dtype": "float64"}
    assert repr(layer) == "RNN(input_size=3, hidden_size=8, nonlinearity='relu', bias=False, stateful=True, dtype='float64')"
    assert repr(nn.LSTM(2, 4)) == "LSTM(input_size=2, hidden_size=4, bias=True, stateful=False, dtype='float32')"
    assert nn.GRU(3, 5).output_shape((7, 11, 3)) == (7, 11, 5)
    net = nn.Sequential(nn.LSTM(3, 4), nn.GRU(4, 6), nn.Linear(6, 2))
    assert net.output_shape((2, 5, 3)) == (2, 5, 2)
    assert "LSTM(input_size=3" in net.summary((5, 3)) and "(N, 5, 6)" in net.summary((5, 3))


@pytest.mark.parametrize("kind", [nn, nn.reference], ids=["fast", "reference"])
@EACH_CELL
@pytest.mark.parametrize("mode", ["initial_state", "stateful", "eval"])
def test_sanity_check_on_the_input_every_parameter_and_the_initial_state(kind, cell, extra, mode):
    layer = make(kind, cell, extra, 3, 4, dtype=np.float32, seed=7, stateful=mode == "stateful")
    if mode == "eval":
        layer.eval()  # a recurrent layer computes the same in both modes
    # the initial state as parameters after the layer's own (the command's wrapper), so that the check
    # covers dL/dh0 (and dL/dc0); stateful: set as the carried state by reset_state(state)
    checked = StartingFrom(layer, parts(random_state(cell, 3, 4, 8)), stateful=mode == "stateful")
    x = normal((3, 5, 3), 9)
    if cell == "RNN" and extra:  # relu: keep the pre-activations away from the kink at 0
        x += np.sign(x) * 0.3
    report = nn.sanity_check(checked, x, max_coords=60, name=cell)
    rows = ["input"] + [f"parameter {i}" for i in range(4 + (cell == "LSTM") + 1)]
    assert report.passed and [row.tensor for row in report] == rows
    assert layer.weight_ih.dtype == np.float32  # the check works on a float64 copy


# -- inside networks --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", [nn, nn.reference], ids=["fast", "reference"])
def test_save_and_load_keep_config_and_parameters(kind, tmp_path):
    model = nn.Sequential(make(kind, "LSTM", {}, 3, 5, dtype=np.float32, seed=1, stateful=True),
                          make(kind, "GRU", {}, 5, 4, bias=False, seed=2),
                          make(kind, "RNN", {"nonlinearity": "relu"}, 4, 2, seed=3), nn.Linear(2, 1, rng=4))
    x = normal((2, 6, 3), 5)
    y = model.forward(x)
    model.layers[0].reset_state()
    nn.save(model, tmp_path / "model.npz")
    loaded = nn.load(tmp_path / "model.npz")
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert [layer.config() for layer in loaded.layers] == [layer.config() for layer in model.layers]
    for a, b in zip(loaded.parameters, model.parameters, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.forward(x), y)


@EACH_CELL
def test_parameter_specs_match_the_built_layer(cell, extra):
    cls = getattr(nn, cell)
    for kwargs in ({}, {"bias": False}, {"dtype": "float64", "stateful": True}):
        layer = cls(4, 3, **extra, **kwargs)
        assert cls.parameter_specs(**layer.config()) == [(p.shape, p.dtype) for p in layer.parameters]


def test_in_a_sequential_with_targets_and_swapped_for_the_reference_layers_trains_the_same():
    # Sequential hands the targets to every layer positionally; the state stays keyword-only.
    rng = np.random.default_rng(0)
    x, targets = rng.standard_normal((12, 5, 3)), rng.standard_normal((12, 5, 2))
    runs = []
    for kind in (nn.reference, nn):
        net = nn.Sequential(make(kind, "LSTM", {}, 3, 6, seed=1), make(kind, "GRU", {}, 6, 4, seed=2),
                            make(kind, "RNN", {}, 4, 4, seed=3), nn.Linear(4, 2, dtype=np.float64, rng=4),
                            nn.MeanSquaredError(), nn.Mean())
        optimizer, losses = nn.Adam(net, lr=0.01), []
        for step in range(12):
            batch = slice(4 * (step % 3), 4 * (step % 3) + 4)
            losses.append(float(net.forward(x[batch], targets[batch])))
            net.backward()
            optimizer.step()
        runs.append((losses, net.parameters))
    (losses_ref, params_ref), (losses, params) = runs
    np.testing.assert_allclose(losses, losses_ref, rtol=1e-9)
    assert np.mean(losses[-3:]) < 0.9 * np.mean(losses[:3])  # it learnt
    for a, b in zip(params, params_ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
def test_a_character_model_on_token_ids_learns_a_repeated_text(cell):
    # Embedding -> recurrent layer -> Linear -> SoftmaxCrossEntropy over tokens -> Mean, as char-rnn
    text = "hello world, hello recurrent world. " * 20
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text])
    net = nn.Sequential(nn.Embedding(len(chars), 16, rng=0), getattr(nn, cell)(16, 32, rng=1),
                        nn.Linear(32, len(chars), rng=2), nn.SoftmaxCrossEntropy(), nn.Mean())
    optimizer, rng, losses = nn.Adam(net, lr=0.01), np.random.default_rng(0), []
    for _ in range(150):
        starts = rng.integers(0, len(ids) - 17, 8)
        x, y = np.stack([ids[s : s + 16] for s in starts]), np.stack([ids[s + 1 : s + 17] for s in starts])
        losses.append(float(net.forward(x, y)))
        assert net.backward() is None  # integer ids have no gradient
        optimizer.step()
    assert losses[0] > 2.0 and np.mean(losses[-10:]) < 0.5


@EACH_CELL
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_an_empty_batch_gives_empty_results_and_zero_gradients_as_the_twin(cell, extra, dtype):
    # N = 0 (PyTorch's nn.LSTM gives (0, T, H) and zero gradients); the fast layer's reshapes failed on it
    layer = make(nn, cell, extra, dtype=dtype)
    layer.parameters_deltas[0][...] = 1.0  # a stale gradient must be overwritten
    x = np.zeros((0, 5, 3), dtype)
    y, dx = against_reference(layer, x, None, np.zeros((0, 5, 4), dtype))
    assert y.shape == (0, 5, 4) and dx.shape == (0, 5, 3)
    assert all(part.shape == (0, 4) for part in parts(layer.final_state) + parts(layer.initial_state_delta))
    assert all(not grad.any() for grad in layer.parameters_deltas)
