"""Tests of nnscratch/export/: the converters to ONNX and PyTorch and their shared part."""
