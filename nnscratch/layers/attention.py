"""Multi-head self-attention over (N, T, E) sequences, every head at once in batched matrix products."""

from __future__ import annotations

import functools
import math

import numpy as np

from ..kernels.attention import additive_mask, attention_backward, heads, scores_softmax, split_heads, weighted_values
from ..kernels.memory import writable_deltas
from ..kernels.recycle import kept_ones, work_array
from ..kernels.rows import by_rows
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
    softmax subtracts each row's maximum. In training mode, ``dropout`` zeroes attention weights with
    that probability (the others scaled by 1 / (1 - p)), drawn from ``self.rng``.

    The textbook version of this layer is ``nnscratch.reference.MultiHeadAttention``, one head at a
    time: read it first. This one shares its constructor, parameters and checks (nnscratch/specs/)
    and computes the same numbers with every head in one batched ``np.matmul`` on (N, H, T, d) views
    of the projections (no copies), the attention weights kept transposed so that the softmax
    reduces along contiguous rows, in place (nnscratch/kernels/attention.py), and the softmax's
    backward sums taken as sum(dO_h * O_h) over d instead of over the T keys. The work between the
    projections goes a cache-sized block of sequences at a time (nnscratch/kernels/rows.py).

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
        return work_array(self._recycled, key, shape, dtype)

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
        # the weights transposed, (N, H, keys, queries): see kernels/attention.py. The work between
        # the projections goes a cache-sized block of sequences at a time.
        weights = self._empty("weights", (n, h, t, t), dtype)
        bias = additive_mask(t, self.causal, padding, dtype)
        by_rows(scores_softmax, weights, k, q, *([] if bias is None else [np.broadcast_to(bias, (n, 1, t, t))]))
        used, keep = weights, None
        if self.training and self.dropout > 0:
            # drawn (N, H, queries, keys), as the textbook twin draws them
            keep = (self.rng.random((n, h, t, t), dtype=dtype) >= self.dropout).transpose(0, 1, 3, 2)
            used = np.multiply(weights, keep, out=self._empty("used", weights.shape, dtype))
            used *= dtype.type(1.0 / (1.0 - self.dropout))
        out = self._empty("out", (n * t, e), dtype)  # the heads' outputs side by side, written in place
        by_rows(weighted_values, heads(out, n, t, h), used, v)
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
            self._ones_cache = kept_ones(self._ones_cache, n * t, dtype)  # db = ones @ delta, as Linear's
            np.matmul(self._ones_cache, delta, out=deltas[3])
        d_out = np.matmul(delta, self.out_proj_weight, out=self._empty("d_out", (n * t, e), dtype))
        q, k, v = split_heads(qkv, n, t, h)
        d_qkv = self._empty("d_qkv", (n * t, 3 * e), dtype)
        dq, dk, dv = split_heads(d_qkv, n, t, h)
        backward = functools.partial(attention_backward, keep_scale=dtype.type(1.0 / (1.0 - self.dropout)),
                                     q_scale=dtype.type(1.0 / math.sqrt(self.head_dim)))
        by_rows(backward, heads(d_out, n, t, h), d_out.reshape(n, t, e), out.reshape(n, t, e), used, weights, q, k, v,
                dq, dk, dv, *([] if keep is None else [keep]))
        # the input projection: dW_in = dQKV^T x, db_in = sum of dQKV, dx = dQKV W_in
        np.matmul(d_qkv.T, rows, out=deltas[0])
        if biases:
            np.matmul(self._ones_cache, d_qkv, out=deltas[1])
        return (d_qkv @ self.in_proj_weight).reshape(shape)
