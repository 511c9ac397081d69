"""The Transformer block of GPT-2 and nanoGPT, built from the layers every other network uses."""

from __future__ import annotations

import numpy as np

from ..containers import Residual, Sequential
from ..seeding import get_rng
from ..validation import as_dtype, check_bool, check_int, check_number, is_int
from .activations import GELU
from .attention import MultiHeadAttention
from .dropout import Dropout
from .linear import Linear
from .normalization import LayerNorm

# GPT-2's initialisation: every weight N(0, 0.02^2), every bias 0 (LayerNorm: 1 and 0)
INIT_STD = 0.02


class TransformerBlock(Sequential):
    """Pre-LayerNorm Transformer block (GPT-2, nanoGPT): attention, then an MLP, each in a residual branch.

        x = x + attn(ln_1(x))
        x = x + mlp(ln_2(x)),   mlp = Linear(dim, hidden) -> GELU -> Linear(hidden, dim)

    with ``attn`` a ``MultiHeadAttention(dim, num_heads, causal=causal)`` (a language model's mask by
    default: token i attends to tokens 0..i), hidden = int(dim * mlp_ratio) and GELU in its tanh form
    (GPT-2's). With ``dropout`` > 0, as nanoGPT: dropout on the attention weights, and a ``Dropout``
    at the end of each branch.

    It is exactly that: a ``Sequential`` of two ``Residual`` branches of the existing layers,

        Sequential(Residual(LayerNorm, MultiHeadAttention[, Dropout]),
                   Residual(LayerNorm, Linear, GELU, Linear[, Dropout]))

    so ``block[0][1]`` is its attention and ``block[1][1]`` its first MLP layer, and forward and
    backward are the containers' own. Its ``config()`` and ``parameter_specs`` let ``save``/``load``
    record it by name and hyperparameters like any layer. Initialised as GPT-2: every weight
    N(0, 0.02^2) (the attention's projections too), biases 0, LayerNorm's weight 1; ``rng`` (a
    Generator, an int seed or None) draws them, then the dropout masks.

    Shape:
        x: (N, T, dim); y: (N, T, dim)
    """

    def __init__(self, dim, num_heads, mlp_ratio=4, dropout=0.0, causal=True, dtype=np.float32, rng=None):
        self.parameter_specs(dim, num_heads, mlp_ratio, dropout, causal, dtype)  # checks every argument
        self.dim, self.num_heads = int(dim), int(num_heads)
        self.mlp_ratio = int(mlp_ratio) if is_int(mlp_ratio) else float(mlp_ratio)  # as JSON keeps it
        self.dropout, self.causal, dtype = float(dropout), bool(causal), as_dtype(self.name, dtype)
        hidden, rng = _hidden(self.name, dim, mlp_ratio), get_rng(rng)
        attention = [LayerNorm(dim, dtype=dtype),
                     MultiHeadAttention(dim, num_heads, causal=causal, dropout=dropout, dtype=dtype, rng=rng)]
        mlp = [LayerNorm(dim, dtype=dtype), Linear(dim, hidden, dtype=dtype, rng=rng), GELU(),
               Linear(hidden, dim, dtype=dtype, rng=rng)]
        if self.dropout > 0:
            attention.append(Dropout(dropout, rng=rng))
            mlp.append(Dropout(dropout, rng=rng))
        super().__init__(Residual(*attention), Residual(*mlp))
        for layer in (attention[1], mlp[1], mlp[3]):
            for p in layer.parameters:
                p[...] = rng.normal(0.0, INIT_STD, p.shape) if p.ndim == 2 else 0.0

    @classmethod
    def parameter_specs(cls, dim, num_heads, mlp_ratio=4, dropout=0.0, causal=True, dtype=np.float32) -> list:
        """[(shape, dtype)] of the parameters, in order, without building the block (for ``load``)."""
        name = cls.__name__
        dim = check_int(name, "dim", dim, 1)
        hidden = _hidden(name, dim, mlp_ratio)
        check_bool(name, "causal", causal)
        check_number(name, "dropout", dropout, 0.0, 1.0)
        dtype = as_dtype(name, dtype)
        norm = LayerNorm.parameter_specs(dim, dtype=dtype)
        attention = MultiHeadAttention.parameter_specs(dim, num_heads, causal, dropout, True, dtype)
        return [*norm, *attention, *norm, *Linear.parameter_specs(dim, hidden, dtype=dtype),
                *Linear.parameter_specs(hidden, dim, dtype=dtype)]

    def config(self) -> dict:
        return {"dim": self.dim, "num_heads": self.num_heads, "mlp_ratio": self.mlp_ratio, "dropout": self.dropout,
                "causal": self.causal, "dtype": self.layers[0][0].weight.dtype.name}

    @property
    def name(self) -> str:
        return "TransformerBlock"


def _hidden(owner: str, dim, mlp_ratio) -> int:
    """The MLP's width, int(dim * mlp_ratio), which must be at least 1."""
    check_number(owner, "mlp_ratio", mlp_ratio, 0.0, low_inclusive=False)
    hidden = int(dim * mlp_ratio)
    if hidden < 1:
        raise ValueError(f"{owner}: mlp_ratio={mlp_ratio!r} gives an MLP of int({dim} * {mlp_ratio!r}) = {hidden} "
                         "features; expected at least 1")
    return hidden
