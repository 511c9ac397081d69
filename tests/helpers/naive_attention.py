"""Multi-head self-attention written one sequence, one query and one head at a time, in float64.

No batched products, no masks as arrays, no softmax tricks beyond the textbook's max subtraction:
the loops a reader checks by eye. Both nnscratch.reference.MultiHeadAttention and the fast layer are
tested against these (tests/reference/, tests/layers/).

    from helpers.naive_attention import naive_attention_forward, naive_attention_backward
    y = naive_attention_forward(x, params, num_heads, causal=False, padding=None, keep=None, p=0.0)
    dx, d_params = naive_attention_backward(x, params, delta, num_heads, ...)  # the same keywords

``params`` is (in_proj_weight (3E, E), in_proj_bias (3E,) or None, out_proj_weight (E, E),
out_proj_bias (E,) or None), PyTorch's layout (y = W x + b for each token x). ``padding[n, j]`` True
hides key j of sequence n; ``keep[n, h, i, j]`` False drops weight (i, j) of head h (dropout with
probability p, the kept weights scaled by 1 / (1 - p)).
"""

from __future__ import annotations

import math

import numpy as np


def _visible(i: int, t: int, n: int, causal: bool, padding) -> list:
    """The keys query i of sequence n may look at."""
    return [j for j in range(t) if not (causal and j > i) and not (padding is not None and padding[n, j])]


def _head_state(x, params, num_heads, n, i, h, causal, padding, keep, p):
    """For sequence n, query i, head h: q, the visible keys with their k and v, and the weights
    before and after dropout, all as Python lists of float64 vectors and numbers."""
    in_w, in_b = params[0], params[1]
    e = x.shape[2]
    d = e // num_heads

    def project(third, token):  # rows of W_in for Q (0), K (1) or V (2), head h
        rows = slice(third * e + h * d, third * e + (h + 1) * d)
        return in_w[rows] @ x[n, token] + (0.0 if in_b is None else in_b[rows])

    q = project(0, i)
    keys = _visible(i, x.shape[1], n, causal, padding)
    k = {j: project(1, j) for j in keys}
    v = {j: project(2, j) for j in keys}
    scores = {j: float(q @ k[j]) / math.sqrt(d) for j in keys}
    weights = {}
    if keys:  # a query with no visible key gets no weights at all: its head output is 0
        top = max(scores.values())
        total = sum(math.exp(s - top) for s in scores.values())
        weights = {j: math.exp(scores[j] - top) / total for j in keys}
    used = {j: w * (keep[n, h, i, j] / (1.0 - p) if keep is not None else 1.0) for j, w in weights.items()}
    return q, k, v, weights, used


def naive_attention_forward(x, params, num_heads, causal=False, padding=None, keep=None, p=0.0):
    """y[n, i] = W_out [o_1 ... o_H] + b_out, o_h = sum over visible j of weight_ij v_j."""
    x = np.asarray(x, np.float64)
    params = [None if a is None else np.asarray(a, np.float64) for a in params]
    n_seq, t, e = x.shape
    d = e // num_heads
    y = np.zeros_like(x)
    for n in range(n_seq):
        for i in range(t):
            heads = np.zeros(e)
            for h in range(num_heads):
                _, _, v, _, used = _head_state(x, params, num_heads, n, i, h, causal, padding, keep, p)
                for j, w in used.items():
                    heads[h * d : (h + 1) * d] += w * v[j]
            y[n, i] = params[2] @ heads + (0.0 if params[3] is None else params[3])
    return y


def naive_attention_backward(x, params, delta, num_heads, causal=False, padding=None, keep=None, p=0.0):
    """(dL/dx, [dL/d each parameter that is not None]) for dL/dy = delta, by the chain rule per query."""
    x, delta = np.asarray(x, np.float64), np.asarray(delta, np.float64)
    params = [None if a is None else np.asarray(a, np.float64) for a in params]
    in_w, in_b, out_w, out_b = params
    n_seq, t, e = x.shape
    d = e // num_heads
    d_qkv = np.zeros((n_seq, t, 3 * e))  # dL/d[q k v] of every token
    d_out_w = np.zeros_like(out_w)
    for n in range(n_seq):
        for i in range(t):
            heads = np.zeros(e)
            d_heads = out_w.T @ delta[n, i]
            for h in range(num_heads):
                cols = slice(h * d, (h + 1) * d)
                q, k, v, weights, used = _head_state(x, params, num_heads, n, i, h, causal, padding, keep, p)
                d_o = d_heads[cols]
                d_weight = {}
                for j, w in used.items():
                    heads[cols] += w * v[j]
                    d_qkv[n, j, 2 * e + h * d : 2 * e + (h + 1) * d] += w * d_o  # dv_j
                    scale = keep[n, h, i, j] / (1.0 - p) if keep is not None else 1.0
                    d_weight[j] = float(d_o @ v[j]) * scale
                # the softmax's backward: ds_j = w_j (dw_j - sum_k w_k dw_k)
                inner = sum(weights[j] * d_weight[j] for j in weights)
                for j, w in weights.items():
                    d_score = w * (d_weight[j] - inner) / math.sqrt(d)
                    d_qkv[n, i, h * d : (h + 1) * d] += d_score * k[j]  # dq
                    d_qkv[n, j, e + h * d : e + (h + 1) * d] += d_score * q  # dk_j
            d_out_w += np.outer(delta[n, i], heads)
    dx = np.zeros_like(x)
    d_in_w = np.zeros_like(in_w)
    for n in range(n_seq):
        for token in range(t):
            dx[n, token] = in_w.T @ d_qkv[n, token]
            d_in_w += np.outer(d_qkv[n, token], x[n, token])
    grads = [d_in_w, None if in_b is None else d_qkv.sum(axis=(0, 1)), d_out_w,
             None if out_b is None else delta.sum(axis=(0, 1))]
    return dx, [g for g in grads if g is not None]


def dropout_keep(layer, shape, dtype):
    """The keep mask the layer's next training forward will draw, (N, H, T, T) bool, without
    advancing ``layer.rng``: the same draw from a copy of its state."""
    twin = np.random.default_rng()
    twin.bit_generator.state = layer.rng.bit_generator.state
    return twin.random(shape, dtype=dtype) >= layer.dropout


def layer_params(layer) -> list:
    """(in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias) of a layer, biases None without."""
    return [layer.in_proj_weight, layer.in_proj_bias, layer.out_proj_weight, layer.out_proj_bias]
