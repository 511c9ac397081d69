"""Textbook twins of the layers whose fast form needs machinery (``nnscratch/kernels/``).

Each is the layer as a textbook writes it: the formula in the docstring, forward and backward in a
few lines of vectorised NumPy (sliding windows, tensor contractions, means over the batch axes), no
buffer reuse and no memory-order tricks. Same constructor, ``parameters`` (and ``buffers``) and
numbers as the fast layer of the same name, so
``nnscratch.reference.Conv2D`` can stand in for ``nnscratch.Conv2D`` anywhere (``Sequential``,
``fit``, ``sanity_check``, ``save``/``load``); the fast layers are built on them and only compute
forward and backward another way. Read these first.
"""

from .conv import Conv2D
from .normalization import BatchNorm1D, BatchNorm2D
from .pool import MaxPool2D

__all__ = ["BatchNorm1D", "BatchNorm2D", "Conv2D", "MaxPool2D"]
