"""The built-in layers, one module per family."""

from .base import Layer

__all__ = ["Layer"]
