"""Checkpoints: ``save`` a model (and optionally its optimizer) to one ``.npz``, ``load`` it back.

The file is a plain, uncompressed NumPy ``.npz`` archive (a zip of ``.npy`` members) that never
needs pickle:

- ``header``: a JSON string: format name and version, the architecture (layer class names, with
  ``reference.<name>`` for the textbook twins in ``nnscratch.reference``, and constructor arguments;
  containers such as ``Sequential`` as ``{"class", "layers": [...]}``), the shape and dtype of every
  parameter, the optimizer's class, hyperparameters and step count, the epoch, and free-form metadata
  (standard JSON only: no NaN or infinity).
- ``param.<i>``: the model's parameters, in the order of ``model.parameters``.
- ``buffer.<i>``: the model's buffers (state saved but not trained, such as BatchNorm's running
  statistics), in the order of ``model.buffers``; the header lists their shapes and dtypes too.
- ``optimizer.<key>``: the optimizer's state arrays (``velocity.<i>`` for SGD, ``m.<i>``/``v.<i>``
  for Adam and AdamW, ``square_avg.<i>`` etc. for RMSprop, ``sum_squares.<i>`` for Adagrad), as
  given by ``optimizer.state_dict()``.

Loading trusts nothing in the file, and costs at most a small multiple of the file's size (the
arrays are read once, into the layers; the header's JSON, parsed, takes at most about 10 times its
size in the file, and about half of it for a training history):

1. Only a regular file is opened (a FIFO would block); the zip directory is read, and every member
   must be stored uncompressed (as ``save`` writes them), so no member holds more bytes than it
   takes on disk (``nnscratch.io.archive``).
2. The header is size-bounded before it is read (``nnscratch.io.format.MAX_HEADER_CHARS``, 4 Mi
   characters: room for train-mnist's longest run, a 10,000-epoch history, with 1.7 times to spare;
   parsing one at the bound costs at most about 150 MB), then bounded in nesting and number of
   layers. ``save`` refuses a header over the bound, so every file it writes loads.
3. The parameter and buffer shapes are computed from the architecture by arithmetic
   (``parameter_specs``/``buffer_specs`` of each layer class, no layer built yet) and checked
   against the header, the member names and each member's ``.npy`` header and size. Only then are
   the layers built and the members the header names read into them, in bounded chunks.

Only built-in nnscratch layers and optimizers are ever instantiated, looked up by name in fixed
tables (``nnscratch.io.registry``). Anything else - junk, a truncated file, an unknown layer, a
mismatched shape - is a ``ValueError`` naming the file. ``save`` checks what it is about to write
with the same rules (``nnscratch.io.format``), writes a temporary file, loads that back, and only
then moves it over the target.
"""

from .checkpoint import Checkpoint, load, load_checkpoint, save

__all__ = ["save", "load", "load_checkpoint", "Checkpoint"]
