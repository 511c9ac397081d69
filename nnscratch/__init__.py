"""nnscratch: a neural-network framework written from scratch on NumPy."""

from .layers import (
    AvgPool2D,
    BatchNorm1D,
    BatchNorm2D,
    BinaryCrossEntropy,
    Conv2D,
    CrossEntropy,
    Dropout,
    ELU,
    GELU,
    GlobalAvgPool2D,
    Hinge,
    LeakyReLU,
    Flatten,
    Layer,
    LayerNorm,
    Linear,
    MaxPool2D,
    Mean,
    MeanSquaredError,
    ReLU,
    SiLU,
    SigmoidBinaryCrossEntropy,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropy,
    Softplus,
    Tanh,
)
from . import init, reference, schedules
from .clip import clip_grad_norm
from .check import GradientCheckError, GradientCheckReport, TensorCheck, sanity_check
from .io import load, load_checkpoint, save
from .onnx import export_onnx
from .optim import SGD, Adagrad, Adam, AdamW, RMSprop
from .seeding import seed
from .residual import Residual
from .sequential import Sequential
from .torch_interop import from_torch, to_torch
from .threads import FixedThreads, ThreadChooser
from .train import evaluate, fit, predict

__all__ = [
    "Layer",
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
    "AvgPool2D",
    "GlobalAvgPool2D",
    "reference",
    "init",
    "schedules",
    "Dropout",
    "BatchNorm1D",
    "BatchNorm2D",
    "LayerNorm",
    "Sequential",
    "Residual",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "clip_grad_norm",
    "seed",
    "sanity_check",
    "GradientCheckError",
    "GradientCheckReport",
    "TensorCheck",
    "fit",
    "evaluate",
    "predict",
    "ThreadChooser",
    "FixedThreads",
    "save",
    "load",
    "load_checkpoint",
    "export_onnx",
    "to_torch",
    "from_torch",
]
__version__ = "0.1.0"
