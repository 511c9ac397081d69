"""The plan of one convolution: im2col and col2im, a convolution as one matrix product and its
gradient scattered back, with the work arrays they fill kept for the next call of the same shape.

The fast ``Conv2D`` (nnscratch/layers/conv.py) runs on it; ``nnscratch.reference.Conv2D`` computes the
same numbers in a few lines, without any of this.

Layout. Everything here is channel-major. The (padded) input is viewed as (C, N, Hp, Wp) and the
column matrix ``columns`` is (C*kh*kw [+1], G): one row per (channel, kernel offset), a patch of
``patch_size`` = C*kh*kw rows, and one column per output position (``positions`` = G) of the whole
batch. Then

    forward:            y_grid (F, G)         = W (F, C*kh*kw) @ columns
    weight gradient:    dW     (F, C*kh*kw)   = delta_grid (F, G) @ columns^T
    input gradient:     dcolumns (C*kh*kw, G) = W^T @ delta_grid   (columns_gradient),
                        dx = col2im(dcolumns)

and the (F, N, oh, ow) result becomes the layer's (N, F, oh, ow) output by a free transpose. With
``ones_row`` the last row of columns is all ones, so the bias rides along as the last column of W:
no separate bias pass in forward, and its gradient (the sum of delta) falls out of the same
weight-gradient product.

The G positions are laid out in one of two ways:

- flat (stride 1): the positions of each image are (oh, Wp): every padded column, including the
  few where the kernel would hang off the right edge. The columns row for kernel offset (i, j) is then,
  per image, the flattened padded image shifted by s = i*Wp + j: one copy per offset made of N
  contiguous runs of oh*Wp values, and col2im is one such add per offset. The extra positions cost
  Wp / ow more matrix-product work (1.07x for 28x28 with padding 1, 1.14x for 14x14) and replace
  the strided gathers and scatters of runs of ow values, which cost more than the products.
  Their delta is held at zero, so they add nothing to any gradient, and their outputs are never
  shown (the output is a view of the valid positions).
- strided (any stride): the positions are exactly (N, oh, ow), each offset a strided slice.
"""

from __future__ import annotations

import numpy as np

from . import aligned
from .recycle import recycled_empty

# The weight gradient dW = delta_grid @ columns^T has tiny outer sizes (F x C*kh*kw [+1]) and a huge
# inner size (G ~ 10^4-10^5). How OpenBLAS runs such a product depends on how many outputs it has
# to share between its threads. Measured on a 2-core Zen 4 with OpenBLAS 0.3.31, batch 128:
#
# - At least _THREADED_OUTPUTS outputs (16 filters x 8 channels x 3x3, say): one product, with
#   columns as the left operand, is fastest; 1.2x faster than blocks at the MNIST CNN's 8->16
#   convolution, and 2.7-4x at 16->16, 16->32 and 32->64.
# - Fewer: OpenBLAS threads the one product badly (4-6x slower than blocks at the MNIST CNN's
#   1->8). Split the inner axis into blocks of whole images, about _BLOCK_WORK multiply-adds each
#   (small enough for one thread each), as one stacked matmul, then sum.
#
# The threshold sits between measured cases: blocks won at 584 outputs (8->8, 3x3), 512 and 440, tied
# at 736, and lost from 880 up.
_THREADED_OUTPUTS = 768
_BLOCK_WORK = 2**19


def window_slices(i: int, j: int, stride: tuple, out_hw: tuple) -> tuple:
    """Rows and columns that kernel offset (i, j) visits across all oh x ow windows, as slices."""
    (sh, sw), (oh, ow) = stride, out_hw
    return slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw)


class ConvPlan:
    """Buffers and index arithmetic of one convolution for one input shape and dtype.

    Built once per (input shape, dtype) and reused: the padded input, the column matrix and the
    gridded delta are preallocated, and only their live parts are rewritten on each call.

    Shape:
        x: (N, C, H, W); columns: (C*kh*kw [+1], G); output: (N, F, oh, ow)
        G = N*oh*Wp when flat (stride 1), else N*oh*ow
    """

    def __init__(self, x_shape, out_channels, kernel, stride, padding, dtype, ones_row):
        n, c, h, w = x_shape
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        self.x_shape, self.dtype = tuple(x_shape), np.dtype(dtype)
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.padded_hw = (h + 2 * ph, w + 2 * pw)
        hp, wp = self.padded_hw
        self.out_hw = ((hp - kh) // sh + 1, (wp - kw) // sw + 1)
        self.flat = (sh, sw) == (1, 1)
        self.grid_hw = (self.out_hw[0], wp) if self.flat else self.out_hw
        self.positions = n * self.grid_hw[0] * self.grid_hw[1]
        self.patch_size = c * kh * kw
        # Zeros: in the flat layout a few non-output columns are never written (see im2col).
        self.columns = aligned.zeros((self.patch_size + bool(ones_row), self.positions), self.dtype)
        if ones_row:
            self.columns[self.patch_size] = 1
        # The padded input: borders zeroed here once, only the interior rewritten per forward.
        self._padded = aligned.zeros((c, n, hp, wp), self.dtype) if (ph or pw) else None
        # Flat layout: delta on the padded grid, zero at the positions that are not outputs.
        self._delta_grid = aligned.zeros((out_channels, n, *self.grid_hw), self.dtype) if self.flat else None
        self._columns_gradient = aligned.empty((self.patch_size, self.positions), self.dtype)
        self._results: dict = {}  # outputs and input gradients, recycled once their callers drop them
        per_image = self.grid_hw[0] * self.grid_hw[1]
        self._weight_gradient_blocks = self._block_count(n, out_channels * self.columns.shape[0], per_image)

    @staticmethod
    def _block_count(n: int, outputs: int, per_image: int) -> int:
        """Into how many blocks of whole images to split the G columns for the weight gradient:
        1 when it has at least _THREADED_OUTPUTS outputs, else about _BLOCK_WORK work each."""
        if outputs >= _THREADED_OUTPUTS:
            return 1
        images = max(1, _BLOCK_WORK // max(outputs * per_image, 1))
        while images > 1 and n % images:
            images -= 1
        return max(n // images, 1)

    # -- forward ----------------------------------------------------------------------------------
    def _channels_first(self, x: np.ndarray) -> np.ndarray:
        """x as (C, N, Hp, Wp): written once into the padded buffer, or a view when unpadded."""
        if self._padded is None:
            return x.transpose(1, 0, 2, 3)
        h, w = self.x_shape[2:]
        ph, pw = self.padding
        self._padded[:, :, ph : ph + h, pw : pw + w] = x.transpose(1, 0, 2, 3)
        return self._padded

    def im2col(self, x: np.ndarray) -> np.ndarray:
        """Fill and return the column matrix for x: one copy per kernel offset."""
        padded = self._channels_first(x)
        kh, kw = self.kernel
        c = padded.shape[0]
        if self.flat:
            n, (hp, wp), span = padded.shape[1], self.padded_hw, self.grid_hw[0] * self.grid_hw[1]
            source = padded.reshape(c, n, hp * wp)  # a view, whatever x's layout
            rows = self.columns[: self.patch_size].reshape(c, kh * kw, n, span)
            for i in range(kh):
                for j in range(kw):
                    shift = i * wp + j
                    # Bottom kernel row: the last j positions of each image would read into the
                    # next one. They are not outputs (x >= Wp - j >= ow) and keep their zeros.
                    length = min(span, hp * wp - shift)
                    rows[:, i * kw + j, :, :length] = source[:, :, shift : shift + length]
        else:
            rows = self.columns[: self.patch_size].reshape(c, kh, kw, -1, *self.out_hw)
            for i in range(kh):
                for j in range(kw):
                    rows[:, i, j] = padded[(..., *window_slices(i, j, self.stride, self.out_hw))]
        return self.columns

    def product(self, weight_2d: np.ndarray) -> np.ndarray:
        """weight_2d @ columns, (F, G), the forward product, into an array of its own."""
        y_grid = recycled_empty(self._results, "y", (weight_2d.shape[0], self.positions), self.dtype)
        return np.matmul(weight_2d, self.columns, out=y_grid)

    def output(self, y_grid: np.ndarray) -> np.ndarray:
        """The (N, F, oh, ow) output: a view of the product's valid positions, no copy."""
        y = y_grid.reshape(y_grid.shape[0], self.x_shape[0], *self.grid_hw)
        if self.flat:
            y = y[:, :, :, : self.out_hw[1]]
        return y.transpose(1, 0, 2, 3)

    # -- backward ---------------------------------------------------------------------------------
    def delta_grid(self, delta: np.ndarray) -> np.ndarray:
        """delta (N, F, oh, ow) laid out like the product's output, (F, G)."""
        channels_first = delta.transpose(1, 0, 2, 3)
        if not self.flat:
            return np.ascontiguousarray(channels_first).reshape(channels_first.shape[0], -1)
        self._delta_grid[:, :, :, : self.out_hw[1]] = channels_first
        return self._delta_grid.reshape(self._delta_grid.shape[0], -1)

    def weight_gradient(self, delta_grid: np.ndarray) -> np.ndarray:
        """delta_grid @ columns^T, (F, patch_size [+1]): one product, or a stacked one over column blocks."""
        f, k = delta_grid.shape[0], self.columns.shape[0]
        blocks = self._weight_gradient_blocks
        if blocks == 1:
            return (self.columns @ delta_grid.T).T  # this way round OpenBLAS is 1.3-1.8x faster
        width = self.positions // blocks
        # (blocks, F, width) @ (blocks, width, k): views, no copies; BLAS reads them strided.
        left = delta_grid.reshape(f, blocks, width).transpose(1, 0, 2)
        right = self.columns.reshape(k, blocks, width).transpose(1, 2, 0)
        return np.matmul(left, right).sum(axis=0)

    def columns_gradient(self, weight_2d: np.ndarray, delta_grid: np.ndarray) -> np.ndarray:
        """The gradient of the columns, W^T @ delta_grid, (patch_size, G), into a reused buffer (col2im
        reads it, nothing keeps it)."""
        return np.matmul(weight_2d.T, delta_grid, out=self._columns_gradient)

    def col2im(self, columns_gradient: np.ndarray) -> np.ndarray:
        """Scatter-add the columns' gradient back onto the input: one add per kernel offset.

        Returns an (N, C, H, W) view of channel-major memory of its own (recycled only once the
        caller has dropped it).
        """
        n, c, h, w = self.x_shape
        (kh, kw), (ph, pw) = self.kernel, self.padding
        hp, wp = self.padded_hw
        if self.flat:
            span = self.grid_hw[0] * wp
            rows = columns_gradient.reshape(c, kh * kw, n, span)
            # Offset (0, 0) initialises the first span positions of each image: no full zero pass.
            grad = recycled_empty(self._results, "dx", (c, n, hp * wp), columns_gradient.dtype)
            grad[:, :, :span] = rows[:, 0]
            grad[:, :, span:] = 0
            for i in range(kh):
                for j in range(kw):
                    shift = i * wp + j
                    length = min(span, hp * wp - shift)
                    if shift:
                        grad[:, :, shift : shift + length] += rows[:, i * kw + j, :, :length]
            grad = grad.reshape(c, n, hp, wp)
        else:
            rows = columns_gradient.reshape(c, kh, kw, n, *self.out_hw)
            grad = recycled_empty(self._results, "dx", (c, n, hp, wp), columns_gradient.dtype)
            grad.fill(0)
            for i in range(kh):
                for j in range(kw):
                    grad[(..., *window_slices(i, j, self.stride, self.out_hw))] += rows[:, i, j]
        return grad[:, :, ph : ph + h, pw : pw + w].transpose(1, 0, 2, 3)
