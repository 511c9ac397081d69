"""The layer configurations and memory layouts the tests of Conv2D and MaxPool2D share: the
reference layers are checked on them against the loop twins (tests/reference/test_conv.py and
test_pool.py), the fast layers against the reference layers (tests/layers/test_conv.py and
test_pool.py). The configurations are the package's (nnscratch/commands/sanity_check_cases.py),
which nnscratch sanity-check checks too."""

from __future__ import annotations

import numpy as np

from nnscratch.commands import sanity_check_cases

# One table, in the package, which nnscratch sanity-check's cases read too:
# ConvConfig(id, in_channels, out_channels, kernel, stride, padding, bias, input shape) and
# PoolConfig(id, kernel, stride, input shape), each unpacking as that tuple.
CONV_CONFIGS, MAXPOOL_CONFIGS = sanity_check_cases.CONV_CONFIGS, sanity_check_cases.MAXPOOL_CONFIGS

LAYOUTS = ("C", "channel-major", "strided")


def with_layout(x: np.ndarray, layout: str) -> np.ndarray:
    """The same values in another memory layout: what layers hand each other in a network."""
    if layout == "channel-major":
        return np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    if layout == "strided":
        bigger = np.zeros((x.shape[0], x.shape[1], x.shape[2], 2 * x.shape[3]), x.dtype)
        bigger[..., ::2] = x
        return bigger[..., ::2]
    return x
