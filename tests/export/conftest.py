"""The optional packages the converters' tests run: each test that needs one takes its fixture
(and carries the onnx or torch marker), and skips without it."""

import pytest


@pytest.fixture(scope="session")
def ort():
    pytest.importorskip("onnx")
    return pytest.importorskip("onnxruntime")


@pytest.fixture(scope="session")
def torch():
    return pytest.importorskip("torch")
