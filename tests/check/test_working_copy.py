"""sanity_check's working copy (nnscratch/check/working_copy.py): float64 on a copy, parameters
promoted consistently, the layer, its buffers and its generators left exactly as found."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.check import sanity_check

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
