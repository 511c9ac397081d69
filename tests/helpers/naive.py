"""Slow, obvious loop-based references for the layers, in float64.

Written from the definitions, one output element (or one gradient contribution) at a time, with
no im2col and nothing clever, so that a reader can check them by eye. The fast layers are tested
against these, and ``scripts/benchmark.py`` times ``naive_conv2d_forward`` + ``naive_conv2d_backward``
for the Conv2D micro-benchmark (the fast layer must be at least 100x faster).

    from helpers.naive import naive_conv2d_forward, naive_conv2d_backward      # tests/ on sys.path
    y = naive_conv2d_forward(x, weight, bias, stride=(1, 1), padding=(1, 1))
    dx, dweight, dbias = naive_conv2d_backward(x, weight, delta, stride=(1, 1), padding=(1, 1))

Conventions as in the layers: x (N, C, H, W), weight (F, C, kh, kw), bias (F,) or None,
stride and padding (h, w) pairs (or ints), cross-correlation with zero padding.
"""

from __future__ import annotations

import cmath
import math

import numpy as np


def _pair(value):
    return (value, value) if np.isscalar(value) else tuple(value)


def _zero_pad(x, padding):
    """x (N, C, H, W) with ph zero rows above and below and pw zero columns left and right."""
    ph, pw = padding
    n, c, h, w = x.shape
    padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    padded[:, :, ph : ph + h, pw : pw + w] = x
    return padded


def naive_conv2d_forward(x, weight, bias=None, stride=1, padding=0):
    """y[n, f, r, c] = bias[f] + sum_{k, i, j} weight[f, k, i, j] * xpad[n, k, r*sh + i, c*sw + j].

    Shape:
        x: (N, C, H, W), weight: (F, C, kh, kw), bias: (F,) or None
        y: (N, F, oh, ow), oh = (H + 2ph - kh) // sh + 1, ow likewise
    """
    (sh, sw), padding = _pair(stride), _pair(padding)
    x, weight = np.asarray(x, np.float64), np.asarray(weight, np.float64)
    xp = _zero_pad(x, padding)
    n, _, hp, wp = xp.shape
    f, _, kh, kw = weight.shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    y = np.zeros((n, f, oh, ow))
    for b in range(n):
        for o in range(f):
            for r in range(oh):
                for c in range(ow):
                    window = xp[b, :, r * sh : r * sh + kh, c * sw : c * sw + kw]
                    y[b, o, r, c] = np.sum(window * weight[o]) + (0.0 if bias is None else bias[o])
    return y


def naive_conv2d_backward(x, weight, delta, stride=1, padding=0):
    """Gradients of L given delta = dL/dy: returns (dL/dx, dL/dweight, dL/dbias).

    Each output y[n, f, r, c] sends delta[n, f, r, c] * weight[f] back to the window of the padded
    input it read, and delta[n, f, r, c] * that window to weight[f]; the bias gradient is the sum of
    delta over n, r, c. The padding's share of the input gradient is dropped at the end.

    Shape:
        x: (N, C, H, W), weight: (F, C, kh, kw), delta: (N, F, oh, ow)
        dx: like x, dweight: like weight, dbias: (F,)
    """
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    x, weight, delta = (np.asarray(a, np.float64) for a in (x, weight, delta))
    xp = _zero_pad(x, (ph, pw))
    n, _, hp, wp = xp.shape
    f, _, kh, kw = weight.shape
    oh, ow = delta.shape[2:]
    dxp = np.zeros_like(xp)
    dweight = np.zeros_like(weight)
    dbias = np.zeros(f)
    for b in range(n):
        for o in range(f):
            for r in range(oh):
                for c in range(ow):
                    d = delta[b, o, r, c]
                    rows, cols = slice(r * sh, r * sh + kh), slice(c * sw, c * sw + kw)
                    dxp[b, :, rows, cols] += d * weight[o]
                    dweight[o] += d * xp[b, :, rows, cols]
                    dbias[o] += d
    dx = dxp[:, :, ph : hp - ph, pw : wp - pw]
    return dx, dweight, dbias


def naive_maxpool2d_forward(x, kernel_size, stride=None):
    """y[n, c, r, q] = max of the window x[n, c, r*sh : r*sh + kh, q*sw : q*sw + kw].

    Shape:
        x: (N, C, H, W); y: (N, C, (H - kh) // sh + 1, (W - kw) // sw + 1)
    """
    (kh, kw) = _pair(kernel_size)
    (sh, sw) = (kh, kw) if stride is None else _pair(stride)
    x = np.asarray(x, np.float64)
    n, ch, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    y = np.zeros((n, ch, oh, ow))
    for b in range(n):
        for c in range(ch):
            for r in range(oh):
                for q in range(ow):
                    y[b, c, r, q] = x[b, c, r * sh : r * sh + kh, q * sw : q * sw + kw].max()
    return y


def naive_maxpool2d_backward(x, delta, kernel_size, stride=None):
    """dL/dx: each window's delta goes to its maximum, the first in row-major order on ties.

    Shape:
        x: (N, C, H, W); delta: (N, C, oh, ow); dx: like x
    """
    (kh, kw) = _pair(kernel_size)
    (sh, sw) = (kh, kw) if stride is None else _pair(stride)
    x, delta = np.asarray(x, np.float64), np.asarray(delta, np.float64)
    n, ch, oh, ow = delta.shape
    dx = np.zeros_like(x)
    for b in range(n):
        for c in range(ch):
            for r in range(oh):
                for q in range(ow):
                    window = x[b, c, r * sh : r * sh + kh, q * sw : q * sw + kw]
                    i, j = np.unravel_index(np.argmax(window), window.shape)  # first maximum
                    dx[b, c, r * sh + i, q * sw + j] += delta[b, c, r, q]
    return dx


# -- element-wise activations ------------------------------------------------------------------
# Each function maps one number to one number, written from its textbook definition with cmath so
# that it also takes a complex argument: its derivative then comes from the complex step
# f'(v) = Im f(v + ih) / h, exact to rounding and independent of any hand-derived formula.
def leaky_relu(v, negative_slope=0.01):
    return v if v.real > 0 else negative_slope * v


def elu(v, alpha=1.0):
    return v if v.real > 0 else alpha * (cmath.exp(v) - 1)


def gelu_tanh(v):
    return 0.5 * v * (1 + cmath.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))


def silu(v):
    return v / (1 + cmath.exp(-v)) if v.real > -700 else 0.0 * v


def softplus(v, beta=1.0, threshold=20.0):
    return v if beta * v.real > threshold else cmath.log(1 + cmath.exp(beta * v)) / beta


def naive_elementwise(function, x, **kwargs):
    """(y, dy/dx) of a scalar function applied to every element of x, one element at a time."""
    x = np.asarray(x, np.float64)
    y, slope = np.zeros_like(x), np.zeros_like(x)
    step = 1e-30
    for index in np.ndindex(x.shape):
        v = float(x[index])
        y[index] = complex(function(complex(v, 0.0), **kwargs)).real
        # the derivative from the left at a kink (v.real > 0 is False there), as PyTorch
        slope[index] = complex(function(complex(v, step), **kwargs)).imag / step
    return y, slope


def naive_dropout_forward(x, uniform, p):
    """y[i] = x[i] / (1 - p) where the uniform draw u[i] >= p (kept), else 0.

    Shape:
        x, uniform: any, the same; y: like x
    """
    x, uniform = np.asarray(x, np.float64), np.asarray(uniform, np.float64)
    y = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        if uniform[i] >= p:
            y[i] = x[i] / (1.0 - p)
    return y


def naive_dropout_backward(delta, uniform, p):
    """dL/dx[i] = delta[i] / (1 - p) where element i was kept, else 0 (the same draws as forward).

    Shape:
        delta, uniform: any, the same; dx: like delta
    """
    return naive_dropout_forward(delta, uniform, p)


# -- losses, one sample and one value at a time ---------------------------------------------------
def _per_sample_rows(values):
    """(N, ...) -> (N, count) in float64: sample n's values in one row."""
    values = np.asarray(values, np.float64)
    return values.reshape(values.shape[0], -1)


def naive_mean_squared_error(x, targets):
    """(loss (N,), dloss_n/dx (N, ...)): loss_n = mean over sample n's values of (x - t)^2."""
    shape = np.shape(x)
    x, targets = _per_sample_rows(x), _per_sample_rows(targets)  # (N, count)
    loss, grad = np.zeros(x.shape[0]), np.zeros_like(x)
    for n in range(x.shape[0]):
        count = x.shape[1]
        for i in range(count):
            error = x[n, i] - targets[n, i]
            loss[n] += error * error / count
            grad[n, i] = 2 * error / count
    return loss, grad.reshape(shape)


def naive_binary_cross_entropy(p, targets):
    """(loss (N,), dloss_n/dp): the mean over sample n of -(t log p + (1 - t) log(1 - p)), each log
    at least -100, and the gradient (p - t) / max(p (1 - p), 1e-12) / count, as PyTorch's BCELoss."""
    shape = np.shape(p)
    p, targets = _per_sample_rows(p), _per_sample_rows(targets)
    loss, grad = np.zeros(p.shape[0]), np.zeros_like(p)

    def clamped_log(v):
        return -100.0 if v <= 0 else max(math.log(v), -100.0)

    for n in range(p.shape[0]):
        count = p.shape[1]
        for i in range(count):
            v, t = p[n, i], targets[n, i]
            loss[n] -= (t * clamped_log(v) + (1 - t) * clamped_log(1 - v)) / count
            grad[n, i] = (v - t) / max(v * (1 - v), 1e-12) / count
    return loss, grad.reshape(shape)


def naive_sigmoid_binary_cross_entropy(z, targets):
    """(loss (N,), dloss_n/dz): binary cross-entropy of sigmoid(z), from its definition (for
    moderate z), and the gradient (sigmoid(z) - t) / count."""
    shape = np.shape(z)
    z, targets = _per_sample_rows(z), _per_sample_rows(targets)
    loss, grad = np.zeros(z.shape[0]), np.zeros_like(z)
    for n in range(z.shape[0]):
        count = z.shape[1]
        for i in range(count):
            s, t = 1 / (1 + math.exp(-z[n, i])), targets[n, i]
            loss[n] -= (t * math.log(s) + (1 - t) * math.log(1 - s)) / count
            grad[n, i] = (s - t) / count
    return loss, grad.reshape(shape)


def naive_hinge(scores, labels, margin=1.0):
    """(loss (N,), dloss_n/dscores (N, C)): the multiclass SVM loss, term by term."""
    scores = np.asarray(scores, np.float64)
    n_samples, n_classes = scores.shape
    loss, grad = np.zeros(n_samples), np.zeros_like(scores)
    for n in range(n_samples):
        y = int(labels[n])
        for j in range(n_classes):
            if j == y:
                continue
            term = scores[n, j] - scores[n, y] + margin
            if term > 0:
                loss[n] += term
                grad[n, j] += 1
                grad[n, y] -= 1
    return loss, grad


# -- average pooling ----------------------------------------------------------------------------
def naive_avgpool2d_forward(x, kernel_size, stride=None, padding=0):
    """y[n, c, r, q] = the mean of the kh x kw window of the zero-padded input (the zeros counted).

    Shape:
        x: (N, C, H, W); y: (N, C, (H + 2ph - kh) // sh + 1, (W + 2pw - kw) // sw + 1)
    """
    (kh, kw) = _pair(kernel_size)
    (sh, sw) = (kh, kw) if stride is None else _pair(stride)
    xp = _zero_pad(np.asarray(x, np.float64), _pair(padding))
    n, ch, hp, wp = xp.shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    y = np.zeros((n, ch, oh, ow))
    for b in range(n):
        for c in range(ch):
            for r in range(oh):
                for q in range(ow):
                    total = 0.0
                    for i in range(kh):
                        for j in range(kw):
                            total += xp[b, c, r * sh + i, q * sw + j]
                    y[b, c, r, q] = total / (kh * kw)
    return y


def naive_avgpool2d_backward(x_shape, delta, kernel_size, stride=None, padding=0):
    """dL/dx: each window hands delta / (kh kw) to each of its inputs; the padding's share is dropped.

    Shape:
        delta: (N, C, oh, ow); dx: x_shape (N, C, H, W)
    """
    (kh, kw) = _pair(kernel_size)
    (sh, sw) = (kh, kw) if stride is None else _pair(stride)
    (ph, pw) = _pair(padding)
    delta = np.asarray(delta, np.float64)
    n, ch, h, w = x_shape
    dxp = np.zeros((n, ch, h + 2 * ph, w + 2 * pw))
    for b in range(n):
        for c in range(ch):
            for r in range(delta.shape[2]):
                for q in range(delta.shape[3]):
                    for i in range(kh):
                        for j in range(kw):
                            dxp[b, c, r * sh + i, q * sw + j] += delta[b, c, r, q] / (kh * kw)
    return dxp[:, :, ph : ph + h, pw : pw + w]


def naive_global_avgpool2d(x):
    """(y (N, C), dy[n, c]/dx[n, c, h, w] = 1 / (H W)): the mean of each channel's image."""
    x = np.asarray(x, np.float64)
    n, ch, h, w = x.shape
    y = np.zeros((n, ch))
    for b in range(n):
        for c in range(ch):
            y[b, c] = sum(x[b, c, i, j] for i in range(h) for j in range(w)) / (h * w)
    return y, 1.0 / (h * w)


# -- normalization -----------------------------------------------------------------------------
# Each group of values (a channel over the batch for BatchNorm, a sample for LayerNorm) is normalized
# on its own, one value at a time; backward follows the chain rule step by step through the mean and
# the variance, as in Ioffe and Szegedy's paper, not the compact formula the layers use.
def _normalize(values, eps):
    """x_hat of a list of numbers, with their mean and biased variance."""
    m = len(values)
    mean = sum(values) / m
    var = sum((v - mean) ** 2 for v in values) / m
    return [(v - mean) / math.sqrt(var + eps) for v in values], mean, var


def _normalize_backward(values, dx_hat, eps):
    """dL/dx of a group given dL/dx_hat, through var and mean."""
    m = len(values)
    mean = sum(values) / m
    var = sum((v - mean) ** 2 for v in values) / m
    dvar = sum(d * (v - mean) for d, v in zip(dx_hat, values)) * -0.5 * (var + eps) ** -1.5
    dmean = sum(-d / math.sqrt(var + eps) for d in dx_hat) + dvar * sum(-2 * (v - mean) for v in values) / m
    return [d / math.sqrt(var + eps) + dvar * 2 * (v - mean) / m + dmean / m for d, v in zip(dx_hat, values)]


def _channel_indices(shape, c):
    """Every index of an (N, C, ...) array whose channel (axis 1) is c."""
    return [index for index in np.ndindex(*shape) if index[1] == c]


def naive_batchnorm_forward(x, weight, bias, running_mean, running_var, eps=1e-5, momentum=0.1, training=True):
    """y = (x - mean) / sqrt(var + eps) * weight + bias per channel c = axis 1, and the new running stats.

    Training: the batch's mean and biased variance over every axis but 1; running <- (1 - momentum) *
    running + momentum * (mean, unbiased variance). Eval: the running statistics, unchanged.

    Shape:
        x: (N, C) or (N, C, ...); weight, bias, running_mean, running_var: (C,)
        returns y like x, running_mean (C,), running_var (C,)
    """
    x = np.asarray(x, np.float64)
    y = np.zeros_like(x)
    new_mean, new_var = np.array(running_mean, np.float64), np.array(running_var, np.float64)
    for c in range(x.shape[1]):
        indices = _channel_indices(x.shape, c)
        values = [x[i] for i in indices]
        if training:
            x_hat, mean, var = _normalize(values, eps)
            m = len(values)
            new_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean
            new_var[c] = (1 - momentum) * running_var[c] + momentum * var * m / (m - 1)
        else:
            x_hat = [(v - running_mean[c]) / math.sqrt(running_var[c] + eps) for v in values]
        for i, v in zip(indices, x_hat):
            y[i] = v * weight[c] + bias[c]
    return y, new_mean, new_var


def naive_batchnorm_backward(x, weight, delta, running_mean=None, running_var=None, eps=1e-5, training=True):
    """(dL/dx, dL/dweight, dL/dbias) per channel; in training through the batch mean and variance,
    in eval (``training=False``, with the running statistics) with those as constants.

    Shape:
        x, delta: (N, C) or (N, C, ...); weight: (C,); returns dx like x, dweight (C,), dbias (C,)
    """
    x, delta = np.asarray(x, np.float64), np.asarray(delta, np.float64)
    dx = np.zeros_like(x)
    channels = x.shape[1]
    dweight, dbias = np.zeros(channels), np.zeros(channels)
    for c in range(channels):
        indices = _channel_indices(x.shape, c)
        values, deltas = [x[i] for i in indices], [delta[i] for i in indices]
        dbias[c] = sum(deltas)
        dx_hat = [d * weight[c] for d in deltas]
        if training:
            x_hat, _, _ = _normalize(values, eps)
            grads = _normalize_backward(values, dx_hat, eps)
        else:
            x_hat = [(v - running_mean[c]) / math.sqrt(running_var[c] + eps) for v in values]
            grads = [d / math.sqrt(running_var[c] + eps) for d in dx_hat]
        dweight[c] = sum(d * h for d, h in zip(deltas, x_hat))
        for i, g in zip(indices, grads):
            dx[i] = g
    return dx, dweight, dbias


def naive_layernorm_forward(x, weight, bias, normalized_ndim, eps=1e-5):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, each sample over its last normalized_ndim axes.

    Shape:
        x: (*, *normalized_shape); weight, bias: normalized_shape; y: like x
    """
    x = np.asarray(x, np.float64)
    y = np.zeros_like(x)
    k = int(np.prod(x.shape[x.ndim - normalized_ndim :]))
    rows, flat_y = x.reshape(-1, k), y.reshape(-1, k)
    w, b = np.ravel(weight), np.ravel(bias)
    for r in range(rows.shape[0]):
        x_hat, _, _ = _normalize(list(rows[r]), eps)
        for j in range(k):
            flat_y[r, j] = x_hat[j] * w[j] + b[j]
    return y


def naive_layernorm_backward(x, weight, delta, normalized_ndim, eps=1e-5):
    """(dL/dx, dL/dweight, dL/dbias): per sample through its mean and variance; the parameter
    gradients summed over the samples.

    Shape:
        x, delta: (*, *normalized_shape); weight: normalized_shape; dx like x, dweight and dbias like weight
    """
    x, delta = np.asarray(x, np.float64), np.asarray(delta, np.float64)
    k = int(np.prod(x.shape[x.ndim - normalized_ndim :]))
    rows, deltas = x.reshape(-1, k), delta.reshape(-1, k)
    w = np.ravel(weight)
    dx, dweight, dbias = np.zeros_like(rows), np.zeros(k), np.zeros(k)
    for r in range(rows.shape[0]):
        x_hat, _, _ = _normalize(list(rows[r]), eps)
        for j in range(k):
            dweight[j] += deltas[r, j] * x_hat[j]
            dbias[j] += deltas[r, j]
        dx[r] = _normalize_backward(list(rows[r]), [deltas[r, j] * w[j] for j in range(k)], eps)
    shape = np.shape(weight)
    return dx.reshape(x.shape), dweight.reshape(shape), dbias.reshape(shape)


# -- a residual block ------------------------------------------------------------------------------
def naive_residual_mlp(x, w1, b1, w2, b2, delta):
    """y = x + tanh(x @ w1 + b1) @ w2 + b2, and its gradients, one sum at a time.

    Backward by the chain rule: x reaches y directly (the skip: delta itself) and through the two
    layers, so dL/dx = delta + (f's gradient of x); the weights get theirs from f alone.

    Shape:
        x: (N, D), w1: (D, H), b1: (H,), w2: (H, D), b2: (D,), delta: (N, D)
        returns y (N, D), dx (N, D), dw1, db1, dw2, db2 like the weights
    """
    x, w1, b1, w2, b2, delta = (np.asarray(a, np.float64) for a in (x, w1, b1, w2, b2, delta))
    n, d = x.shape
    h = w1.shape[1]
    hidden = np.zeros((n, h))
    y = np.zeros((n, d))
    for s in range(n):
        for k in range(h):
            hidden[s, k] = math.tanh(sum(x[s, i] * w1[i, k] for i in range(d)) + b1[k])
        for j in range(d):
            y[s, j] = x[s, j] + sum(hidden[s, k] * w2[k, j] for k in range(h)) + b2[j]
    dx, dw1, db1, dw2, db2 = np.zeros_like(x), np.zeros_like(w1), np.zeros_like(b1), np.zeros_like(w2), np.zeros_like(b2)
    for s in range(n):
        for j in range(d):
            dx[s, j] += delta[s, j]  # the skip
            db2[j] += delta[s, j]
            for k in range(h):
                dw2[k, j] += hidden[s, k] * delta[s, j]
        for k in range(h):
            d_hidden = sum(w2[k, j] * delta[s, j] for j in range(d))
            d_pre = d_hidden * (1 - hidden[s, k] ** 2)
            db1[k] += d_pre
            for i in range(d):
                dw1[i, k] += x[s, i] * d_pre
                dx[s, i] += w1[i, k] * d_pre
    return y, dx, dw1, db1, dw2, db2
