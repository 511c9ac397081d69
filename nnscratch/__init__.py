"""nnscratch: a neural-network framework written from scratch on NumPy.

Everything a user reaches for is here: ``import nnscratch as nn``, then ``nn.Linear``,
``nn.Sequential``, ``nn.fit``, ``nn.sanity_check``, ``nn.save``... The subpackages ``nn.data``,
``nn.metrics``, ``nn.init``, ``nn.schedules`` and ``nn.reference`` (the textbook twins) come with it.
"""

from . import data, init, metrics, reference, schedules
from .check import GradientCheckError, GradientCheckReport, TensorCheck, sanity_check
from .clip import clip_grad_norm, clip_grad_norm_
from .containers import Residual, Sequential
from .data import IDXFormatError, MNISTCacheError, MNISTDownloadError
from .evaluation import evaluate, predict
from .export import export_onnx, from_torch, to_torch
from .io import load, load_checkpoint, save
from .layers import *  # noqa: F403 (the built-in layers, named in layers.__all__)
from .layers import __all__ as _layer_names
from .optim import SGD, Adagrad, Adam, AdamW, RMSprop
from .protocol import Layer
from .seeding import seed
from .threads import FixedThreads, ThreadChooser
from .train import NonFiniteLossError, fit
from .version import __version__

__all__ = [
    "Layer",
    *_layer_names,
    "Sequential",
    "Residual",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "clip_grad_norm_",
    "clip_grad_norm",
    "seed",
    "fit",
    "evaluate",
    "predict",
    "ThreadChooser",
    "FixedThreads",
    "sanity_check",
    "GradientCheckReport",
    "TensorCheck",
    "save",
    "load",
    "load_checkpoint",
    "export_onnx",
    "to_torch",
    "from_torch",
    # the exceptions the API raises on purpose (besides ValueError and TypeError for bad input)
    "NonFiniteLossError",
    "GradientCheckError",
    "IDXFormatError",
    "MNISTCacheError",
    "MNISTDownloadError",
    # subpackages
    "data",
    "init",
    "metrics",
    "reference",
    "schedules",
]
