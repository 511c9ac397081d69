"""sanity_check (nnscratch/check/sanity.py): plain protocol classes with right and deliberately wrong
gradients, views, non-finite values, bad options, and the built-in layers (the working copy:
test_working_copy.py; the sampled coordinates: test_numerical.py)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnscratch.check import GradientCheckError, GradientCheckReport, TensorCheck, sanity_check

from helpers.check_layers import PlainLinear, Square, WrongWeightGradient, run_check


# -- small layers written the way a user would: plain classes, no base class -----------------
class WrongInputGradient(PlainLinear):
    def backward(self, delta):
        return 2 * super().backward(delta)


class ZeroInputGradient(PlainLinear):
    def backward(self, delta):
        super().backward(delta)
        return np.zeros_like(self.x)


class AccumulatingDeltas(PlainLinear):
    """The classic bug: += into the delta buffers, so a second backward doubles them."""

    def backward(self, delta):
        self.parameters_deltas[0] += self.x.T @ delta
        self.parameters_deltas[1] += delta.sum(axis=0)
        return delta @ self.W.T


class NoisyBackward(PlainLinear):
    def backward(self, delta):
        return super().backward(delta) + np.random.default_rng().normal(0, 1e-3, self.x.shape)


class StoredDtype(PlainLinear):
    """Casts to a dtype stored at construction: cannot be checked in float64."""

    def __init__(self):
        super().__init__(dtype=np.float32)
        self.dtype = np.float32

    def forward(self, x, *args):
        return super().forward(x).astype(self.dtype)


class PlainFlatten:
    """Returns a view of its input, as Flatten does."""

    parameters: list = []
    parameters_deltas: list = []

    def forward(self, x, *args):
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, delta):
        return delta.reshape(self.shape)


class ScaledSumOfSquares:
    """A scalar output: f = s * sum(x**2), with a single parameter s of shape ()."""

    def __init__(self):
        self.s = np.array(0.7)
        self.parameters = [self.s]
        self.parameters_deltas = [np.zeros(())]

    def forward(self, x, *args):
        self.x = x
        return float(self.s * np.sum(x**2))

    def backward(self, delta):
        self.parameters_deltas[0] = np.array(delta * np.sum(self.x**2))
        return delta * 2 * self.s * self.x


# -- correct gradients pass --------------------------------------------------------------------
def test_plain_class_with_correct_gradients_passes_and_reports_every_tensor():
    report = run_check(PlainLinear())
    assert isinstance(report, GradientCheckReport) and report.passed
    assert [row.tensor for row in report] == ["input", "parameter 0", "parameter 1"]
    assert [row.shape for row in report] == [(5, 4), (4, 3), (3,)]
    assert [row.coords for row in report] == [20, 12, 3]  # small tensors: every coordinate
    for row in report:
        assert isinstance(row, TensorCheck) and row.passed
        assert row.max_abs_err < 1e-8 and row.max_rel_err < 1e-7
    text = str(report)
    assert "PlainLinear" in text and "parameter 0 (4, 3)" in text and text.count("PASS") == 3


def test_layer_without_parameters_attributes_and_scalar_output():
    assert [row.tensor for row in run_check(Square())] == ["input"]
    report = run_check(ScaledSumOfSquares())
    assert [(row.tensor, row.shape) for row in report] == [("input", (5, 4)), ("parameter 0", ())]


def test_view_returning_layer_is_checked_correctly():
    report = run_check(PlainFlatten(), np.random.default_rng(2).standard_normal((2, 3, 4)))
    assert report[0].shape == (2, 3, 4) and report[0].coords == 24 and report[0].max_abs_err < 1e-9


def test_a_layer_returning_its_reused_output_buffer_is_checked_correctly():
    class BufferedSquare(Square):
        out = None

        def forward(self, x, *args):
            if self.out is None or self.out.shape != x.shape:
                self.out = np.empty_like(x)
            np.multiply(x, x, out=self.out)
            self.x = x
            return self.out  # the same array every call, overwritten each time

    assert run_check(BufferedSquare()).passed


def test_a_layer_that_modifies_its_input_does_not_corrupt_the_check_or_the_callers_x():
    class Clobbers(Square):
        def forward(self, x, *args):
            y = super().forward(x.copy())
            x[...] = 0.0  # bad manners; the check feeds copies
            return y

    x = np.random.default_rng(3).standard_normal((3, 4))
    before = x.copy()
    assert run_check(Clobbers(), x).passed
    np.testing.assert_array_equal(x, before)


# -- wrong gradients fail, with a message that says where ----------------------------------------
def parse_values(message):
    numerical = float(re.search(r"numerical (\S+),", message).group(1))
    analytical = float(re.search(r"analytical (\S+),", message).group(1))
    return numerical, analytical


def test_wrong_input_gradient_fails_naming_layer_tensor_index_and_values():
    with pytest.raises(GradientCheckError, match=r"WrongInputGradient: gradient is wrong for input") as info:
        run_check(WrongInputGradient())
    message = str(info.value)
    assert "(shape (5, 4))" in message and re.search(r"at index \(\d, \d\)", message)
    assert "abs err" in message and "rel err" in message
    numerical, analytical = parse_values(message)
    assert analytical == pytest.approx(2 * numerical, rel=1e-6)
    assert isinstance(info.value, AssertionError)
    # the parameters were right: only the input row fails
    assert [row.passed for row in info.value.report] == [False, True, True]


def test_wrong_parameter_gradient_fails_at_the_wrong_coordinate():
    with pytest.raises(GradientCheckError, match=r"for parameter 0 \(shape \(4, 3\)\) at index \(1, 2\)") as info:
        run_check(WrongWeightGradient())
    numerical, analytical = parse_values(str(info.value))
    assert analytical == pytest.approx(numerical + 0.5, abs=1e-6)


def test_all_zero_analytical_gradient_fails():
    with pytest.raises(GradientCheckError, match=r"ZeroInputGradient: gradient is wrong for input"):
        run_check(ZeroInputGradient())


def test_all_zero_gradient_fails_even_when_the_change_is_below_atol():
    class Tiny(Square):
        def forward(self, x, *args):
            return 1e-9 * super().forward(x)

        def backward(self, delta):
            return np.zeros_like(self.x)

    with pytest.raises(GradientCheckError, match="analytical gradient is all zero, but the function changes"):
        run_check(Tiny())


def test_a_function_that_truly_does_not_change_may_have_a_zero_gradient():
    class Constant:
        def forward(self, x, *args):
            self.x = x
            return np.ones_like(x)

        def backward(self, delta):
            return np.zeros_like(self.x)

    assert run_check(Constant()).passed


def test_zero_tolerances_pick_the_largest_error_as_worst_without_numpy_warnings():
    # atol = rtol = 0 makes every tolerance 0. Column 0 of x is zero, so row 0 of dW is exactly 0
    # both ways (no error over a zero tolerance); the wrong coordinate (1, 2) is the worst error.
    x = np.random.default_rng(1).standard_normal((5, 4))
    x[:, 0] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(GradientCheckError) as info:
            run_check(WrongWeightGradient(), x, atol=0, rtol=0)
        assert run_check(Square(), np.zeros((3, 2)), atol=0, rtol=0).passed  # all gradients exactly 0
    weight = info.value.report[1]
    assert weight.tensor == "parameter 0" and not weight.passed and weight.problem == "gradient is wrong"
    assert weight.worst_index == (1, 2) and weight.analytical == pytest.approx(weight.numerical + 0.5, abs=1e-6)
    assert weight.max_abs_err == pytest.approx(0.5, abs=1e-6) and np.isfinite(weight.max_rel_err)
    for row in info.value.report:  # a failing row names its largest error, never an exact coordinate
        assert row.passed or abs(row.numerical - row.analytical) == row.max_abs_err > 0


class NaNInputGradient(PlainLinear):
    def backward(self, delta):
        delta_x = super().backward(delta)
        delta_x[2, 1] = np.nan
        return delta_x


class InfBiasGradient(PlainLinear):
    def backward(self, delta):
        delta_x = super().backward(delta)
        self.parameters_deltas[1][0] = np.inf
        return delta_x


class LogOfInput(Square):
    def forward(self, x, *args):
        self.x = x
        return np.log(x)  # NaN for the negative entries of a standard normal input


def test_nan_in_backward_is_named_as_such_not_as_a_nondeterministic_backward():
    with pytest.raises(GradientCheckError, match=r"NaNInputGradient: backward gave a non-finite value: "
                                                 r"input \(5, 4\) at index \(2, 1\) is nan \(1 of 20 values"):
        run_check(NaNInputGradient())


def test_inf_in_a_parameter_delta_is_named():
    with pytest.raises(GradientCheckError, match=r"InfBiasGradient: backward gave a non-finite value: "
                                                 r"parameter 1 \(3,\) at index \(0,\) is inf"):
        run_check(InfBiasGradient())


def test_nan_in_forward_is_named():
    x = np.array([[1.0, -2.0], [3.0, 4.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the user's log of a negative number
        with pytest.raises(GradientCheckError, match=r"LogOfInput: forward gave a non-finite value: "
                                                     r"output at index \(0, 1\) is nan \(1 of 4 values"):
            run_check(LogOfInput(), x)


def test_accumulated_deltas_fail_as_accumulating_and_one_backward_is_right():
    with pytest.raises(GradientCheckError, match=r"AccumulatingDeltas: parameter 0 \(shape \(4, 3\)\) accumulates: "
                                                 r"each backward adds its gradient to the last one.* never add") as info:
        run_check(AccumulatingDeltas())
    report = info.value.report
    assert [(row.tensor, row.passed, [d.kind for d in row.diagnoses]) for row in report] == [
        ("input", True, []), ("parameter 0", False, ["accumulates"]), ("parameter 1", False, ["accumulates"])]
    # what one backward adds is the right gradient: compared as such, to float64 accuracy
    assert all(row.max_abs_err < 1e-8 for row in report)
    first, second, third = report[1].diagnoses[0].evidence["after_1_2_3"]
    assert second == pytest.approx(2 * first) and third == pytest.approx(3 * first)


def test_nondeterministic_backward_fails():
    with pytest.raises(GradientCheckError, match=r"NoisyBackward: input \(shape \(5, 4\)\) not-repeatable: backward "
                                                 r"gave different results on a second call") as info:
        run_check(NoisyBackward())
    assert [[d.kind for d in row.diagnoses] for row in info.value.report] == [["not-repeatable"], [], []]


@pytest.mark.parametrize(
    "deltas, match",
    [
        (lambda layer: [layer.parameters_deltas[0]], r"parameters_deltas has 1 entries but parameters has 2"),
        (lambda layer: [layer.parameters_deltas[0], np.zeros(4)], r"parameters_deltas\[1\] must have the shape of parameters\[1\], \(3,\), got shape \(4,\)"),
        (lambda layer: [layer.parameters_deltas[0], None], r"parameters_deltas\[1\] .* got None"),
        (lambda layer: None, r"parameters_deltas must be a list aligned with parameters, got NoneType"),
    ],
)
def test_misaligned_parameters_deltas_fail_clearly(deltas, match):
    class Misaligned(PlainLinear):
        def backward(self, delta):
            delta_x = super().backward(delta)
            self.parameters_deltas = deltas(self)
            return delta_x

    with pytest.raises(GradientCheckError, match="Misaligned: " + match):
        run_check(Misaligned())


def test_backward_returning_the_wrong_shape_fails():
    class WrongShape(Square):
        def backward(self, delta):
            return delta.ravel()

    with pytest.raises(GradientCheckError, match=r"WrongShape: backward must return .* \(5, 4\).*got shape \(20,\)"):
        run_check(WrongShape())


def test_not_a_layer_and_bad_options_are_type_and_value_errors():
    class NoBackward:
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match="NoBackward does not follow the layer protocol: it has no backward"):
        run_check(NoBackward())
    with pytest.raises(ValueError, match="max_coords must be a positive int or None, got 0"):
        run_check(Square(), max_coords=0)
    with pytest.raises(ValueError, match="max_coords must be a positive int or None, got 2.5"):
        run_check(Square(), max_coords=2.5)

    class MethodParameters(Square):
        def parameters(self):
            return []

    with pytest.raises(TypeError, match=r"MethodParameters.parameters must be a list of arrays, got method"):
        run_check(MethodParameters())

    class ListParameter(Square):
        parameters = [[1.0, 2.0]]
        parameters_deltas = [None]

    with pytest.raises(TypeError, match=r"ListParameter.parameters\[0\] must be a numpy array, got list"):
        run_check(ListParameter())
    with pytest.raises(TypeError, match="x must be a real numeric array"):
        sanity_check(Square(), np.array(["a"]))


def test_a_layer_that_keeps_its_own_dtype_gets_a_clear_error():
    with pytest.raises(TypeError, match=r"StoredDtype.forward returned float32 .* float64"):
        run_check(StoredDtype())


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(1, 4),
    n_in=st.integers(1, 5),
    n_out=st.integers(1, 4),
    factor=st.sampled_from([0.5, 0.9, 1.1, -1.0]),
)
def test_any_scaling_of_a_right_gradient_is_caught(n, n_in, n_out, factor):
    class Scaled(PlainLinear):
        def backward(self, delta):
            return factor * super().backward(delta)

    x = np.random.default_rng(n).standard_normal((n, n_in))
    assert sanity_check(PlainLinear(n_in, n_out), x).passed
    with pytest.raises(GradientCheckError, match="for input"):
        sanity_check(Scaled(n_in, n_out), x)


# -- the built-in layers, including a whole network with its loss -----------------------------
def test_builtin_network_with_its_loss_end_to_end():
    import nnscratch

    rng = np.random.default_rng(0)
    net = nnscratch.Sequential(
        nnscratch.Linear(6, 5, rng=1), nnscratch.Tanh(), nnscratch.Linear(5, 3, rng=2),
        nnscratch.SoftmaxCrossEntropy(), nnscratch.Mean(),
    )
    before = [(p, p.copy()) for p in net.parameters]
    report = sanity_check(net, rng.standard_normal((4, 6)), args=(np.array([0, 2, 1, 2]),))
    assert [row.tensor for row in report] == ["input"] + [f"parameter {i}" for i in range(4)]
    assert [row.shape for row in report] == [(4, 6), (6, 5), (5,), (5, 3), (3,)]
    for (p, value), now in zip(before, net.parameters):
        assert now is p and p.dtype == np.float32
        np.testing.assert_array_equal(p, value)


def test_builtin_layer_with_a_wrong_backward_is_caught():
    import nnscratch

    class HalfLinear(nnscratch.Linear):
        def backward(self, delta):
            return 0.5 * super().backward(delta)

    layer, wrong = nnscratch.Linear(4, 3, rng=0), HalfLinear(4, 3, rng=0)
    assert sanity_check(layer, np.random.default_rng(0).standard_normal((2, 4))).passed
    with pytest.raises(GradientCheckError, match=r"HalfLinear: gradient is wrong for input \(shape \(2, 4\)\)"):
        sanity_check(wrong, np.random.default_rng(0).standard_normal((2, 4)))
