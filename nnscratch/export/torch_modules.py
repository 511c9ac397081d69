"""PyTorch itself, imported on demand (``import_torch``), and the small PyTorch modules for the
nnscratch layers PyTorch has no exact twin of (``torch_modules``), which ``to_torch`` builds and
``from_torch`` reads back.

PyTorch is imported only when one of these is called; nnscratch never depends on it.
"""

from __future__ import annotations

import functools
import types

from ..layers.positional import sinusoid_table


def import_torch():
    """The ``torch`` module, or an ``ImportError`` saying how to install it."""
    try:
        import torch
    except ImportError:
        raise ImportError(
            "to_torch and from_torch need PyTorch, which nnscratch does not install: "
            "pip install torch (or 'nnscratch[bench]' for the version the benchmark uses)"
        ) from None
    return torch


@functools.lru_cache(maxsize=None)
def torch_modules(torch):
    """The small PyTorch modules for nnscratch layers PyTorch has no exact twin of, made once.

    - ``GlobalAvgPool2D()``: x.mean over (H, W), (N, C, H, W) -> (N, C) (``nn.AdaptiveAvgPool2d(1)``
      keeps (N, C, 1, 1)).
    - ``Residual(*modules)``: y = x + block(x), ``block`` an ``nn.Sequential`` of the modules.
    - ``PositionalEmbedding(max_len, dim)``: x + weight[:T], ``weight`` a parameter (max_len, dim)
      (nanoGPT adds ``wpe(arange(T))``, the same sum).
    - ``SinusoidalPositionalEncoding(dim, max_len)``: x + P[:T], the table computed in float64 for
      each input (no buffer: nnscratch's layer holds none either), then cast to x's dtype.
    - ``Recurrent(module)``: ``module(x)[0]``, the output sequence of an ``nn.RNN``, ``nn.LSTM`` or
      ``nn.GRU`` without its final state, as nnscratch's recurrent layers give it.
    - ``MultiHeadAttention(embed_dim, num_heads, causal, dropout, bias)``: self-attention through an
      ``nn.MultiheadAttention(batch_first=True)`` held as ``attention``, its output alone.
    - ``TransformerBlock(dim, num_heads, hidden, dropout, causal)``: x = x + attn(ln_1(x)), then
      x = x + mlp(ln_2(x)), ``mlp`` = Linear, GELU (tanh), Linear, Dropout.
    """
    nn = torch.nn

    class Residual(nn.Module):
        """y = x + block(x): nnscratch's Residual, f as an nn.Sequential named ``block``."""

        def __init__(self, *modules):
            super().__init__()
            self.block = nn.Sequential(*modules)

        def forward(self, x):
            return x + self.block(x)

    class GlobalAvgPool2D(nn.Module):
        """y[n, c] = mean over (h, w) of x[n, c, h, w]: nnscratch's GlobalAvgPool2D."""

        def forward(self, x):
            return x.mean(dim=(2, 3))

    class PositionalEmbedding(nn.Module):
        """y[n, t] = x[n, t] + weight[t]: nnscratch's PositionalEmbedding, a learned row per position."""

        def __init__(self, max_len, dim, dtype=None):
            super().__init__()
            self.max_len, self.dim = max_len, dim
            self.weight = nn.Parameter(torch.zeros(max_len, dim, dtype=dtype))

        def forward(self, x):
            return x + self.weight[: x.shape[1]]

        def extra_repr(self):
            return f"max_len={self.max_len}, dim={self.dim}"

    class SinusoidalPositionalEncoding(nn.Module):
        """y[n, t] = x[n, t] + P[t], P the sines and cosines of nnscratch's SinusoidalPositionalEncoding."""

        def __init__(self, dim, max_len=5000):
            super().__init__()
            self.dim, self.max_len = dim, max_len

        def forward(self, x):
            return x + torch.from_numpy(sinusoid_table(x.shape[1], self.dim)).to(x.dtype)

        def extra_repr(self):
            return f"dim={self.dim}, max_len={self.max_len}"

    class Recurrent(nn.Module):
        """y = module(x)[0]: the output sequence (N, T, H) of a recurrent ``module`` (batch_first=True)."""

        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, x):
            return self.module(x)[0]


    class MultiHeadAttention(nn.Module):
        """nnscratch's MultiHeadAttention: y = attention(x, x, x), with the causal mask when ``causal``."""

        def __init__(self, embed_dim, num_heads, causal=False, dropout=0.0, bias=True, dtype=None):
            super().__init__()
            self.causal = bool(causal)
            self.attention = nn.MultiheadAttention(embed_dim, num_heads, dropout=dropout, bias=bias, batch_first=True,
                                                   dtype=dtype)

        def forward(self, x, key_padding_mask=None):
            t = x.shape[1]
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1) if self.causal else None
            return self.attention(x, x, x, key_padding_mask=key_padding_mask, attn_mask=mask, need_weights=False)[0]

    class TransformerBlock(nn.Module):
        """nnscratch's TransformerBlock (GPT-2's): x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x))."""

        def __init__(self, dim, num_heads, hidden, dropout=0.0, causal=True, dtype=None):
            super().__init__()
            self.ln_1 = nn.LayerNorm(dim, dtype=dtype)
            self.attn = MultiHeadAttention(dim, num_heads, causal, dropout, dtype=dtype)
            self.attn_dropout = nn.Dropout(dropout)
            self.ln_2 = nn.LayerNorm(dim, dtype=dtype)
            self.mlp = nn.Sequential(nn.Linear(dim, hidden, dtype=dtype), nn.GELU(approximate="tanh"),
                                     nn.Linear(hidden, dim, dtype=dtype), nn.Dropout(dropout))

        def forward(self, x):
            x = x + self.attn_dropout(self.attn(self.ln_1(x)))
            return x + self.mlp(self.ln_2(x))

    twins = (GlobalAvgPool2D, Residual, PositionalEmbedding, SinusoidalPositionalEncoding, Recurrent,
             MultiHeadAttention, TransformerBlock)
    for twin in twins:
        twin.__module__ = __name__
    return types.SimpleNamespace(**{twin.__name__: twin for twin in twins})
