"""sanity_check's working copy (nnscratch/check/working_copy.py): float64 on a copy, parameters
promoted consistently, the layer, its buffers and its generators left exactly as found; and its parts
called directly (the typed copy, the protocol's lists read, float arguments, generators rewound)."""

from __future__ import annotations

import threading
import types

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.check import sanity_check
from nnscratch.check.working_copy import (as_float_arg, buffers_of, float64_copy, parameters_of, random_states, rewind,
                                          typed_copy)

from helpers.check_layers import PlainLinear, Square, run_check


# -- float64 on a copy; the layer is left as found --------------------------------------------
def test_float32_layer_is_checked_in_float64_and_left_exactly_as_found():
    layer = PlainLinear(dtype=np.float32)
    W, b, dW, db = layer.W, layer.b, *layer.parameters_deltas
    values = [a.copy() for a in (W, b, dW, db)]
    report = run_check(layer, atol=1e-9, rtol=1e-8)  # float32 arithmetic could not reach this
    assert report.passed and report[1].max_abs_err < 1e-9
    assert layer.W is W and layer.b is b and layer.parameters[0] is W and layer.parameters[1] is b
    assert layer.parameters_deltas[0] is dW and layer.parameters_deltas[1] is db
    for array, value in zip((W, b, dW, db), values):
        assert array.dtype == np.float32
        np.testing.assert_array_equal(array, value)
    assert not hasattr(layer, "x")  # not even a forward cache was left on the original


def test_parameters_referenced_through_dicts_and_tuples_are_promoted_consistently():
    class Indirect(PlainLinear):
        def __init__(self):
            super().__init__(dtype=np.float32)
            self.state = {"W": self.W, "pair": (self.W, self.b)}

        def forward(self, x, *args):
            W, b = self.state["pair"]
            assert W is self.state["W"]
            self.x = x.astype(W.dtype, copy=False)
            return self.x @ W + b

    layer = Indirect()
    report = run_check(layer, atol=1e-9, rtol=1e-8)
    assert report.passed
    assert layer.state["pair"][0] is layer.W and layer.W.dtype == np.float32


def test_float_args_go_to_float64_and_integer_args_stay():
    seen = []

    class Recorder(Square):
        def forward(self, x, *args):
            seen.append(tuple(a.dtype for a in args))
            return super().forward(x)

    run_check(Recorder(), args=(np.zeros(5, dtype=np.int32), np.zeros((5, 4), dtype=np.float32)))
    int32, float32, float64 = np.dtype(np.int32), np.dtype(np.float32), np.dtype(np.float64)
    # every call of the check; then the float32 probe's two, in float32 and in float64
    assert set(seen[:-2]) == {(int32, float64)} and seen[-2:] == [(int32, float32), (int32, float64)]


def test_a_copy_sharing_the_original_parameters_is_refused():
    class SelfCopy(PlainLinear):
        def __deepcopy__(self, memo):
            return self

    with pytest.raises(TypeError, match="shares parameter or buffer arrays with the original"):
        run_check(SelfCopy())


def test_builtin_float32_conv_is_left_exactly_as_found_deltas_included():
    import nnscratch

    conv = nnscratch.Conv2D(2, 3, 3, stride=2, padding=1, rng=4)
    x = np.random.default_rng(4).standard_normal((2, 2, 5, 5)).astype(np.float32)
    conv.forward(x)
    conv.backward(np.ones((2, 3, 3, 3), dtype=np.float32))
    params, deltas = list(conv.parameters), list(conv.parameters_deltas)
    values = [a.copy() for a in params + deltas]
    report = sanity_check(conv, x)
    assert report.passed and max(row.max_abs_err for row in report) < 1e-8  # float64 accuracy
    assert all(now is p for now, p in zip(conv.parameters, params))
    assert all(now is d for now, d in zip(conv.parameters_deltas, deltas))
    for array, value in zip(params + deltas, values):
        assert array.dtype == np.float32
        np.testing.assert_array_equal(array, value)
    assert conv.forward(x).dtype == np.float32


# -- buffers ---------------------------------------------------------------------------------
class RunningScale:
    """y = x * w, which also keeps a running mean of x in a float32 buffer, as BatchNorm does."""

    def __init__(self):
        self.w = np.array([1.5, -0.5, 2.0], dtype=np.float32)
        self.running_mean = np.full(3, 7.0, dtype=np.float32)
        self.parameters, self.parameters_deltas = [self.w], [np.zeros(3, np.float32)]
        self.buffers = [self.running_mean]

    def forward(self, x, *args):
        self.x = x
        self.running_mean *= 0.9
        self.running_mean += 0.1 * x.mean(axis=0)
        return x * self.w

    def backward(self, delta):
        self.parameters_deltas[0] = (delta * self.x).sum(axis=0)
        return delta * self.w


def test_the_check_leaves_buffers_as_it_found_them():
    layer = RunningScale()
    buffer = layer.running_mean
    sanity_check(layer, np.random.default_rng(0).normal(size=(4, 3)))
    assert layer.buffers[0] is buffer and buffer.dtype == np.float32
    np.testing.assert_array_equal(buffer, np.full(3, 7.0, np.float32))


# -- stochastic layers -------------------------------------------------------------------------
class Noisy:
    """A user's stochastic layer, y = x * (1 + s) with fresh noise s every forward; its generator
    held where the rule says (``self.rng``), or deeper (in a dict), or as a legacy RandomState."""

    def __init__(self, where="rng"):
        self.where = where
        if where == "rng":
            self.rng = np.random.default_rng(0)
        elif where == "dict":
            self.state = {"sources": [np.random.default_rng(0)]}
        else:
            self.rng = np.random.RandomState(0)
        self.parameters, self.parameters_deltas = [], []

    def _draw(self, shape):
        if self.where == "dict":
            return self.state["sources"][0].standard_normal(shape)
        return self.rng.standard_normal(shape)

    def forward(self, x, *args):
        self.scale = 1.0 + self._draw(x.shape)
        return x * self.scale

    def backward(self, delta):
        return delta * self.scale


@pytest.mark.parametrize("where", ["rng", "dict", "RandomState"])
def test_a_stochastic_layer_sees_the_same_draws_in_every_forward(where):
    layer = Noisy(where)
    x = np.random.default_rng(1).normal(size=(3, 4))
    assert sanity_check(layer, x).passed
    assert sanity_check(nn.Sequential(Noisy(where), Noisy(where)), x).passed  # through containers


def test_the_check_leaves_the_generators_of_the_layer_where_they_were():
    layer = Noisy()
    before = layer.rng.bit_generator.state
    sanity_check(layer, np.ones((2, 3)))
    assert layer.rng.bit_generator.state == before


# -- the working copy's parts, called directly -----------------------------------------------
class Holder:
    """A plain layer whose arrays sit in a list, a dict, a tuple and a nested object."""

    def __init__(self, dtype=np.float32):
        self.weight = np.arange(6, dtype=dtype).reshape(2, 3)
        self.parameters = [self.weight]
        self.parameters_deltas = [np.zeros_like(self.weight)]
        self.buffers = [np.ones(3, dtype), "not an array"]
        self.by_name = {"w": self.weight}
        self.pair = (self.weight, 1)
        self.inner = types.SimpleNamespace(w=self.weight, ids=np.arange(3))


def test_typed_copy_swaps_every_reference_to_a_float_array_and_nothing_else():
    layer = Holder()
    work = typed_copy(layer, "Holder", np.float64)
    w = work.parameters[0]
    assert w.dtype == np.float64 and work.parameters_deltas[0].dtype == np.float64
    assert work.weight is w and work.by_name["w"] is w and work.pair[0] is w and work.inner.w is w
    assert work.pair[1] == 1 and work.buffers[0].dtype == np.float64 and work.buffers[1] == "not an array"
    assert work.inner.ids.dtype == layer.inner.ids.dtype  # integer arrays are left as they are
    np.testing.assert_array_equal(w, layer.weight)
    assert layer.weight.dtype == np.float32 and layer.by_name["w"] is layer.weight  # the original untouched
    assert float64_copy(layer, "Holder").weight.dtype == np.float64


def test_a_layer_that_cannot_be_deep_copied_is_a_clear_error():
    layer = Holder()
    layer.lock = threading.Lock()
    with pytest.raises(TypeError, match=r"^sanity_check: cannot deep-copy layer Holder to check it: "):
        float64_copy(layer, "Holder")


def test_parameters_of_and_buffers_of_read_the_protocol_s_lists():
    layer = Holder()
    assert parameters_of(layer) == [layer.weight] and parameters_of(object()) == []
    assert len(buffers_of(layer)) == 1 and buffers_of(object()) == []
    layer.parameters = layer.weight
    with pytest.raises(TypeError, match=r"^sanity_check: Holder.parameters must be a list of arrays, got ndarray$"):
        parameters_of(layer)
    layer.parameters = [layer.weight, [1.0]]
    with pytest.raises(TypeError, match=r"^sanity_check: Holder.parameters\[1\] must be a numpy array, got list$"):
        parameters_of(layer)


def test_as_float_arg_changes_float_arrays_only():
    soft = np.full((2, 3), 0.5, np.float32)
    assert as_float_arg(soft).dtype == np.float64 and as_float_arg(soft, np.float32).dtype == np.float32
    labels = np.array([0, 2])
    assert as_float_arg(labels) is labels and as_float_arg("text") == "text"


def test_random_states_finds_each_generator_once_and_rewind_puts_them_back():
    shared = np.random.default_rng(0)
    legacy = np.random.RandomState(1)
    layer = types.SimpleNamespace(rng=shared, more=[shared, {"legacy": legacy}], pair=(shared,))
    states = random_states(layer)
    assert [generator for generator, _ in states] in ([shared, legacy], [legacy, shared])
    first = (shared.random(3), legacy.rand(3))
    rewind(states)
    again = (shared.random(3), legacy.rand(3))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
