"""Multi-head self-attention over (N, T, E) sequences, every head at once in batched matrix products."""

from __future__ import annotations

import math

import numpy as np

from ..kernels.attention import additive_mask, heads, softmax_keys_, softmax_keys_backward_, split_heads
from ..kernels.memory import writable_deltas
from ..kernels.recycle import recycled_empty
from ..specs.attention import MultiHeadAttentionBase


class MultiHeadAttention(MultiHeadAttentionBase):
    """Multi-head self-attention (PyTorch's ``nn.MultiheadAttention(batch_first=True)``, self-attention).

        [Q K V] = x W_in^T + b_in;  per head h:  O_h = softmax(Q_h K_h^T / sqrt(d) + masks) V_h;
        y = [O_1 ... O_H] W_out^T + b_out,  d = embed_dim / num_heads

    ``forward(x, *args, key_padding_mask=None)``: ``key_padding_mask`` (N, T) bool, True where a key is
    padding (PyTorch's convention), keyword-only (``Sequential`` passes loss targets positionally to
    every layer). With ``causal=True`` query i sees keys j <= i only (a language model's mask).

    A query that sees no key at all (every key padding, or padding and causality together) gets
    all-zero attention weights, so its output is ``out_proj_bias`` and no gradient flows through it:
    defined, never NaN, in forward and backward (as PyTorch 2.13 does; older versions gave NaN). The
    softmax subtracts each row's maximum. In training mode,
    ``dropout`` zeroes attention weights with that probability (the others scaled by 1 / (1 - p)),
    drawn from ``self.rng``.

    The textbook version of this layer is ``nnscratch.reference.MultiHeadAttention``, one head at a
    time: read it first. This one shares its constructor, parameters and checks (nnscratch/specs/)
    and computes the same numbers with every head in one batched ``np.matmul`` on (N, H, T, d) views
    of the projections (no copies), the attention weights kept transposed so that the softmax
    reduces along contiguous rows, in place (nnscratch/kernels/attention.py), and the softmax's
    backward sums taken as sum(dO_h * O_h) over d instead of over the T keys.

    Parameters (PyTorch's names and layout, which copy across one to one): ``in_proj_weight``
    (3E, E), ``in_proj_bias`` (3E,), ``out_proj_weight`` (E, E), ``out_proj_bias`` (E,), the biases
    only with ``bias=True``.

    Shape:
        x: (N, T, embed_dim); y: (N, T, embed_dim); key_padding_mask: (N, T) bool, True = padding
        in_proj_weight: (3 * embed_dim, embed_dim), in_proj_bias: (3 * embed_dim,)
        out_proj_weight: (embed_dim, embed_dim), out_proj_bias: (embed_dim,)
    """

    # The last forward's cache, for backward; the recycled work arrays are a store, dropped by
    # release_memory() and left out of copies (see kernels/memory.py).
    _caches = ("_cache", "_ones_cache")
    _stores = ("_recycled",)

    def __init__(self, embed_dim, num_heads, causal=False, dropout=0.0, bias=True, dtype=np.float32, rng=None):
        super().__init__(embed_dim, num_heads, causal, dropout, bias, dtype, rng)
        self._cache = None
        self._ones_cache = None
        self._recycled: dict = {}

    def _empty(self, key: str, shape, dtype) -> np.ndarray:
        return recycled_empty(self._recycled, key, shape, dtype)

    def forward(self, x, *args, key_padding_mask=None):
        x, padding = self._checked(x, key_padding_mask)
        n, t, e = x.shape
        dtype, h = x.dtype, self.num_heads
        rows = x.reshape(n * t, e)  # a view of C-order input
        qkv = np.matmul(rows, self.in_proj_weight.T, out=self._empty("qkv", (n * t, 3 * e), dtype))
        if self.in_proj_bias is not None:
            qkv += self.in_proj_bias
        qkv[:, :e] *= dtype.type(1.0 / math.sqrt(self.head_dim))  # Q / sqrt(d): the scores come out scaled
        q, k, v = split_heads(qkv, n, t, h)
        # the weights transposed, (N, H, keys, queries): see kernels/attention.py
        weights = np.matmul(k, q.transpose(0, 1, 3, 2), out=self._empty("weights", (n, h, t, t), dtype))
        softmax_keys_(weights, additive_mask(t, self.causal, padding, dtype))
        used, keep = weights, None
        if self.training and self.dropout > 0:
            # drawn (N, H, queries, keys), as the textbook twin draws them
            keep = (self.rng.random((n, h, t, t), dtype=dtype) >= self.dropout).transpose(0, 1, 3, 2)
            used = np.multiply(weights, keep, out=self._empty("used", weights.shape, dtype))
            used *= dtype.type(1.0 / (1.0 - self.dropout))
        out = self._empty("out", (n * t, e), dtype)  # the heads' outputs side by side, written in place
        np.matmul(used.transpose(0, 1, 3, 2), v, out=heads(out, n, t, h))
        y = out @ self.out_proj_weight.T
        if self.out_proj_bias is not None:
            y += self.out_proj_bias
        self._cache = (rows, qkv, weights, used, keep, out, x.shape)
        return y.reshape(n, t, e)

    def backward(self, delta):
        self._check_forward_called(self._cache)
        rows, qkv, weights, used, keep, out, shape = self._cache
        n, t, e = shape
        dtype, h = rows.dtype, self.num_heads
        delta = self._check_delta(delta, shape).astype(dtype, copy=False).reshape(n * t, e)
        deltas = writable_deltas(self)
        biases = self.in_proj_bias is not None
        # the output projection: dW_out = delta^T O, db_out = sum of delta, dO = delta W_out
        np.matmul(delta.T, out, out=deltas[2 if biases else 1])
        if biases:
            np.matmul(self._ones(n * t, dtype), delta, out=deltas[3])
        d_out = np.matmul(delta, self.out_proj_weight, out=self._empty("d_out", (n * t, e), dtype))
        d_heads = heads(d_out, n, t, h)
        q, k, v = split_heads(qkv, n, t, h)
        d_qkv = self._empty("d_qkv", (n * t, 3 * e), dtype)
        dq, dk, dv = split_heads(d_qkv, n, t, h)
        np.matmul(used, d_heads, out=dv)
        d_weights = np.matmul(v, d_heads.transpose(0, 1, 3, 2), out=self._empty("d_weights", weights.shape, dtype))
        if keep is not None:
            d_weights *= keep
            d_weights *= dtype.type(1.0 / (1.0 - self.dropout))
        # the sum over the keys of dA * A equals the sum of dO * O over the head's d features (O = A' V,
        # dA' = dO V^T): a pass over (N, T, E) instead of (N, H, T, T)
        key_dot = np.multiply(d_out, out, out=self._empty("key_dot", (n * t, e), dtype))
        key_dot = key_dot.reshape(n, t, h, -1).sum(axis=-1).transpose(0, 2, 1)[:, :, None, :]  # (N, H, 1, T)
        d_scores = softmax_keys_backward_(d_weights, weights, key_dot)  # transposed, as the weights
        np.matmul(d_scores.transpose(0, 1, 3, 2), k, out=dq)
        dq *= dtype.type(1.0 / math.sqrt(self.head_dim))  # the scale folded into Q in forward
        np.matmul(d_scores, q, out=dk)  # q is Q / sqrt(d) already
        # the input projection: dW_in = dQKV^T x, db_in = sum of dQKV, dx = dQKV W_in
        np.matmul(d_qkv.T, rows, out=deltas[0])
        if biases:
            np.matmul(self._ones(n * t, dtype), d_qkv, out=deltas[1])
        return (d_qkv @ self.in_proj_weight).reshape(shape)

    def _ones(self, count: int, dtype) -> np.ndarray:
        """A read-only vector of ``count`` ones: a bias gradient as one matrix-vector product (as Linear's)."""
        ones = self._ones_cache
        if ones is None or ones.shape[0] != count or ones.dtype != dtype:
            ones = self._ones_cache = np.ones(count, dtype=dtype)
            ones.flags.writeable = False
        return ones
