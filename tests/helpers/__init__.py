"""Helpers shared by several test modules, imported as ``helpers.<module>``: tests/ is on sys.path
(pytest puts conftest.py's folder there), so this folder is a package beside the test folders.

- ``interop_cases``: a small model per built-in layer, for the ONNX and PyTorch converters' tests.
- ``interop_checks``: how those tests compare: ONNX Runtime's outputs, PyTorch's outputs and gradients.
"""
