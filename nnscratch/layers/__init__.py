"""The built-in layers, one module per family."""

from .activations import ELU, GELU, LeakyReLU, ReLU, SiLU, Sigmoid, Softplus, Tanh
from .attention import MultiHeadAttention
from .conv import Conv2D
from .dropout import Dropout
from .embedding import Embedding
from .linear import Linear
from .losses import (
    BinaryCrossEntropy,
    CrossEntropy,
    Hinge,
    Mean,
    MeanSquaredError,
    SigmoidBinaryCrossEntropy,
    SoftmaxCrossEntropy,
)
from .normalization import BatchNorm1D, BatchNorm2D, LayerNorm
from .pool import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from .positional import PositionalEmbedding, SinusoidalPositionalEncoding
from .recurrent import GRU, LSTM, RNN
from .shape import Flatten
from .softmax import Softmax
from .transformer import TransformerBlock

__all__ = [
    "Linear",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "Softmax",
    "LeakyReLU",
    "ELU",
    "GELU",
    "SiLU",
    "Softplus",
    "CrossEntropy",
    "SoftmaxCrossEntropy",
    "MeanSquaredError",
    "BinaryCrossEntropy",
    "SigmoidBinaryCrossEntropy",
    "Hinge",
    "Mean",
    "Flatten",
    "Conv2D",
    "MaxPool2D",
    "Dropout",
    "AvgPool2D",
    "GlobalAvgPool2D",
    "BatchNorm1D",
    "BatchNorm2D",
    "LayerNorm",
    "Embedding",
    "PositionalEmbedding",
    "SinusoidalPositionalEncoding",
    "RNN",
    "LSTM",
    "GRU",
    "MultiHeadAttention",
    "TransformerBlock",
]
