"""Textbook twins of the layers whose fast form needs machinery (``nnscratch/kernels/``).

Each is the layer as a textbook writes it: the formula in the docstring, a constructor, forward and
backward in a few lines of vectorised NumPy (sliding windows, tensor contractions, means over the
batch axes), and nothing from ``kernels/``. A twin and its fast layer are siblings: both derive from
the same base in ``nnscratch/specs/`` (constructor checks, parameters, ``config``, shapes), so
``nnscratch.reference.Conv2D`` can stand in for ``nnscratch.Conv2D`` anywhere (``Sequential``, ``fit``,
``sanity_check``, ``save``/``load``) and computes the same numbers. Read these first.
"""

from .attention import MultiHeadAttention
from .conv import Conv2D
from .normalization import BatchNorm1D, BatchNorm2D
from .pool import MaxPool2D
from .recurrent import GRU, LSTM, RNN

__all__ = ["BatchNorm1D", "BatchNorm2D", "Conv2D", "GRU", "LSTM", "MaxPool2D", "MultiHeadAttention", "RNN"]
