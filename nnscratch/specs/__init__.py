"""What a fast layer and its textbook twin share: the hyperparameters checked, the parameters and
buffers made, ``config``, the shapes for the bounded loader and ``output_shape``.

``nnscratch.Conv2D`` (layers/conv.py) and ``nnscratch.reference.Conv2D`` (reference/conv.py) are
siblings: both derive from ``Conv2DBase`` here and differ only in how they compute forward and
backward. Neither is the other's base class, so a checkpoint, a converter or ``isinstance`` always
tells them apart; the same holds for MaxPool2D and the batch norms. Each base keeps memory as
``kernels/memory.py`` says: a layer names what forward keeps for backward in ``_caches``, and
``release_memory()`` drops it.
"""

from .normalization import BATCHNORM1D, BATCHNORM2D, BatchNormBase
from .windows import Conv2DBase, MaxPool2DBase, check_window_fits, window_output_size

__all__ = ["BATCHNORM1D", "BATCHNORM2D", "BatchNormBase", "Conv2DBase", "MaxPool2DBase", "check_window_fits",
           "window_output_size"]
