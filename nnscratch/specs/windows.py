"""Conv2D and MaxPool2D: the windows they slide, the hyperparameters, parameters and shapes that the
fast layers and their textbook twins share."""

from __future__ import annotations

import numpy as np

from .. import init
from ..kernels import aligned
from ..kernels.memory import KeepsMemory
from ..protocol import Layer
from ..validation import as_dtype, check_bool, check_int, compact, pair


def check_window_fits(owner: str, shape: tuple, kernel: tuple, padding: tuple = (0, 0)) -> None:
    """A sliding-window layer's input must be at least as large as its kernel once padded."""
    (kh, kw), (ph, pw) = kernel, padding
    hp, wp = shape[2] + 2 * ph, shape[3] + 2 * pw
    if kh > hp or kw > wp:
        padded = f" after padding {(ph, pw)}" if ph or pw else ""
        size = f", {hp}x{wp} padded" if ph or pw else ""
        raise ValueError(
            f"{owner}: expected an input at least as large as the kernel {kh}x{kw}{padded}, "
            f"got x of shape {shape}{size}"
        )


def window_output_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """How many windows of ``kernel`` fit along an axis of ``size`` padded by ``padding`` each side,
    ``stride`` apart (floor, as PyTorch: what is left over at the edge is dropped)."""
    return (size + 2 * padding - kernel) // stride + 1


class Conv2DBase(KeepsMemory, Layer):
    """The hyperparameters, weight and bias of a 2-D convolution (see ``Conv2D`` for the formulas).

    The weight is He uniform, W ~ U(-sqrt(6 / fan_in), +sqrt(6 / fan_in)), fan_in = C * kh * kw, and
    the bias zero (``nnscratch.init.kaiming_uniform_`` and ``zeros_``), both 64-byte aligned.

    Shape:
        x: (N, in_channels, H, W); y: (N, out_channels, oh, ow)
        weight: (out_channels, in_channels, kh, kw), bias: (out_channels,)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 dtype=np.float32, rng=None):
        super().__init__()
        # parameter_specs checks every argument, and gives the weight's shape and dtype
        (shape, dtype), *bias_spec = self.parameter_specs(in_channels, out_channels, kernel_size, stride, padding,
                                                          bias, dtype)
        self.out_channels, self.in_channels, kh, kw = shape
        self.kernel_size, self.stride = (kh, kw), pair(self.name, "stride", stride)
        self.padding = pair(self.name, "padding", padding, allow_zero=True)
        self.weight = init.kaiming_uniform_(aligned.empty(shape, dtype), rng=rng)
        self.bias = init.zeros_(aligned.empty(self.out_channels, dtype)) if bias_spec else None
        self.parameters = [self.weight] if self.bias is None else [self.weight, self.bias]
        self.parameters_deltas = [aligned.zeros_like(p) for p in self.parameters]

    @classmethod
    def parameter_specs(cls, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                        dtype=np.float32) -> list:
        """[(shape, dtype)] of the parameters of ``cls(...)``, without building it (for ``load``)."""
        name = cls.__name__
        in_channels = check_int(name, "in_channels", in_channels, 1)
        out_channels = check_int(name, "out_channels", out_channels, 1)
        kernel_size = pair(name, "kernel_size", kernel_size)
        pair(name, "stride", stride)
        pair(name, "padding", padding, allow_zero=True)
        dtype = as_dtype(name, dtype)
        specs = [((out_channels, in_channels, *kernel_size), dtype)]
        return specs + [((out_channels,), dtype)] if check_bool(name, "bias", bias) else specs

    def config(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": compact(self.kernel_size), "stride": compact(self.stride),
                "padding": compact(self.padding), "bias": self.bias is not None,
                "dtype": self.weight.dtype.name}  # fmt: skip

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        self._check_ndim(shape, 4, "N, C, H, W")
        if shape[1] != self.in_channels:
            raise ValueError(f"{self.name}: expected {self.in_channels} input channels (x of shape "
                             f"(N, {self.in_channels}, H, W)), got x of shape {shape}")
        check_window_fits(self.name, shape, self.kernel_size, self.padding)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (shape[0], self.out_channels, window_output_size(shape[2], kh, sh, ph),
                window_output_size(shape[3], kw, sw, pw))

    def _checked(self, x) -> np.ndarray:
        """x checked against the layer (and the layer's parameters still in place), in their dtype."""
        self._check_parameters_in_place("weight", "bias")
        self._check_input(x, 4, "N, C, H, W")
        self.output_shape(x.shape)
        return x.astype(self.weight.dtype, copy=False)


class MaxPool2DBase(KeepsMemory, Layer):
    """The window and stride of max pooling (see ``MaxPool2D`` for the formulas).

    Shape:
        x: (N, C, H, W); y: (N, C, oh, ow)
    """

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = pair(self.name, "kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else pair(self.name, "stride", stride)

    def config(self) -> dict:
        return {"kernel_size": compact(self.kernel_size), "stride": compact(self.stride)}

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        self._check_ndim(shape, 4, "N, C, H, W")
        check_window_fits(self.name, shape, self.kernel_size)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return (shape[0], shape[1], window_output_size(shape[2], kh, sh), window_output_size(shape[3], kw, sw))

    def _checked(self, x) -> np.ndarray:
        """x checked against the layer; integer images and the like in float32."""
        self._check_input(x, 4, "N, C, H, W")
        self.output_shape(x.shape)
        return x if x.dtype.kind == "f" else x.astype(np.float32)
