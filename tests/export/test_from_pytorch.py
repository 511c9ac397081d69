"""from_torch: modules built and initialised by PyTorch give the same outputs and gradients in
nnscratch, round trips keep every weight, and what a layer cannot hold (a setting it lacks, a
tensor on the meta device, of another dtype, layout or shape) is refused, naming the module."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.export import torch_modules

from helpers.interop_cases import CASES
from helpers.interop_checks import assert_same_function, leaves


def torch_models(torch, dtype):
    """PyTorch modules built and initialised by PyTorch itself, one per convertible kind."""
    torch.manual_seed(0)
    tnn = torch.nn
    twins = torch_modules(torch)
    models = {
        "Linear": (tnn.Sequential(tnn.Linear(5, 4), tnn.Sigmoid(), tnn.Linear(4, 3, bias=False)), (5,)),
        "Conv2d": (tnn.Sequential(tnn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0)), tnn.Tanh(),
                                  tnn.Conv2d(3, 2, 3, bias=False)), (2, 9, 6)),
        "MaxPool2d": (tnn.Sequential(tnn.MaxPool2d(3, stride=2), tnn.ReLU(), tnn.MaxPool2d((2, 1))), (2, 9, 7)),
        "activations": (tnn.Sequential(tnn.Linear(5, 6), tnn.LeakyReLU(0.1), tnn.Linear(6, 6), tnn.ELU(0.5),
                                       tnn.GELU(approximate="tanh"), tnn.SiLU(), tnn.Softplus(beta=1.5, threshold=2.0),
                                       tnn.Dropout(0.2), tnn.Linear(6, 3)).eval(), (5,)),
        "pooling": (tnn.Sequential(tnn.AvgPool2d(3, stride=2, padding=1), tnn.Conv2d(2, 3, 3),
                                   tnn.AvgPool2d((2, 1)), twins.GlobalAvgPool2D(), tnn.Linear(3, 2)), (2, 11, 9)),
        "normalization": (tnn.Sequential(tnn.Conv2d(2, 3, 3), tnn.BatchNorm2d(3, momentum=0.2), tnn.ReLU(), tnn.Flatten(),
                                         tnn.Linear(3 * 3 * 2, 6), tnn.BatchNorm1d(6, eps=1e-3), tnn.LayerNorm(6),
                                         tnn.Linear(6, 4), tnn.LayerNorm((4,), elementwise_affine=False)), (2, 5, 4)),
        "residual": (tnn.Sequential(tnn.Conv2d(2, 3, 3, padding=1), twins.Residual(
            tnn.Conv2d(3, 3, 3, padding=1), tnn.BatchNorm2d(3), tnn.ReLU()), tnn.Flatten(), tnn.Linear(3 * 4 * 5, 2)),
            (2, 4, 5)),
        "lenet": (tnn.Sequential(tnn.Conv2d(1, 4, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                                 tnn.Sequential(tnn.Linear(4 * 7 * 7, 8), tnn.ReLU()), tnn.Linear(8, 5),
                                 tnn.Softmax(dim=-1)), (1, 14, 14)),
    }  # fmt: skip
    generator = torch.Generator().manual_seed(1)
    for module, _ in models.values():  # running statistics and norm weights no fresh module has
        for name, tensor in [*module.named_buffers(), *module.named_parameters()]:
            if tensor.is_floating_point() and ("running" in name or "weight" in name and tensor.ndim == 1):
                with torch.no_grad():
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return {name: (module.to(dtype), shape) for name, (module, shape) in models.items()}


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["Linear", "Conv2d", "MaxPool2d", "activations", "pooling", "normalization",
                                  "residual", "lenet"])
def test_from_torch_gives_the_same_outputs_and_gradients(torch, name, dtype):
    module, input_shape = torch_models(torch, getattr(torch, dtype))[name]
    model = nn.from_torch(module)
    assert isinstance(model, nn.Sequential)
    assert all(p.dtype == np.dtype(dtype) for p in model.parameters)
    assert_same_function(torch, model, module, input_shape, np.dtype(dtype).type)


@pytest.mark.torch
@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_keeps_every_weight_exactly(torch, case):
    model = CASES[case][0]()
    back = nn.from_torch(nn.to_torch(model))
    # (a reference layer comes back as the fast layer of the same name: the same function)
    assert [layer.name for layer in leaves(back)] == [layer.name for layer in leaves(model)]
    assert [layer.config() for layer in leaves(back)] == [layer.config() for layer in leaves(model)]
    for a, b in zip(back.parameters, model.parameters):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


@pytest.mark.torch
def test_from_torch_copies_the_weights(torch):
    module = torch.nn.Sequential(torch.nn.Linear(3, 2))
    model = nn.from_torch(module)
    model.layers[0].weight[...] = 0
    assert module[0].weight.abs().sum().item() > 0


@pytest.mark.torch
def test_from_torch_takes_a_single_module(torch):
    module = torch.nn.Conv2d(1, 2, 3)
    model = nn.from_torch(module)
    assert isinstance(model, nn.Sequential) and isinstance(model.layers[0], nn.Conv2D)
    np.testing.assert_array_equal(model.layers[0].weight, module.weight.detach().numpy())


@pytest.mark.torch
def test_from_torch_names_a_module_it_cannot_convert(torch):
    tnn = torch.nn
    module = tnn.Sequential(tnn.Linear(3, 4), tnn.Sequential(tnn.ReLU(), tnn.Conv1d(1, 1, 1)))
    with pytest.raises(TypeError, match=r"^from_torch: module\[1\]\[1\] is a torch.nn.modules.conv.Conv1d, which has "
                                        r"no nnscratch layer here; from_torch converts nn.AvgPool2d, .*nn.Conv2d, .*"
                                        r"nnscratch.export.torch_modules.GlobalAvgPool2D, .*nnscratch.export.torch_modules.Residual "
                                        r"and nn.Sequential$"):
        nn.from_torch(module)
    with pytest.raises(TypeError, match=r"from_torch: expected a torch.nn.Module, got list"):
        nn.from_torch([tnn.Linear(3, 4)])


@pytest.mark.torch
def test_a_lazy_module_is_refused_until_its_parameters_are_made(torch):
    lazy = torch.nn.LazyLinear(2)
    with pytest.raises(TypeError, match=r"^from_torch: module\[1\] is a torch\.nn\.modules\.linear\.LazyLinear whose "
                                        r"parameters are not made yet \(a lazy module\); run one forward pass first"):
        nn.from_torch(torch.nn.Sequential(torch.nn.ReLU(), lazy))
    lazy(torch.ones(1, 3))  # which makes it a Linear(3, 2)
    model = nn.from_torch(torch.nn.Sequential(lazy))
    np.testing.assert_array_equal(model.layers[0].weight, lazy.weight.detach().numpy().T)
