"""``torch``: PyTorch, for the parity tests (each also carries the torch marker); they skip without it."""

import pytest


@pytest.fixture(scope="session")
def torch():
    return pytest.importorskip("torch")
