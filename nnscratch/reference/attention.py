"""The textbook multi-head self-attention: the projections, then each head on its own, then the output
projection, in plain NumPy."""

from __future__ import annotations

import math

import numpy as np

from ..specs.attention import MultiHeadAttentionBase


class MultiHeadAttention(MultiHeadAttentionBase):
    """Multi-head self-attention over a sequence (PyTorch's ``nn.MultiheadAttention``, batch first).

        [Q K V] = x W_in^T + b_in                          W_in = in_proj_weight (3E, E), split in three
        for each head h (its d = E / H columns of Q, K and V):
            S_h = Q_h K_h^T / sqrt(d)                      (N, T, T): how much query i looks at key j
            A_h = softmax(S_h with masked keys at -inf)    each row over the keys j
            O_h = A_h V_h                                  (N, T, d)
        y = [O_1 ... O_H] W_out^T + b_out                  W_out = out_proj_weight (E, E)

    Masks: with ``causal``, query i sees keys j <= i only; ``key_padding_mask[n, j]`` True hides key j
    of sequence n from every query. The softmax subtracts each row's maximum first (the same
    softmax, never overflowing). A query that sees no key at all (every key padding, or padding and
    causality together) gets all-zero weights: its O_h is 0 and its output is b_out. Never NaN.

    Dropout (training mode, p = ``dropout``): each attention weight is zeroed with probability p and
    the others scaled by 1 / (1 - p), A_h' = A_h * M_h / (1 - p), from uniforms drawn from
    ``self.rng``, (N, H, T, T) at a time in the layer's dtype. Eval mode, or p = 0: none.

    Backward, per head, with dO_h the head's columns of dL/dy W_out:
        dV_h = A_h'^T dO_h,   dA_h' = dO_h V_h^T,   dA_h = dA_h' * M_h / (1 - p)
        dS_h = A_h * (dA_h - rowsum(dA_h * A_h))   (the softmax's backward; 0 where A_h is 0)
        dQ_h = dS_h K_h / sqrt(d),   dK_h = dS_h^T Q_h / sqrt(d)
    then dW_in = [dQ dK dV]^T x, db_in = its sum over (N, T), dx = [dQ dK dV] W_in, and likewise
    for the output projection: dW_out = dL/dy^T [O_1 ... O_H], db_out = the sum of dL/dy.

    The textbook twin of ``nnscratch.MultiHeadAttention``: the same constructor, parameters and
    numbers, one head at a time. Read this one first.

    Shape:
        x: (N, T, embed_dim); y: (N, T, embed_dim); key_padding_mask: (N, T) bool, True = padding
        in_proj_weight: (3 * embed_dim, embed_dim), in_proj_bias: (3 * embed_dim,)
        out_proj_weight: (embed_dim, embed_dim), out_proj_bias: (embed_dim,)
    """

    _caches = ("_cache",)  # what release_memory() drops

    def __init__(self, embed_dim, num_heads, causal=False, dropout=0.0, bias=True, dtype=np.float32, rng=None):
        # The checks, parameters, config and output_shape are shared with nnscratch.MultiHeadAttention
        # (nnscratch/specs/attention.py); only forward and backward differ.
        super().__init__(embed_dim, num_heads, causal, dropout, bias, dtype, rng)
        self._cache = None

    def forward(self, x, *args, key_padding_mask=None):
        x, padding = self._checked(x, key_padding_mask)
        n, t, e = x.shape
        qkv = x @ self.in_proj_weight.T
        if self.in_proj_bias is not None:
            qkv = qkv + self.in_proj_bias
        q, k, v = np.split(qkv, 3, axis=-1)
        # allowed[n, i, j]: query i of sequence n may look at key j
        allowed = np.ones((n, t, t), dtype=bool)
        if self.causal:
            allowed &= np.tril(np.ones((t, t), dtype=bool))
        if padding is not None:
            allowed &= ~padding[:, None, :]
        drop = self.training and self.dropout > 0
        keep = self.rng.random((n, self.num_heads, t, t), dtype=x.dtype) >= self.dropout if drop else None
        d = self.head_dim
        heads, weights = [], []
        for h in range(self.num_heads):
            cols = slice(h * d, (h + 1) * d)
            scores = np.where(allowed, q[..., cols] @ k[..., cols].transpose(0, 2, 1) / math.sqrt(d), -np.inf)
            top = scores.max(axis=-1, keepdims=True, initial=-np.inf)  # initial: T = 0 has no keys
            top[np.isinf(top)] = 0.0  # a query that sees no key: every score stays -inf, every exp 0
            exps = np.exp(scores - top)
            total = exps.sum(axis=-1, keepdims=True)
            a = exps / np.where(total > 0, total, 1.0)  # such a query gets weights 0, not 0/0
            used = a * keep[:, h] / (1.0 - self.dropout) if drop else a
            heads.append(used @ v[..., cols])
            weights.append(a)
        out = np.concatenate(heads, axis=-1)  # (N, T, E): the heads side by side
        y = out @ self.out_proj_weight.T
        if self.out_proj_bias is not None:
            y = y + self.out_proj_bias
        self._cache = (x, q, k, v, weights, keep, out)
        return y

    def backward(self, delta):
        self._check_forward_called(self._cache)
        x, q, k, v, weights, keep, out = self._cache
        delta = self._check_delta(delta, x.shape).astype(x.dtype, copy=False)
        d = self.head_dim
        d_out = delta @ self.out_proj_weight
        dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
        for h, a in enumerate(weights):
            cols = slice(h * d, (h + 1) * d)
            scale = keep[:, h] / (1.0 - self.dropout) if keep is not None else 1.0
            dv[..., cols] = (a * scale).transpose(0, 2, 1) @ d_out[..., cols]
            d_a = (d_out[..., cols] @ v[..., cols].transpose(0, 2, 1)) * scale
            d_scores = a * (d_a - np.sum(d_a * a, axis=-1, keepdims=True))
            dq[..., cols] = d_scores @ k[..., cols] / math.sqrt(d)
            dk[..., cols] = d_scores.transpose(0, 2, 1) @ q[..., cols] / math.sqrt(d)
        d_qkv = np.concatenate([dq, dk, dv], axis=-1)  # (N, T, 3E)
        d_in_weight = np.einsum("nti,ntj->ij", d_qkv, x)
        d_out_weight = np.einsum("nti,ntj->ij", delta, out)
        biases = self.in_proj_bias is not None
        self.parameters_deltas[:] = [d_in_weight, *([d_qkv.sum(axis=(0, 1))] if biases else []),
                                     d_out_weight, *([delta.sum(axis=(0, 1))] if biases else [])]
        return d_qkv @ self.in_proj_weight
