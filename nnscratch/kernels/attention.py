"""The machinery of the fast multi-head attention (layers/attention.py): head views without copies,
the masks as one additive array, the softmax and its backward in place, and the work between the
projections done a block of sequences at a time (``kernels/rows.by_rows``).

The heads live side by side in the columns of the projections: Q, K and V are the three thirds of
the (N*T, 3E) matrix x W_in^T, and head h is columns h*d to (h+1)*d of each. ``heads`` views such a
block as (N, H, T, d) without copying, strides and all, and ``np.matmul`` hands those strided
matrices to BLAS as they are (a row stride larger than the row is what BLAS's leading dimension is
for), one small product per (sequence, head).
"""

from __future__ import annotations

import functools

import numpy as np

from .rows import scratch


def heads(columns: np.ndarray, n: int, t: int, num_heads: int) -> np.ndarray:
    """The (N, H, T, d) view of an (N*T, H*d) block of columns (a view of a wider matrix included)."""
    head_dim = columns.shape[1] // num_heads
    return columns.reshape(n, t, num_heads, head_dim).transpose(0, 2, 1, 3)


def split_heads(qkv: np.ndarray, n: int, t: int, num_heads: int) -> tuple:
    """Q, K and V of an (N*T, 3E) projection, each an (N, H, T, d) view."""
    e = qkv.shape[1] // 3
    return tuple(heads(qkv[:, i * e : (i + 1) * e], n, t, num_heads) for i in range(3))


# The attention weights are kept transposed, (N, H, T keys, T queries): each query's weights are a
# column, and the softmax's reductions (its max and its sum over the keys) run along axis -2, where
# numpy combines whole contiguous rows at a time. Along axis -1, over rows of only T values each,
# the same max took 4-5x as long (measured: (12, 4, 64, 64) float32, 90 us against 460-770 us).
# The products take the transposes as they are (BLAS reads a transposed operand in place).


@functools.lru_cache(maxsize=16)
def _causal(t: int, dtype: np.dtype) -> np.ndarray:
    """(T keys, T queries): -inf where key j comes after query i (j > i), 0 elsewhere; read-only, shared."""
    bias = np.tril(np.full((t, t), -np.inf, dtype=dtype), k=-1)
    bias.flags.writeable = False
    return bias


def additive_mask(t: int, causal: bool, padding: np.ndarray | None, dtype) -> np.ndarray | None:
    """The masks as one array to add to the transposed scores (N, H, T keys, T queries): -inf where
    query i may not see key j (j > i when ``causal``; ``padding[n, j]`` True), 0 elsewhere. (T, T),
    (N, 1, T, 1) or (N, 1, T, T), to broadcast; None when nothing is masked."""
    dtype = np.dtype(dtype)
    bias = _causal(t, dtype) if causal else None
    if padding is None:
        return bias
    padded = np.where(padding, dtype.type(-np.inf), dtype.type(0))[:, None, :, None]  # (N, 1, T, 1)
    return padded if bias is None else padded + bias


def softmax_keys_(scores: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """softmax(scores + bias) over axis -2 (the keys of the transposed scores), in place; a query that
    sees no key (a column -inf throughout) gets zeros, not 0 / 0.

    exp(s - max s) is the same softmax and never overflows: the largest exponent is 0."""
    if bias is not None:
        scores += bias
    top = np.maximum.reduce(scores, axis=-2, keepdims=True, initial=-np.inf)  # T = 0: no keys, no max
    top[np.isneginf(top)] = 0.0  # a query with nothing to see: exp(-inf - 0) = 0 throughout
    scores -= top
    np.exp(scores, out=scores)
    total = np.add.reduce(scores, axis=-2, keepdims=True)
    total[total == 0] = 1.0  # only such a query sums to 0 (any other has an exp(0) = 1 in it)
    np.reciprocal(total, out=total)
    scores *= total
    return scores


def softmax_keys_backward_(d_weights: np.ndarray, weights: np.ndarray, key_dot: np.ndarray) -> np.ndarray:
    """dL/dscores = weights * (d_weights - sum over keys of d_weights * weights), in place in
    ``d_weights``, all transposed (N, H, T keys, T queries).

    ``key_dot`` is that sum, (N, H, 1, T), computed by the caller from cheaper arrays than these (see
    ``attention_backward``). Where a weight is 0 (a masked key) the result is 0."""
    d_weights -= key_dot
    d_weights *= weights
    return d_weights


# -- the work between the projections, on any range of sequences (all arrays split along N) --------
def scores_softmax(weights, k, q, *bias) -> None:
    """The transposed attention weights, softmax over the keys of K Q^T (+ the additive mask, if one
    is given: (N, 1, T, T) or (N, 1, T, 1), broadcast views included), into ``weights``."""
    np.matmul(k, q.transpose(0, 1, 3, 2), out=weights)
    softmax_keys_(weights, bias[0] if bias else None)


def weighted_values(out_heads, used, v) -> None:
    """Each head's output A V, written into ``out_heads`` (a view of the heads side by side);
    ``used`` are the weights as kept (transposed) after dropout."""
    np.matmul(used.transpose(0, 1, 3, 2), v, out=out_heads)


def attention_backward(d_heads, d_out, out, used, weights, q, k, v, dq, dk, dv, *keep, keep_scale=1.0,
                       q_scale=1.0) -> None:
    """From dO (``d_heads``, and ``d_out`` (N, T, E) of the same memory) to dQ, dK and dV, in place.

    dV = A'^T dO; dA' = dO V^T, dA = dA' * keep * keep_scale (dropout, if ``keep`` is given);
    dS = A * (dA - sum over the keys of dA * A), that sum taken as sum(dO * O) over each head's d
    features (O = A' V, so it is the same number, from (N, T, E) arrays instead of (N, H, T, T));
    dQ = dS K * q_scale (the 1 / sqrt(d) folded into Q in forward), dK = dS^T (Q / sqrt(d)).
    Everything is transposed as the weights are; dA and dS live in the thread's block-sized work
    memory (kernels/rows.scratch), never written out whole."""
    np.matmul(used, d_heads, out=dv)
    d_weights = np.matmul(v, d_heads.transpose(0, 1, 3, 2), out=scratch("attention_d_weights", weights))
    if keep:
        d_weights *= keep[0]
        d_weights *= keep_scale
    n, t, e = d_out.shape
    per_head = (n, t, q.shape[1], q.shape[-1])  # not -1, which numpy cannot infer for N = 0
    # einsum multiplies and sums along d in one pass (measured, 4 sequences of (64, 4 heads, 32):
    # 8.6 us, against 29 for a product then .sum(axis=-1) over rows of 32)
    key_dot = np.einsum("nthd,nthd->nth", d_out.reshape(per_head), out.reshape(per_head))
    softmax_keys_backward_(d_weights, weights, key_dot.transpose(0, 2, 1)[:, :, None, :])
    np.matmul(d_weights.transpose(0, 1, 3, 2), k, out=dq)
    dq *= q_scale
    np.matmul(d_weights, q, out=dk)
