"""Optimizers: SGD (with momentum, Nesterov and weight decay), Adam, AdamW, RMSprop and Adagrad.

An optimizer reads ``parameters`` and ``parameters_deltas`` from its source (a layer, a Sequential
or a list of layers) at every ``step()`` and updates the parameter arrays in place, so every
object holding them sees the new values. Its state (velocities, moments) has the parameters'
dtype: a float32 model stays float32. A step allocates nothing: every intermediate goes into
scratch arrays kept between steps.

Every optimizer takes ``weight_decay`` and ``decay_matrices_only``: with it True, the decay applies
only to the parameters of two or more axes (the weights of Linear, Conv2D, Embedding, attention), not
to biases or normalization gains, as nanoGPT does with two PyTorch parameter groups.

Each follows ``torch.optim``'s update rule with the same hyperparameters (tests/optim/
checks them against PyTorch and against textbook twins). Parameters must be float32 or float64:
in float16, Adam's eps (1e-8) rounds to zero and a step divides by zero.
"""

from .adam import Adam, AdamW
from .base import Optimizer, source_layers
from .rmsprop import Adagrad, RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "source_layers"]
