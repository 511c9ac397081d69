"""Data sets: the IDX format and MNIST."""
