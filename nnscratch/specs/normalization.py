"""The batch norms: the hyperparameters, parameters and running statistics that the fast layers
and their textbook twins share."""

from __future__ import annotations

import numpy as np

from ..kernels import aligned
from ..kernels.memory import KeepsMemory
from ..protocol import Layer
from ..validation import as_dtype, check_bool, check_int, check_number


class BatchNormBase(KeepsMemory, Layer):
    """The hyperparameters, parameters and running statistics of a batch norm (the formulas are in
    ``reference.BatchNorm1D``'s docstring).

    ``parameters == [weight, bias]`` (starting at 1 and 0) when ``affine``; ``buffers ==
    [running_mean, running_var]`` (starting at 0 and 1). A subclass sets ``ranks`` (the numbers of
    axes it takes), ``layout`` (how its message shows them; ``{c}`` is the feature count) and
    ``values`` (what the statistics run over, for the message of a batch of one).
    """

    ranks: tuple = ()
    layout: str = ""
    values: str = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=np.float32):
        super().__init__()
        c, self.eps, self.momentum, self.affine, dtype = self._hyperparameters(num_features, eps, momentum,
                                                                                affine, dtype)
        self.num_features = c
        if self.affine:
            self.weight, self.bias = aligned.zeros(c, dtype), aligned.zeros(c, dtype)
            self.weight += 1
            self.parameters = [self.weight, self.bias]
            self.parameters_deltas = [aligned.zeros_like(p) for p in self.parameters]
        else:
            self.weight = self.bias = None
        self.running_mean, self.running_var = aligned.zeros(c, dtype), aligned.zeros(c, dtype)
        self.running_var += 1
        self.buffers = [self.running_mean, self.running_var]

    @classmethod
    def _hyperparameters(cls, num_features, eps, momentum, affine, dtype) -> tuple:
        """(num_features, eps, momentum, affine, dtype), each checked."""
        name = cls.__name__
        return (check_int(name, "num_features", num_features, 1),
                check_number(name, "eps", eps, 0.0, low_inclusive=False),
                check_number(name, "momentum", momentum, 0.0, 1.0, high_inclusive=True),
                check_bool(name, "affine", affine), as_dtype(name, dtype))

    @classmethod
    def parameter_specs(cls, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=np.float32) -> list:
        c, _, _, affine, dtype = cls._hyperparameters(num_features, eps, momentum, affine, dtype)
        return [((c,), dtype), ((c,), dtype)] if affine else []

    @classmethod
    def buffer_specs(cls, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=np.float32) -> list:
        c, _, _, _, dtype = cls._hyperparameters(num_features, eps, momentum, affine, dtype)
        return [((c,), dtype), ((c,), dtype)]  # running_mean, running_var

    def config(self) -> dict:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "affine": self.affine, "dtype": self.running_mean.dtype.name}

    def output_shape(self, input_shape):
        self._check_shape(tuple(input_shape))
        return tuple(input_shape)

    def _check_shape(self, shape: tuple) -> None:
        c = self.num_features
        if len(shape) not in self.ranks or shape[1] != c:
            raise ValueError(f"{self.name}: expected input of shape {self.layout.format(c=c)}, got shape {shape}")

    def _compute_dtype(self, x) -> np.dtype:
        """Check the layer's arrays and ``x`` before a forward; return the dtype to compute in."""
        self._check_parameters_in_place("weight", "bias")
        for index, name in enumerate(("running_mean", "running_var")):
            if index >= len(self.buffers) or getattr(self, name) is not self.buffers[index]:
                # save and load go through buffers: a rebound array would be neither saved nor loaded
                raise ValueError(
                    f"{self.name}: {name} is not the array in buffers (was layer.{name} assigned a new "
                    f"array?); save and load use buffers, so assign into it instead: layer.{name}[...] = new_values"
                )
        self._check_input(x)
        self._check_shape(x.shape)
        if self.training and x.size // self.num_features < 2:
            raise ValueError(
                f"{self.name}: in training mode each feature needs at least 2 values ({self.values}) to "
                f"take a batch variance, got 1 per feature (input of shape {x.shape}): the variance of a "
                "single value is undefined; use a larger batch, or eval mode"
            )
        # The running statistics carry the dtype when there are no parameters (affine=False).
        return (self.weight if self.affine else self.running_mean).dtype


# (ranks, layout, values) of the two batch norms, which a BatchNormBase subclass takes as its own:
# features (N, C) or (N, C, L), statistics over N (and L), as BatchNorm1d; image channels (N, C, H, W),
# statistics over N, H and W, as BatchNorm2d.
BATCHNORM1D = (2, 3), "(N, {c}) or (N, {c}, L) ({c} features)", "N, or N*L"
BATCHNORM2D = (4,), "(N, {c}, H, W) ({c} channels)", "N*H*W"
