"""nnscratch: a neural-network framework written from scratch on NumPy."""

from .seeding import seed

__all__ = ["seed"]
__version__ = "0.1.0"
