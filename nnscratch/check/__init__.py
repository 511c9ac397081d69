"""Gradient checking: ``sanity_check`` compares any layer's backward with central differences, and
says what is wrong when they differ.

- ``sanity.py``        ``sanity_check``: the order of the calls, one row per tensor
- ``numerical.py``     central differences, one-sided slopes, the tolerance rule (``Comparison``)
- ``working_copy.py``  the float64 deep copy the check runs on, and the protocol checks of its calls
- ``traits.py``        what the check reads from a layer besides the protocol (``integer_input``,
                       ``independent_samples``)
- ``diagnose.py``      why a tensor fails, tried in order: ``context.py`` (what the probes share),
                       ``kinks.py``, ``precision.py``, ``axes.py`` (transposed), ``samples.py`` (the
                       batch axis)
- ``report.py``        what it returns and raises: ``TensorCheck`` rows and their ``Diagnosis``
                       lines, ``GradientCheckReport``, ``GradientCheckError`` and its message
"""

from .numerical import (
    DEFAULT_ATOL,
    DEFAULT_EPS,
    DEFAULT_MAX_COORDS,
    DEFAULT_RTOL,
    sample_coords,
)
from .report import KINDS, Diagnosis, GradientCheckError, GradientCheckReport, TensorCheck, layer_name
from .sanity import DIAGNOSE, sanity_check

__all__ = [
    "sanity_check",
    "sample_coords",
    "GradientCheckError",
    "GradientCheckReport",
    "TensorCheck",
    "Diagnosis",
    "KINDS",
    "DIAGNOSE",
    "layer_name",
    "DEFAULT_EPS",
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "DEFAULT_MAX_COORDS",
]
