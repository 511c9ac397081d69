"""Tests of nnscratch/layers/: the built-in layers, one module per family (the older ones still in tests/)."""
