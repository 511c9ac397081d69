"""2-D convolution over (N, C, H, W) images, computed through a convolution plan."""

from __future__ import annotations

import numpy as np

from ..kernels.conv_plan import ConvPlan
from ..kernels.memory import writable_deltas
from ..specs import Conv2DBase


class Conv2D(Conv2DBase):
    """2-D cross-correlation (what PyTorch and TensorFlow call convolution) plus bias.

    y[n, f, r, c] = b[f] + sum over (k, i, j) of W[f, k, i, j] * xp[n, k, r*sh + i, c*sw + j],
    where xp is x zero-padded by (ph, pw) on each side; oh = (H + 2ph - kh) // sh + 1, likewise ow.

    The textbook version of this layer is ``nnscratch.reference.Conv2D``: read it first. This one
    shares its constructor, parameters, initialisation and checks (nnscratch/specs/) and computes
    the same numbers as one matrix product W @ im2col(x) through a ``ConvPlan`` (nnscratch/kernels/conv_plan.py);
    backward gives dW = delta @ columns^T, db = sum of delta over (N, oh, ow), dx = col2im(W^T @ delta).

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

    # The plans hold work arrays the size of the batches they served: release_memory() drops them,
    # and a copy (sanity_check's included) leaves them behind (see kernels/memory.py).
    _stores = ("_plans", "_plan")

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 dtype=np.float32, rng=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias, dtype, rng)
        self.needs_input_delta = True
        self._plans: dict = {}  # (input shape, dtype) -> ConvPlan; two sizes: full and last batch
        self._plan = None  # the plan of the last forward, which backward uses

    def _plan_for(self, x_shape: tuple, dtype) -> ConvPlan:
        key = (x_shape, np.dtype(dtype).str)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= 2:  # keep the newest two: a training set's two batch sizes
                self._plans.pop(next(iter(self._plans)))
            plan = ConvPlan(x_shape, self.out_channels, self.kernel_size, self.stride, self.padding,
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
        x = self._checked(x)
        plan = self._plan_for(x.shape, x.dtype)
        plan.im2col(x)
        y_grid = plan.product(self._weight_matrix(x.dtype))
        self._plan = plan
        return plan.output(y_grid)

    def backward(self, delta):
        self._check_forward_called(self._plan)
        plan = self._plan
        delta = self._check_delta(delta, self.output_shape(plan.x_shape)).astype(plan.dtype, copy=False)
        delta_grid = plan.delta_grid(delta)
        gradient = plan.weight_gradient(delta_grid)  # (F, C*kh*kw [+1]): dW, then db if any
        deltas = writable_deltas(self)
        np.copyto(deltas[0], gradient[:, : plan.patch_size].reshape(self.weight.shape))
        if self.bias is not None:
            np.copyto(deltas[1], gradient[:, plan.patch_size])
        if not self.needs_input_delta:
            return None
        weight = self.weight.reshape(self.out_channels, -1).astype(plan.dtype, copy=False)
        return plan.col2im(plan.columns_gradient(weight, delta_grid))
