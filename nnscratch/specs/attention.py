"""Multi-head self-attention: the hyperparameters, parameters, checks and shapes that the fast layer
(layers/attention.py) and its textbook twin (reference/attention.py) share."""

from __future__ import annotations

import math

import numpy as np

from .. import init
from ..kernels import aligned
from ..kernels.memory import KeepsMemory
from ..protocol import Layer
from ..seeding import get_rng
from ..validation import as_dtype, check_bool, check_int, check_number


class MultiHeadAttentionBase(KeepsMemory, Layer):
    """The hyperparameters and projections of multi-head self-attention (see ``MultiHeadAttention``
    for the formulas).

    The parameters are PyTorch's ``nn.MultiheadAttention`` ones, in its layout and order, so they copy
    across one to one: ``in_proj_weight`` (3E, E), the query, key and value projections stacked as
    PyTorch stacks them (y = x @ W^T, not nnscratch's x @ W), ``in_proj_bias`` (3E,),
    ``out_proj_weight`` (E, E) and ``out_proj_bias`` (E,). Initialised as PyTorch does: Glorot
    uniform for ``in_proj_weight``, U(-1/sqrt(E), 1/sqrt(E)) for ``out_proj_weight``, zero biases.

    ``rng`` (a Generator, an int seed or None) draws the initial weights, and then the dropout masks
    from ``self.rng``, which ``sanity_check`` rewinds before every forward.

    Shape:
        x: (N, T, embed_dim); y: (N, T, embed_dim); key_padding_mask: (N, T) bool
        in_proj_weight: (3 * embed_dim, embed_dim), in_proj_bias: (3 * embed_dim,)
        out_proj_weight: (embed_dim, embed_dim), out_proj_bias: (embed_dim,)
    """

    def __init__(self, embed_dim, num_heads, causal=False, dropout=0.0, bias=True, dtype=np.float32, rng=None):
        super().__init__()
        # parameter_specs checks every argument, and gives the parameters' shapes and dtype
        specs = self.parameter_specs(embed_dim, num_heads, causal, dropout, bias, dtype)
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.head_dim = self.embed_dim // self.num_heads
        self.causal, self.dropout = bool(causal), float(dropout)
        self.rng = get_rng(rng)
        dtype = specs[0][1]
        self.in_proj_weight = init.xavier_uniform_(aligned.empty(specs[0][0], dtype), rng=self.rng)
        self.out_proj_weight = aligned.empty((self.embed_dim, self.embed_dim), dtype)
        init.kaiming_uniform_(self.out_proj_weight, a=math.sqrt(5.0), rng=self.rng)  # PyTorch Linear's default
        if bias:
            self.in_proj_bias = aligned.zeros(3 * self.embed_dim, dtype)
            self.out_proj_bias = aligned.zeros(self.embed_dim, dtype)
            self.parameters = [self.in_proj_weight, self.in_proj_bias, self.out_proj_weight, self.out_proj_bias]
        else:
            self.in_proj_bias = self.out_proj_bias = None
            self.parameters = [self.in_proj_weight, self.out_proj_weight]
        self.parameters_deltas = [aligned.zeros_like(p) for p in self.parameters]

    @classmethod
    def parameter_specs(cls, embed_dim, num_heads, causal=False, dropout=0.0, bias=True, dtype=np.float32) -> list:
        """[(shape, dtype)] of the parameters of ``cls(...)``, without building it (for ``load``)."""
        name = cls.__name__
        embed_dim = check_int(name, "embed_dim", embed_dim, 1)
        num_heads = check_int(name, "num_heads", num_heads, 1)
        if embed_dim % num_heads:
            raise ValueError(
                f"{name}: embed_dim must be divisible by num_heads (each head gets embed_dim // num_heads "
                f"features), got embed_dim={embed_dim}, num_heads={num_heads}"
            )
        check_bool(name, "causal", causal)
        check_number(name, "dropout", dropout, 0.0, 1.0)
        dtype = as_dtype(name, dtype)
        e = embed_dim
        if check_bool(name, "bias", bias):
            return [((3 * e, e), dtype), ((3 * e,), dtype), ((e, e), dtype), ((e,), dtype)]
        return [((3 * e, e), dtype), ((e, e), dtype)]

    def config(self) -> dict:
        return {"embed_dim": self.embed_dim, "num_heads": self.num_heads, "causal": self.causal,
                "dropout": self.dropout, "bias": self.in_proj_bias is not None,
                "dtype": self.in_proj_weight.dtype.name}

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        self._check_ndim(shape, 3, "N, T, embed_dim")
        if shape[2] != self.embed_dim:
            raise ValueError(f"{self.name}: expected {self.embed_dim} features (x of shape (N, T, {self.embed_dim})), "
                             f"got x of shape {shape}")
        return shape

    @property
    def _names(self) -> tuple:
        """The attributes that must be ``parameters[0]``, ``[1]``, ... in that order."""
        if self.in_proj_bias is None:
            return ("in_proj_weight", "out_proj_weight")
        return ("in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias")

    def _checked(self, x, key_padding_mask) -> tuple[np.ndarray, np.ndarray | None]:
        """x checked against the layer (and the parameters still in place), in their dtype; the mask
        checked against x, or None."""
        self._check_parameters_in_place(*self._names)
        self._check_input(x, 3, "N, T, embed_dim")
        self.output_shape(x.shape)
        if key_padding_mask is not None:
            mask = key_padding_mask
            if not isinstance(mask, np.ndarray):
                raise TypeError(f"{self.name}: key_padding_mask must be a numpy bool array of shape (N, T), "
                                f"got {type(mask).__name__}")
            if mask.dtype != np.bool_:
                raise TypeError(f"{self.name}: key_padding_mask must be a bool array (True: that key is padding), "
                                f"got dtype {mask.dtype}; use mask.astype(bool) for 0/1 values")
            if mask.shape != x.shape[:2]:
                raise ValueError(f"{self.name}: key_padding_mask must have shape (N, T) = {x.shape[:2]} (one flag "
                                 f"per key of each sequence), got shape {mask.shape}")
        return x.astype(self.in_proj_weight.dtype, copy=False), key_padding_mask
