"""The per-class converters back from PyTorch (nnscratch/export/from_pytorch_layers.py) and the checks
on the way (read, require): a setting the nnscratch layer lacks, or a tensor it cannot hold as it is
(on the meta device, of another dtype, layout or shape, without values), is refused naming the module;
views and tensors that require grad are read as their values."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as nn


@pytest.mark.torch
@pytest.mark.parametrize("make, message", [
    (lambda t: t.Conv2d(2, 2, 3, groups=2), r"module\[0\] \(Conv2d\) has groups=2; nnscratch's Conv2D has no groups"),
    (lambda t: t.Conv2d(1, 1, 3, dilation=2), r"has dilation=\(2, 2\); nnscratch's Conv2D has no dilation"),
    (lambda t: t.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"), r"padding_mode='reflect'; .*pads with zeros"),
    (lambda t: t.Conv2d(1, 1, 3, padding="same"), r"padding='same'; nnscratch's Conv2D takes explicit padding"),
    (lambda t: t.MaxPool2d(2, padding=1), r"\(MaxPool2d\) has padding=\(1, 1\); nnscratch's MaxPool2D does not pad"),
    (lambda t: t.MaxPool2d(2, ceil_mode=True), r"ceil_mode=True; nnscratch's MaxPool2D rounds the output size down"),
    (lambda t: t.MaxPool2d(3, dilation=2), r"dilation=\(2, 2\); nnscratch's MaxPool2D has no dilation"),
    (lambda t: t.Softmax(dim=1), r"\(Softmax\) has dim=1; nnscratch's Softmax is over the last axis: use nn.Softmax\(dim=-1\)"),
    (lambda t: t.Flatten(start_dim=0), r"\(Flatten\) has start_dim=0; nnscratch's Flatten keeps the batch axis only"),
    (lambda t: t.AvgPool2d(2, count_include_pad=False), r"count_include_pad=False; nnscratch's AvgPool2D counts"),
    (lambda t: t.AvgPool2d(2, divisor_override=3), r"divisor_override=3; nnscratch's AvgPool2D divides by the kernel"),
    (lambda t: t.AvgPool2d(2, ceil_mode=True), r"\(AvgPool2d\) has ceil_mode=True"),
    (lambda t: t.AvgPool2d(3, padding=2), r"module\[0\] \(AvgPool2d\): AvgPool2D: padding must be at most half"),
    (lambda t: t.BatchNorm1d(3, track_running_stats=False), r"track_running_stats=False; nnscratch's BatchNorm1D keeps"),
    (lambda t: t.BatchNorm2d(3, momentum=None), r"\(BatchNorm2d\) has momentum=None \(a cumulative average\)"),
    (lambda t: t.LayerNorm(4, bias=False), r"\(LayerNorm\) has a weight but bias=False"),
    (lambda t: t.GELU(), r"\(GELU\) has approximate='none'; nnscratch's GELU is the tanh approximation"),
    (lambda t: t.Dropout(1.0), r"module\[0\] \(Dropout\): Dropout: p must be in \[0, 1\)"),
])  # fmt: skip
def test_from_torch_refuses_settings_the_nnscratch_layer_lacks(torch, make, message):
    with pytest.raises(ValueError, match=rf"from_torch: .*{message}"):
        nn.from_torch(torch.nn.Sequential(make(torch.nn)))


# -- tensors a layer cannot hold as they are ---------------------------------------------------------
def _replaced(module, name, tensor):
    """``module`` with its parameter ``name`` replaced by ``tensor``, as a user's code may leave it."""
    import torch

    setattr(module, name, torch.nn.Parameter(tensor, requires_grad=tensor.is_floating_point()))
    return module


META = (r"has its {} on the meta device, a shape without values \(a module made with device='meta'\); "
        r"give it values first, e\.g\. module\.to_empty\(device='cpu'\) and then load_state_dict")


@pytest.mark.torch
@pytest.mark.parametrize("make, message", [
    (lambda t: t.nn.Linear(3, 2, device="meta"), r"\(Linear\) " + META.format("weight")),
    (lambda t: t.nn.Conv2d(1, 2, 3, device="meta"), r"\(Conv2d\) " + META.format("weight")),
    (lambda t: t.nn.BatchNorm2d(3, device="meta"), r"\(BatchNorm2d\) " + META.format("running_mean")),
    (lambda t: t.nn.LayerNorm(3, device="meta"), r"\(LayerNorm\) " + META.format("weight")),
    (lambda t: t.nn.Linear(3, 2).half(), r"\(Linear\) has a weight of dtype float16; nnscratch takes "
                                         r"float32 or float64 \(module\.float\(\) or module\.double\(\)\)"),
    (lambda t: t.nn.Linear(3, 2).to(t.bfloat16), r"\(Linear\) has a weight of dtype bfloat16; nnscratch takes"),
    (lambda t: _replaced(t.nn.Linear(3, 2), "weight", t.ones(2, 3, dtype=t.int64)),
     r"\(Linear\) has a weight of dtype int64; nnscratch takes float32"),
    (lambda t: t.nn.BatchNorm1d(3).half(), r"\(BatchNorm1d\) has a running_mean of dtype float16"),
    (lambda t: _replaced(t.nn.Linear(3, 2), "bias", t.zeros(2, dtype=t.float64)),
     r"\(Linear\) has a bias of dtype float64 beside tensors of dtype float32; the nnscratch layer holds one dtype"),
    (lambda t: _replaced(t.nn.Linear(3, 2), "bias", t.zeros(1)),
     r"\(Linear\) has a bias of shape \(1,\); its nnscratch layer holds \(2,\)"),
    (lambda t: _replaced(t.nn.Conv2d(1, 2, 3), "weight", t.zeros(2, 1, 3, 2)),
     r"\(Conv2d\) has a weight of shape \(2, 1, 3, 2\); its nnscratch layer holds \(2, 1, 3, 3\)"),
    (lambda t: _replaced(t.nn.Linear(3, 2), "weight", t.eye(2, 3).to_sparse()),
     r"\(Linear\) has a weight of layout torch\.sparse_coo; nnscratch takes dense tensors"),
])  # fmt: skip
def test_from_torch_refuses_a_tensor_the_layer_cannot_hold_naming_the_module(torch, make, message):
    with pytest.raises(ValueError, match=rf"^from_torch: module\[0\] {message}"):
        nn.from_torch(torch.nn.Sequential(make(torch)))


@pytest.mark.torch
def test_views_non_contiguous_tensors_and_tensors_that_require_grad_are_read_as_their_values(torch):
    module = torch.nn.Linear(3, 2)
    base = torch.arange(6.0).reshape(3, 2).requires_grad_(True)
    with torch.no_grad():
        module.weight = torch.nn.Parameter(base.T)  # a transposed view: strides (1, 2), not contiguous
        module.bias = torch.nn.Parameter(torch.tensor([1.0, 5.0, 2.0, 7.0])[::2])  # a strided view
    assert not module.weight.is_contiguous() and module.weight.requires_grad
    model = nn.from_torch(module)
    np.testing.assert_array_equal(model.layers[0].weight, [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    np.testing.assert_array_equal(model.layers[0].bias, [1.0, 2.0])
    assert model.layers[0].weight.flags.c_contiguous
    x = np.array([[1.0, -1.0, 2.0]], dtype=np.float32)
    np.testing.assert_allclose(model.forward(x), module(torch.from_numpy(x)).detach().numpy(), rtol=1e-6)


@pytest.mark.torch
def test_a_tensor_without_values_of_another_kind_is_refused_with_what_pytorch_said(torch):
    fake_tensor = pytest.importorskip("torch._subclasses.fake_tensor")  # PyTorch's own shapes-only tensors
    with fake_tensor.FakeTensorMode():
        module = torch.nn.Linear(3, 2)
    assert not module.weight.is_meta  # a FakeTensor says it is on the CPU
    with pytest.raises(ValueError, match=r"^from_torch: module \(Linear\) has a weight that cannot be read as "
                                         r"values \(.+\)$"):
        nn.from_torch(module)
