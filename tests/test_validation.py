"""The checks of what a user hands nnscratch (nnscratch/validation.py), called directly: what each
returns, and each error's type and whole message (owner, argument, what was expected, what was given)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from nnscratch.validation import (DTYPES, as_dtype, check_bool, check_input_array, check_int, check_mode,
                                  check_number, check_parameter_dtype, check_real_array, compact, is_int, pair)


def raises(error, message):
    """pytest.raises matching the whole message, taken literally."""
    return pytest.raises(error, match=f"^{re.escape(message)}$")


# -- ints ----------------------------------------------------------------------------------------
def test_is_int_takes_python_and_numpy_ints_and_no_bools():
    assert is_int(3) and is_int(np.int64(3)) and is_int(np.uint8(0))
    assert not any(is_int(v) for v in (True, np.bool_(False), 3.0, "3", None))


def test_check_int_returns_a_python_int():
    value = check_int("Linear", "in_features", np.int32(7), 1)
    assert value == 7 and type(value) is int


@pytest.mark.parametrize("value, minimum, maximum, error, message", [
    (2.0, 1, None, TypeError, "Linear: in_features must be an int, got float 2.0"),
    (True, 1, None, TypeError, "Linear: in_features must be an int, got bool True"),
    ("8", 1, None, TypeError, "Linear: in_features must be an int, got str '8'"),
    (0, 1, None, ValueError, "Linear: in_features must be a positive int, got 0"),
    (-1, 0, None, ValueError, "Linear: in_features must be a non-negative int, got -1"),
    (2, 3, None, ValueError, "Linear: in_features must be an int >= 3, got 2"),
    (9, 1, 8, ValueError, "Linear: in_features must be an int in [1, 8], got 9"),
    (9, None, 8, ValueError, "Linear: in_features must be an int <= 8, got 9"),
])
def test_check_int_messages(value, minimum, maximum, error, message):
    with raises(error, message):
        check_int("Linear", "in_features", value, minimum, maximum)


def test_check_int_accepts_the_bounds_themselves():
    assert check_int("f", "n", 1, 1, 8) == 1 and check_int("f", "n", 8, 1, 8) == 8


def test_a_long_value_is_cut_in_the_message():
    with pytest.raises(TypeError) as info:
        check_int("f", "n", "x" * 1000)
    assert len(str(info.value)) < 150


# -- numbers -------------------------------------------------------------------------------------
def test_check_number_returns_a_python_float():
    value = check_number("SGD", "lr", np.float32(0.5), low=0)
    assert value == 0.5 and type(value) is float
    assert check_number("SGD", "lr", 3) == 3.0


@pytest.mark.parametrize("value, bounds, error, message", [
    ("0.1", {}, TypeError, "SGD: lr must be a real number, got str '0.1'"),
    (True, {}, TypeError, "SGD: lr must be a real number, got bool True"),
    (1j, {}, TypeError, "SGD: lr must be a real number, got complex 1j"),
    (float("nan"), {}, ValueError, "SGD: lr must be finite, got nan"),
    (float("inf"), {"low": 0}, ValueError, "SGD: lr must be finite and >= 0, got inf"),
    (-0.5, {"low": 0}, ValueError, "SGD: lr must be >= 0, got -0.5"),
    (0.0, {"low": 0, "low_inclusive": False}, ValueError, "SGD: lr must be > 0, got 0.0"),
    (1.0, {"low": 0, "high": 1}, ValueError, "SGD: lr must be >= 0 and < 1, got 1.0"),
    (1.5, {"high": 1, "high_inclusive": True}, ValueError, "SGD: lr must be <= 1, got 1.5"),
    (float("nan"), {"low": 0, "allow_infinite": True}, ValueError,
     "SGD: lr must be >= 0 (inf allowed, not NaN), got nan"),
    (float("-inf"), {"low": 0, "allow_infinite": True}, ValueError,
     "SGD: lr must be >= 0 (inf allowed, not NaN), got -inf"),
])
def test_check_number_messages(value, bounds, error, message):
    with raises(error, message):
        check_number("SGD", "lr", value, **bounds)


def test_check_number_takes_infinity_only_when_allowed():
    assert check_number("ThreadChooser", "max_seconds", float("inf"), low=0, allow_infinite=True) == float("inf")
    assert check_number("ThreadChooser", "max_seconds", 2, low=0, allow_infinite=True) == 2.0
    with raises(ValueError, "ThreadChooser: max_seconds must be finite and >= 0, got inf"):
        check_number("ThreadChooser", "max_seconds", float("inf"), low=0)


def test_check_number_bounds_inclusive_or_not():
    assert check_number("f", "p", 0.0, low=0) == 0.0  # low inclusive by default
    assert check_number("f", "p", 1.0, high=1, high_inclusive=True) == 1.0
    assert check_number("f", "p", 0.999, low=0, high=1) == 0.999


# -- bools and modes -----------------------------------------------------------------------------
def test_check_bool_takes_python_and_numpy_bools_only():
    assert check_bool("SGD", "nesterov", np.bool_(True)) is True
    assert check_bool("SGD", "nesterov", False) is False
    with raises(TypeError, "SGD: nesterov must be True or False, got int 1"):
        check_bool("SGD", "nesterov", 1)
    with raises(TypeError, "SGD: nesterov must be True or False, got str 'no'"):
        check_bool("SGD", "nesterov", "no")


def test_check_mode_names_train():
    assert check_mode("Dropout", np.bool_(False)) is False
    with raises(TypeError, "Dropout.train: mode must be True or False, got str 'False'"):
        check_mode("Dropout", "False")


# -- pairs ---------------------------------------------------------------------------------------
def test_pair_and_compact_are_inverse():
    assert pair("Conv2D", "kernel_size", 3) == (3, 3)
    assert pair("Conv2D", "kernel_size", [3, 2]) == (3, 2)
    assert pair("Conv2D", "padding", 0, allow_zero=True) == (0, 0)
    assert compact((3, 3)) == 3 and compact((3, 2)) == [3, 2]
    for value in (1, 4, (2, 5)):
        assert pair("Conv2D", "stride", compact(pair("Conv2D", "stride", value))) == pair("Conv2D", "stride", value)


@pytest.mark.parametrize("value, allow_zero, error, message", [
    ((3, 2, 1), False, ValueError, "Conv2D: stride must be an int or an (h, w) pair, got (3, 2, 1)"),
    (0, False, ValueError, "Conv2D: stride must be a positive int, got 0"),
    ((1, 0), False, ValueError, "Conv2D: stride must be a positive int, got 0"),
    ((1, -1), True, ValueError, "Conv2D: stride must be a non-negative int, got -1"),
    ((1, 1.5), False, TypeError, "Conv2D: stride must be an int, got float 1.5"),
])
def test_pair_messages(value, allow_zero, error, message):
    with raises(error, message):
        pair("Conv2D", "stride", value, allow_zero)


# -- dtypes and arrays ---------------------------------------------------------------------------
@pytest.mark.parametrize("given", [np.float32, "float32", np.dtype("float32"), "f4"])
def test_as_dtype_takes_a_dtype_a_type_or_a_name(given):
    assert as_dtype("Linear", given) == np.float32 and isinstance(as_dtype("Linear", given), np.dtype)


def test_dtypes_are_float32_and_float64_only():
    assert DTYPES == (np.dtype(np.float32), np.dtype(np.float64))
    assert as_dtype("Linear", float) == np.float64


@pytest.mark.parametrize("given, message", [
    ("float", None),  # numpy reads "float" as float64: accepted
    ("nonsense", "Linear: dtype must be float32 or float64, got 'nonsense'"),
    (np.int64, "Linear: dtype must be float32 or float64, got int64"),
    (np.longdouble, f"Linear: dtype must be float32 or float64, got {np.dtype(np.longdouble)}"),
    (np.float16, "Linear: dtype float16 is not supported (too few bits for gradients and optimizer updates: "
                 "training would go wrong silently); use float32"),
])
def test_as_dtype_messages(given, message):
    if message is None:
        assert as_dtype("Linear", given) == np.float64
        return
    with raises(TypeError, message):
        as_dtype("Linear", given)


@pytest.mark.parametrize("dtype", [bool, np.int8, np.uint16, np.float32])
def test_real_arrays_pass(dtype):
    check_real_array("ReLU", "the input", np.zeros(2, dtype))
    check_input_array("ReLU", np.zeros(2, dtype))


@pytest.mark.parametrize("dtype", [np.complex64, "U3", object, "datetime64[D]"])
def test_arrays_of_other_kinds_are_refused(dtype):
    array = np.zeros(2, dtype)
    message = f"ReLU: the input must be real numbers (bool, int or float), got an array of {array.dtype}"
    with raises(TypeError, message):
        check_input_array("ReLU", array)


def test_check_input_array_says_what_it_wanted():
    with raises(TypeError, "ReLU: expected a numpy array as input, got list"):
        check_input_array("ReLU", [1.0])
    with raises(TypeError, "MeanSquaredError: expected a numpy array of predictions as input, got float"):
        check_input_array("MeanSquaredError", 1.0, of="predictions")
    with raises(TypeError, "MeanSquaredError: the predictions must be real numbers (bool, int or float), "
                           "got an array of complex128"):
        check_input_array("MeanSquaredError", np.zeros(2, complex), of="predictions")


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix's own, on making one
def test_masked_arrays_and_matrices_are_refused_by_name_and_other_subclasses_pass(tmp_path):
    masked = np.ma.masked_array([1.0, 2.0], mask=[False, True])
    with raises(TypeError, "ReLU: the input must be a plain numpy array, got a masked array (its mask would be "
                           "ignored); fill the masked values first: array.filled(value)"):
        check_input_array("ReLU", masked)
    with raises(TypeError, "Linear: the input must be a plain numpy array, got a numpy matrix (its * is a "
                           "matrix product); pass np.asarray(x)"):
        check_input_array("Linear", np.matrix([[1.0, 2.0]]))
    memmap = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(2, 3))
    check_input_array("ReLU", memmap)  # a memmap computes as a plain array: no error


def test_check_parameter_dtype():
    check_parameter_dtype("Adam", 0, np.zeros(2, np.float32))
    with raises(TypeError, "Adam: parameter 3 must be a numpy array, got list"):
        check_parameter_dtype("Adam", 3, [0.0])
    with raises(TypeError, "Adam: parameter 1 is float16, expected float32 or float64 (in float16 eps rounds to "
                           "zero and updates overflow or turn NaN; convert the parameters first)"):
        check_parameter_dtype("Adam", 1, np.zeros(2, np.float16))
