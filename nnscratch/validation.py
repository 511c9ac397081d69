"""The checks of what a user hands nnscratch: numbers, ints, bools, dtypes and input arrays.

One copy of each, used by the layers, optimizers, schedules, initialisers and training loops. Each
returns the value in the form the caller keeps (an int, a float, a bool, a numpy dtype) or raises a
``TypeError`` (wrong kind) or ``ValueError`` (right kind, wrong value) whose message starts with the
owner (a layer's or function's name), then names the argument, what was expected and what was given.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

# The parameter dtypes nnscratch computes in. float16 is refused: its 10-bit mantissa and 6e-5
# smallest normal number lose the small gradients and updates training is made of (Adam's eps rounds
# to 0), so a float16 model would train wrong silently; wider floats (longdouble) are not portable.
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# The dtype kinds a layer computes with: bool, signed and unsigned ints, floats. Anything else would
# be cast silently or fail deep inside NumPy: complex loses its imaginary part with only a warning,
# strings are parsed as numbers, datetimes become counts of days, objects could be anything.
REAL_KINDS = "biuf"


# -- scalars -------------------------------------------------------------------------------------
def is_int(value) -> bool:
    """A Python or NumPy integer, and not a bool (True is an int to Python, never a size to us)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(owner: str, name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """An int within [minimum, maximum] (either bound optional), returned as a Python int.

    The message says "a positive int" for minimum 1 and "a non-negative int" for minimum 0."""
    if not is_int(value):
        raise TypeError(f"{owner}: {name} must be an int, got {type(value).__name__} {value!r:.100}")
    too_low = minimum is not None and value < minimum
    if too_low or (maximum is not None and value > maximum):
        if maximum is not None:
            expected = f"an int in [{minimum}, {maximum}]" if minimum is not None else f"an int <= {maximum}"
        else:
            expected = {1: "a positive int", 0: "a non-negative int"}.get(minimum, f"an int >= {minimum}")
        raise ValueError(f"{owner}: {name} must be {expected}, got {value}")
    return int(value)


def check_number(owner: str, name: str, value, low: float | None = None, high: float | None = None,
                 low_inclusive: bool = True, high_inclusive: bool = False, allow_infinite: bool = False) -> float:
    """A finite real number within the bounds (each optional), returned as a Python float; with
    ``allow_infinite``, +-inf too where the bounds admit it (a time limit that never comes), never NaN.

    A Python float keeps a float32 layer in float32 where a NumPy float64 scalar would not."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {type(value).__name__} {value!r:.100}")
    given, value = value, float(value)
    above = low is None or (value >= low if low_inclusive else value > low)
    below = high is None or (value <= high if high_inclusive else value < high)
    allowed = math.isfinite(value) or (allow_infinite and not math.isnan(value))
    if not (allowed and above and below):
        bounds = []
        if low is not None:
            bounds.append(f"{'>=' if low_inclusive else '>'} {low:g}")
        if high is not None:
            bounds.append(f"{'<=' if high_inclusive else '<'} {high:g}")
        if not (allowed or allow_infinite):
            bounds.insert(0, "finite")
        expected = " and ".join(bounds) + (" (inf allowed, not NaN)" if allow_infinite else "")
        raise ValueError(f"{owner}: {name} must be {expected}, got {given!r}")
    return value


def check_bool(owner: str, name: str, value) -> bool:
    """True or False only (the string "no" is truthy, 0 and 1 are ints)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be True or False, got {type(value).__name__} {value!r:.100}")
    return bool(value)


def check_mode(owner: str, mode) -> bool:
    """``train(mode)``'s argument: a real bool (a string "False" would be truthy)."""
    if not isinstance(mode, (bool, np.bool_)):
        raise TypeError(f"{owner}.train: mode must be True or False, got {type(mode).__name__} {mode!r}")
    return bool(mode)


def pair(owner: str, name: str, value, allow_zero: bool = False) -> tuple[int, int]:
    """``3 -> (3, 3)``, ``(3, 2) -> (3, 2)``, each entry validated (kernel sizes, strides, padding)."""
    minimum = 0 if allow_zero else 1
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{owner}: {name} must be an int or an (h, w) pair, got {value!r}")
        return check_int(owner, name, value[0], minimum), check_int(owner, name, value[1], minimum)
    size = check_int(owner, name, value, minimum)
    return size, size


def compact(value: tuple):
    """The inverse of ``pair`` for ``config()``: ``(3, 3) -> 3``, ``(3, 2) -> [3, 2]`` (JSON has no tuples)."""
    return value[0] if value[0] == value[1] else list(value)


# -- dtypes and arrays ---------------------------------------------------------------------------
def as_dtype(owner: str, dtype) -> np.dtype:
    """float32 or float64 (as a dtype, a type or a name); anything else is a clear TypeError."""
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: dtype must be float32 or float64, got {dtype!r:.100}") from None
    if dt == np.float16:
        raise TypeError(
            f"{owner}: dtype float16 is not supported (too few bits for gradients and optimizer "
            "updates: training would go wrong silently); use float32"
        )
    if dt not in DTYPES:
        raise TypeError(f"{owner}: dtype must be float32 or float64, got {dt}")
    return dt


def check_real_array(owner: str, what: str, array: np.ndarray) -> None:
    """An input or targets array must hold real numbers: a clear TypeError otherwise."""
    if array.dtype.kind not in REAL_KINDS:
        raise TypeError(f"{owner}: {what} must be real numbers (bool, int or float), got an array of {array.dtype}")


def check_input_array(owner: str, x, of: str = "", masked_ok: bool = False) -> None:
    """What a layer is given must be a numpy array of real numbers (``of``: what it holds, when the
    layer takes more than one kind, such as a loss's predictions), not a masked array unless
    ``masked_ok`` (``Mean``, which averages without the masked values)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{owner}: expected a numpy array{f' of {of}' if of else ''} as input, got {type(x).__name__}")
    if not (masked_ok and isinstance(x, np.ma.MaskedArray)):
        check_plain_array(owner, f"the {of or 'input'}", x)
    check_real_array(owner, f"the {of or 'input'}", x)


def check_plain_array(owner: str, what: str, array) -> None:
    """Refuse the numpy subclasses whose arithmetic is not plain element-wise numpy: a masked array
    (the products would use its masked values, some ufuncs would keep its mask: never what was
    meant) and a matrix (its ``*`` is a matrix product). Other subclasses (a memmap) pass."""
    if type(array) is np.ndarray or not isinstance(array, np.ndarray):
        return
    if isinstance(array, np.ma.MaskedArray):
        raise TypeError(f"{owner}: {what} must be a plain numpy array, got a masked array (its mask would be "
                        "ignored); fill the masked values first: array.filled(value)")
    if isinstance(array, np.matrix):
        raise TypeError(f"{owner}: {what} must be a plain numpy array, got a numpy matrix (its * is a matrix "
                        "product); pass np.asarray(x)")


def check_parameter_dtype(owner: str, index: int, p) -> None:
    """A parameter an optimizer updates: a float32 or float64 numpy array."""
    if not isinstance(p, np.ndarray):
        raise TypeError(f"{owner}: parameter {index} must be a numpy array, got {type(p).__name__}")
    if p.dtype not in DTYPES:
        raise TypeError(
            f"{owner}: parameter {index} is {p.dtype}, expected float32 or float64 (in float16 eps "
            "rounds to zero and updates overflow or turn NaN; convert the parameters first)"
        )
