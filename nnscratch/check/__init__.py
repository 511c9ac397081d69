"""Gradient checking: ``sanity_check`` compares any layer's backward with central differences.

- ``numerical.py``     the check: central differences, the tolerance rule, ``sanity_check``
- ``working_copy.py``  the float64 deep copy the check runs on, and the protocol checks of its calls
- ``report.py``        what it returns and raises: ``TensorCheck`` rows, ``GradientCheckReport``,
                       ``GradientCheckError`` and its message
"""

from .numerical import (
    DEFAULT_ATOL,
    DEFAULT_EPS,
    DEFAULT_MAX_COORDS,
    DEFAULT_RTOL,
    sample_coords,
    sanity_check,
)
from .report import GradientCheckError, GradientCheckReport, TensorCheck, layer_name

__all__ = [
    "sanity_check",
    "sample_coords",
    "GradientCheckError",
    "GradientCheckReport",
    "TensorCheck",
    "layer_name",
    "DEFAULT_EPS",
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "DEFAULT_MAX_COORDS",
]
