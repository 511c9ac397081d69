"""Memory a layer keeps between calls and gives back (nnscratch/kernels/memory.py): release_memory
drops every cache and store of every built-in layer."""

import numpy as np
import pytest

import nnscratch as nn


def test_every_built_in_layer_forgets_its_last_forward_on_release_memory():
    # A layer that kept part of its cache would keep memory the size of the last batch after predict;
    # one that kept none of it but answered backward would answer with stale or identity gradients.
    rng = np.random.default_rng(0)
    image = rng.standard_normal((2, 2, 6, 6))
    cases = [
        (nn.Linear(4, 3), rng.standard_normal((2, 4)), ()), (nn.Dropout(0.5, rng=0), image, ()),
        (nn.BatchNorm2D(2), image, ()), (nn.LayerNorm(4), rng.standard_normal((2, 4)), ()),
        (nn.MaxPool2D(2), image, ()), (nn.reference.MaxPool2D(2), image, ()),
        (nn.Conv2D(2, 3, 3), image, ()), (nn.reference.Conv2D(2, 3, 3), image, ()),
        (nn.MeanSquaredError(), rng.standard_normal((2, 3)), (rng.standard_normal((2, 3)),)),
        (nn.BinaryCrossEntropy(), rng.uniform(0.1, 0.9, (2, 3)), (rng.uniform(0, 1, (2, 3)),)),
        (nn.SigmoidBinaryCrossEntropy(), rng.standard_normal((2, 3)), (rng.uniform(0, 1, (2, 3)),)),
        (nn.Hinge(), rng.standard_normal((2, 3)), (np.array([0, 2]),)),
        (nn.CrossEntropy(), np.full((2, 3), 1 / 3), (np.array([0, 2]),)),
        (nn.SoftmaxCrossEntropy(), rng.standard_normal((2, 3)), (np.array([0, 2]),)),
    ] + [(cls(), rng.standard_normal((2, 4)), ()) for cls in
         (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.Softmax, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Softplus)]
    import copy

    for layer, x, args in cases:
        y = layer.forward(x, *args)
        # A copy (sanity_check's too) leaves the stores of recycled buffers and plans behind.
        assert [name for name, value in vars(copy.deepcopy(layer)).items() if isinstance(value, dict) and value] == []
        layer.release_memory()
        with pytest.raises(RuntimeError, match="backward called before forward"):
            layer.backward(np.ones(np.shape(y)))
        large = [name for name, value in vars(layer).items()
                 if isinstance(value, np.ndarray) and value.size >= np.size(x)
                 and not any(value is p for p in [*layer.parameters, *layer.parameters_deltas, *layer.buffers])]
        assert large == [], f"{layer.name} still holds {large}"
        stores = [name for name, value in vars(layer).items() if isinstance(value, dict) and value]
        assert stores == [], f"{layer.name} still holds {stores}"
