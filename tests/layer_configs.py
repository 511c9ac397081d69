"""The layer configurations and memory layouts the tests of Conv2D and MaxPool2D share: the
reference layers are checked on them against the loop twins (test_reference.py), the fast layers
against the reference layers (test_conv.py, test_pool.py)."""

from __future__ import annotations

import numpy as np

# The configurations issue 2 names, each a test:
# (id, in_channels, out_channels, kernel, stride, padding, bias, input shape)
CONV_CONFIGS = [
    ("4x4 input * 3x3 kernel", 1, 1, 3, 1, 0, False, (1, 1, 4, 4)),
    ("padding 1", 1, 1, 3, 1, 1, False, (1, 1, 4, 4)),
    ("stride 2 on 7x7", 1, 1, 3, 2, 0, False, (1, 1, 7, 7)),
    ("padding 1 + stride 2 on 7x7", 1, 1, 3, 2, 1, False, (1, 1, 7, 7)),
    ("3 input channels", 3, 1, 3, 1, 0, False, (1, 3, 5, 5)),
    ("channels + bias", 3, 1, 3, 1, 0, True, (1, 3, 5, 5)),
    ("4 filters", 3, 4, 3, 1, 0, False, (1, 3, 5, 5)),
    ("4 filters + bias", 3, 4, 3, 1, 0, True, (1, 3, 5, 5)),
    ("mini-batch of 3", 3, 4, 3, 1, 0, True, (3, 3, 5, 5)),
    ("RGB 3x7x7 batch, 4 filters, stride 2, padding 1", 3, 4, 3, 2, 1, True, (3, 3, 7, 7)),
    ("rectangular kernel 3x2, stride (1, 2), padding (0, 1)", 2, 3, (3, 2), (1, 2), (0, 1), True, (2, 2, 6, 7)),
    ("rectangular kernel 2x3, stride (2, 1), padding (2, 0)", 2, 3, (2, 3), (2, 1), (2, 0), True, (2, 2, 5, 6)),
    ("rectangular input 5x9, kernel (1, 4), stride 3", 2, 2, (1, 4), 3, 0, True, (2, 2, 5, 9)),
    ("1x1 kernel", 3, 2, 1, 1, 0, True, (2, 3, 4, 5)),
    ("padding larger than the kernel reach", 1, 2, 2, 1, 3, True, (2, 1, 3, 3)),
]

# MaxPool2D: (id, kernel, stride, input shape)
MAXPOOL_CONFIGS = [
    ("2x2, default stride", 2, None, (2, 3, 4, 4)),
    ("2x2 stride 2 on odd 7x7: floor drops the last row and column", 2, 2, (2, 2, 7, 7)),
    ("3x3 default stride", 3, None, (1, 2, 9, 7)),
    ("overlapping: 2x2 stride 1", 2, 1, (2, 2, 5, 5)),
    ("overlapping: 3x3 stride 2", 3, 2, (2, 2, 7, 8)),
    ("gaps: 2x2 stride 3", 2, 3, (1, 2, 8, 8)),
    ("rectangular kernel (2, 3), stride (1, 2)", (2, 3), (1, 2), (2, 2, 5, 7)),
    ("rectangular kernel (3, 1), stride (3, 1)", (3, 1), (3, 1), (2, 1, 6, 4)),
    ("kernel the size of the input", (4, 5), None, (2, 2, 4, 5)),
    ("1x1 kernel stride 2", 1, 2, (1, 2, 5, 4)),
]

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
