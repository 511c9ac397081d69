"""The two dtypes a PyTorch parity test runs in, each with the tolerance its rounding allows.

    @each_dtype(float64=1e-12, float32=1e-6)
    def test_matches_pytorch(dtype, tolerance): ...
"""

from __future__ import annotations

import numpy as np
import pytest


def each_dtype(float64: float, float32: float):
    """Parametrize a test over (dtype, tolerance): float64 with ``float64``, float32 with ``float32``."""
    return pytest.mark.parametrize("dtype, tolerance", [(np.float64, float64), (np.float32, float32)],
                                   ids=["float64", "float32"])
