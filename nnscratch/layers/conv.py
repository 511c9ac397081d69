"""2-D convolution and max pooling over (N, C, H, W) images."""

from __future__ import annotations

import math

import numpy as np

from .. import aligned
from .base import Layer, as_dtype, check_positive_int, copy_in_order, empty_in_order, get_rng, memory_order, pair
from .im2col import Im2Col, window_slices


class Conv2D(Layer):
    """2-D cross-correlation (what PyTorch and TensorFlow call convolution) plus bias.

    y[n, f, r, c] = b[f] + sum over (k, i, j) of W[f, k, i, j] * xp[n, k, r*sh + i, c*sw + j],
    where xp is x zero-padded by (ph, pw) on each side; oh = (H + 2ph - kh) // sh + 1, likewise ow.

    Computed as one matrix product W @ im2col(x) (see ``im2col.py``); backward gives
    dW = delta @ cols^T, db = sum of delta over (N, oh, ow), dx = col2im(W^T @ delta).

    Initialisation is He (Kaiming) uniform, W ~ U(-sqrt(6 / fan_in), +sqrt(6 / fan_in)) with
    fan_in = in_channels * kh * kw; the bias starts at zero.

    The output (and the input gradient) are (N, ...) views of channel-major memory: passing them to
    the next layer costs no transposing copy. ``np.ascontiguousarray`` them if C order matters.

    ``needs_input_delta`` (True by default), as in ``Linear``: set to False, backward sets the
    parameter deltas but skips dL/dx (a product and col2im) and returns None, for the first layer of
    a network in training; ``Sequential.backward(input_delta=False)`` sets it for one call.

    Shape:
        x: (N, in_channels, H, W)
        y: (N, out_channels, oh, ow)
        weight: (out_channels, in_channels, kh, kw), bias: (out_channels,)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 dtype=np.float32, rng=None):
        super().__init__()
        self.in_channels = check_positive_int("Conv2D", "in_channels", in_channels)
        self.out_channels = check_positive_int("Conv2D", "out_channels", out_channels)
        self.kernel_size = pair("Conv2D", "kernel_size", kernel_size)
        self.stride = pair("Conv2D", "stride", stride)
        self.padding = pair("Conv2D", "padding", padding, allow_zero=True)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"Conv2D: bias must be True or False, got {type(bias).__name__} {bias!r}")
        dtype = as_dtype("Conv2D", dtype)
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        bound = math.sqrt(6.0 / fan_in)
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        # Parameters, deltas and optimizer state are 64-byte aligned: see aligned.py.
        self.weight = aligned.copy(get_rng(rng).uniform(-bound, bound, shape).astype(dtype))
        self.bias = aligned.zeros(self.out_channels, dtype) if bias else None
        self.parameters = [self.weight] if self.bias is None else [self.weight, self.bias]
        # Preallocated gradient buffers: backward overwrites them in place every step.
        self.parameters_deltas = [aligned.zeros_like(p) for p in self.parameters]
        self.needs_input_delta = True
        self._plans: dict = {}  # (input shape, dtype) -> Im2Col; two sizes: full and last batch
        self._plan = None  # the plan of the last forward, which backward uses

    def config(self) -> dict:
        def compact(value):
            return value[0] if value[0] == value[1] else list(value)

        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": compact(self.kernel_size),
            "stride": compact(self.stride),
            "padding": compact(self.padding),
            "bias": self.bias is not None,
            "dtype": self.weight.dtype.name,
        }

    def output_shape(self, input_shape):
        n, _, h, w = self._check_input_shape(tuple(input_shape))
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (n, self.out_channels, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)

    def _check_input_shape(self, shape: tuple) -> tuple:
        if len(shape) != 4:
            raise ValueError(f"Conv2D: expected a 4-D input (N, C, H, W), got shape {shape}")
        if shape[1] != self.in_channels:
            raise ValueError(
                f"Conv2D: expected {self.in_channels} input channels (x of shape "
                f"(N, {self.in_channels}, H, W)), got x of shape {shape}"
            )
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        hp, wp = shape[2] + 2 * ph, shape[3] + 2 * pw
        if kh > hp or kw > wp:
            raise ValueError(
                f"Conv2D: expected an input at least as large as the kernel {kh}x{kw} after padding "
                f"{(ph, pw)}, got x of shape {shape}, {hp}x{wp} padded"
            )
        return shape

    def _plan_for(self, x_shape: tuple, dtype) -> Im2Col:
        key = (x_shape, np.dtype(dtype).str)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= 2:  # keep the newest two: a training set's two batch sizes
                self._plans.pop(next(iter(self._plans)))
            plan = Im2Col(x_shape, self.out_channels, self.kernel_size, self.stride, self.padding,
                          dtype, ones_row=self.bias is not None)
            self._plans[key] = plan
        return plan

    def _weight_matrix(self, dtype) -> np.ndarray:
        """W as (F, C*kh*kw), with the bias as one more column when the layer has one."""
        weight = self.weight.reshape(self.out_channels, -1)
        if self.bias is None:
            return weight.astype(dtype, copy=False)
        return np.concatenate([weight, self.bias[:, None]], axis=1).astype(dtype, copy=False)

    def forward(self, x, *args):
        self._check_parameters_in_place("weight", "bias")
        self._check_ndim(x, 4, "N, C, H, W")
        self._check_input_shape(x.shape)
        dtype = self.weight.dtype
        x = x.astype(dtype, copy=False)
        plan = self._plan_for(x.shape, dtype)
        plan.im2col(x)
        y_grid = plan.product(self._weight_matrix(dtype))
        self._plan = plan
        return plan.output(y_grid)

    def backward(self, delta):
        self._check_forward_called(self._plan)
        plan = self._plan
        delta = self._check_delta(delta, self.output_shape(plan.x_shape)).astype(plan.dtype, copy=False)
        delta_grid = plan.delta_grid(delta)
        gradient = plan.weight_gradient(delta_grid)  # (F, C*kh*kw [+1]): dW, then db if any
        deltas = self._delta_buffers()
        np.copyto(deltas[0], gradient[:, : plan.rows].reshape(self.weight.shape))
        if self.bias is not None:
            np.copyto(deltas[1], gradient[:, plan.rows])
        if not self.needs_input_delta:
            return None
        weight = self.weight.reshape(self.out_channels, -1).astype(plan.dtype, copy=False)
        return plan.col2im(plan.input_columns(weight, delta_grid))


class MaxPool2D(Layer):
    """Max pooling: y[n, c, r, q] = max over (i, j) of x[n, c, r*sh + i, q*sw + j].

    Windows kh x kw, stride (sh, sw) (default: the kernel size); oh = (H - kh) // sh + 1, likewise
    ow (floor, as in PyTorch: rows and columns left over at the edge are dropped). Windows may
    overlap (stride < kernel) or leave gaps (stride > kernel).

    Backward sends each output's delta to the one input that was its maximum; on ties, to the first
    in row-major order within the window. Forward records that winner as the index (i*kw + j) of the
    kernel offset, one byte per output, rather than a full-size mask.

    The output keeps the input's dtype and its memory layout.

    Shape:
        x: (N, C, H, W)
        y: (N, C, oh, ow)
    """

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = pair("MaxPool2D", "kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else pair("MaxPool2D", "stride", stride)
        self._input = None  # (shape, dtype, memory order) of the last input; not the input itself
        self._argmax = None
        self._buffers: dict = {}  # results and scratch, recycled (see recycled_empty)

    def config(self) -> dict:
        def compact(value):
            return value[0] if value[0] == value[1] else list(value)

        return {"kernel_size": compact(self.kernel_size), "stride": compact(self.stride)}

    def output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4:
            raise ValueError(f"MaxPool2D: expected a 4-D input (N, C, H, W), got shape {input_shape}")
        n, c, h, w = input_shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        if kh > h or kw > w:
            raise ValueError(
                f"MaxPool2D: expected an input at least as large as the kernel {kh}x{kw}, "
                f"got x of shape {input_shape}"
            )
        return (n, c, (h - kh) // sh + 1, (w - kw) // sw + 1)

    def _windows(self, x: np.ndarray, out_hw: tuple):
        """For each kernel offset (i, j), row-major: the (N, C, oh, ow) view of the inputs it sees."""
        kh, kw = self.kernel_size
        for i in range(kh):
            for j in range(kw):
                yield x[(..., *window_slices(i, j, self.stride, out_hw))]

    def forward(self, x, *args):
        self._check_ndim(x, 4, "N, C, H, W")
        if x.dtype.kind != "f":
            x = x.astype(np.float32)  # integer images and the like: compute in float32
        shape = self.output_shape(x.shape)
        offsets = self.kernel_size[0] * self.kernel_size[1]
        windows = self._windows(x, shape[2:])
        buffers, order = self._buffers, memory_order(x)
        y = empty_in_order(shape, order, x.dtype, buffers, "y")
        np.copyto(y, next(windows))
        index_dtype = np.uint8 if offsets <= 256 else np.int32
        argmax = empty_in_order(shape, order, index_dtype, buffers, "argmax")
        argmax.fill(0)
        greater = empty_in_order(shape, order, bool, buffers, "greater")
        step = empty_in_order(shape, order, index_dtype, buffers, "step")
        window = empty_in_order(shape, order, x.dtype, buffers, "window")
        for k, strided_window in enumerate(windows, start=1):
            # One strided copy per offset, then contiguous passes: NumPy's loops over every
            # second element are slow, and reading the view twice (compare, then max) costs
            # more than copying it once. At the MNIST CNN's sizes each pool's forward takes
            # 0.2-0.5 ms less, and a whole training step 1-4% less.
            np.copyto(window, strided_window)
            # Strictly greater: on ties the earlier offset keeps the win.
            np.greater(window, y, out=greater)
            np.maximum(y, window, out=y)
            # The winner only ever moves to a later offset, so max(argmax, k * greater) records it
            # with two cheap integer passes (np.putmask is several times slower on these views).
            np.multiply(greater, k, out=step, dtype=index_dtype)
            np.maximum(argmax, step, out=argmax)
        self._input, self._argmax = (x.shape, x.dtype, order), argmax
        return y

    def backward(self, delta):
        self._check_forward_called(self._argmax)
        (x_shape, dtype, order), argmax = self._input, self._argmax
        delta = self._check_delta(delta, argmax.shape).astype(dtype, copy=False)
        if memory_order(delta) != order:
            # The passes below walk argmax, delta and dx together: with delta laid out otherwise
            # (a C-order delta for a channel-major input, say) they take ~3x as long as one copy
            # into the input's layout and the passes after it.
            delta = copy_in_order(delta, order, self._buffers, "delta")
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        oh, ow = argmax.shape[2:]
        overlapping = sh < kh or sw < kw
        tiled = (sh, sw) == (kh, kw) and x_shape[2:] == (oh * kh, ow * kw)
        # Exact tiling: every input is written exactly once below, so skip zero-filling.
        dx = empty_in_order(x_shape, order, dtype, self._buffers, "dx")
        if not tiled:
            dx.fill(0)
        won = empty_in_order(argmax.shape, order, bool, self._buffers, "won")
        for k, window in enumerate(self._windows(dx, (oh, ow))):
            np.equal(argmax, k, out=won)
            if overlapping:  # an input can win several windows: add up what each sends it
                window += delta * won
            else:  # each input sits in at most one window: plain writes
                np.multiply(delta, won, out=window)
        return dx
