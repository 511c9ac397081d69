#!/usr/bin/env python
"""``python scripts/train_mnist.py [options]``: the same as ``train-mnist`` (see ``--help``).

Works from a plain checkout too: the repository root is put on the path when nnscratch is not installed.
"""

import sys
from pathlib import Path

try:
    import nnscratch  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nnscratch.cli import train_mnist_main

if __name__ == "__main__":
    sys.exit(train_mnist_main())
