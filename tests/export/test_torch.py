"""to_torch: the PyTorch twin's outputs, input gradients and parameter gradients against nnscratch's,
for every layer class in TO_TORCH (every case of interop_cases) and every train-mnist preset; the
twin modules; clear errors; and the core never importing the optional packages."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.export.torch import TO_TORCH
from nnscratch.presets import PRESETS

from helpers.interop_cases import CASES, RANDOM_IN_TRAINING, Scale, perturb
from helpers.interop_checks import assert_same_function, in_torch_layout


# Every case in both modes, but a layer that is random in training (Dropout) in eval mode only.
CASES_AND_MODES = [(case, mode) for case in sorted(CASES) for mode in ("train", "eval")
                   if not (mode == "train" and case in RANDOM_IN_TRAINING)]


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case, mode", CASES_AND_MODES)
def test_to_torch_gives_the_same_outputs_and_gradients(torch, case, mode, dtype):
    build, input_shape = CASES[case]
    model = build(dtype).train(mode == "train")
    module = nn.to_torch(model)
    assert isinstance(module, torch.nn.Sequential)
    assert all(m.training == (mode == "train") for m in module.modules())
    assert_same_function(torch, model, module, input_shape, dtype)
    np.testing.assert_array_equal(  # the very same weights, exactly
        np.concatenate([np.ravel(p) for p in in_torch_layout(model, model.parameters)] or [np.zeros(0)]),
        np.concatenate([p.detach().numpy().ravel() for p in module.parameters()] or [np.zeros(0)]),
    )


@pytest.mark.torch
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_trains_the_same_in_pytorch(torch, name):
    """The whole training network: loss and every gradient of one step, through PyTorch's own loss."""
    preset = PRESETS[name]
    net = perturb(preset.build(rng=0), seed=5)
    for p in net.parameters:
        p *= 0.1
    net = nn.Sequential(*net.layers)
    for layer in net:  # the two frameworks draw different dropout masks; BatchNorm stays in training
        if isinstance(layer, nn.Dropout):
            layer.eval()
    rng = np.random.default_rng(6)
    x = rng.random((9, *preset.input_shape)).astype(np.float32)
    labels = rng.integers(0, 10, 9)
    targets = np.eye(10, dtype=np.float32)[labels] if preset.one_hot else labels
    loss = net.forward(x, targets)
    net.backward()
    module = nn.to_torch(net)  # the loss layers are dropped
    assert len(list(module.modules())) - 1 == len(net.layers) - 2
    tx = torch.from_numpy(x).requires_grad_(True)
    scores = module(tx)
    if preset.one_hot:  # Softmax -> CrossEntropy -> Mean
        torch_loss = -(torch.from_numpy(targets) * torch.log(scores)).sum(dim=1).mean()
    else:  # SoftmaxCrossEntropy -> Mean
        torch_loss = torch.nn.functional.cross_entropy(scores, torch.from_numpy(labels))
    torch_loss.backward()
    assert float(loss) == pytest.approx(torch_loss.item(), rel=1e-5)
    for got, want in zip([p.grad.numpy() for p in module.parameters()], in_torch_layout(net[:-2], net.parameters_deltas)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.torch
def test_the_twin_shares_no_memory(torch):
    model = CASES["Linear"][0]()
    before = model.layers[0].weight.copy()
    module = nn.to_torch(model)
    with torch.no_grad():
        module[0].weight.add_(1.0)
    np.testing.assert_array_equal(model.layers[0].weight, before)


@pytest.mark.torch
def test_the_mode_goes_across_layer_by_layer_both_ways(torch):
    model = CASES["nested-Sequential"][0]()
    model.eval()
    model.layers[2].layers[2].train()  # a user's mix: one inner block in training mode
    module = nn.to_torch(model)
    assert [m.training for m in module.modules()] == [
        False, False, False, False, False, False, True, True, True, False, False]
    back = nn.from_torch(module)
    from nnscratch.protocol import walk

    assert [layer.training for layer in walk(back)] == [layer.training for layer in walk(model)]
    assert nn.from_torch(module.train()).training and all(layer.training for layer in walk(nn.from_torch(module)))


@pytest.mark.torch
def test_the_loss_at_the_end_of_a_nested_block_is_dropped_and_the_nesting_kept(torch):
    inner = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Tanh(), nn.SoftmaxCrossEntropy(), nn.Mean())
    module = nn.to_torch(nn.Sequential(nn.ReLU(), inner))
    assert [type(m).__name__ for m in module.modules()] == ["Sequential", "ReLU", "Sequential", "Linear", "Tanh"]
    assert len(inner.layers) == 4  # the model is left as it was


@pytest.mark.torch
def test_dropout_is_pytorchs_dropout_with_the_same_p(torch):
    model = CASES["Dropout"][0]()
    module = nn.to_torch(model)
    assert isinstance(module[1], torch.nn.Dropout) and module[1].p == 0.3 and module[1].training
    x = torch.ones(2000, 6, dtype=torch.float32)
    zeroed = float((module[1](x) == 0).float().mean())
    assert 0.25 < zeroed < 0.35 and torch.allclose(module[1](x).max(), torch.tensor(1 / 0.7))


@pytest.mark.torch
def test_a_single_layer_comes_back_in_a_sequential(torch):
    layer = nn.Linear(3, 2, rng=0)
    module = nn.to_torch(layer)
    assert isinstance(module, torch.nn.Sequential) and isinstance(module[0], torch.nn.Linear)
    np.testing.assert_array_equal(module[0].weight.detach().numpy(), layer.weight.T)


@pytest.mark.torch
def test_to_torch_names_a_layer_it_cannot_convert(torch):
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Sequential(nn.ReLU(), Scale()))
    with pytest.raises(TypeError, match=r"^to_torch: model\[1\]\[1\] is a Scale, which has no PyTorch twin here; "
                                        r"to_torch converts AvgPool2D, .*Conv2D, .*Linear, .*Residual, Sequential, "
                                        r".*Tanh, .*reference.MultiHeadAttention and reference.RNN \(and drops the losses"):
        nn.to_torch(model)


@pytest.mark.torch
@pytest.mark.parametrize("model, where, loss", [
    (lambda: nn.Sequential(nn.Linear(3, 1, rng=0), nn.Mean(), nn.Sigmoid()), r"model\[1\]", "Mean"),
    (lambda: nn.Sequential(nn.Linear(3, 4, rng=0), nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean()),
                           nn.Linear(4, 2, rng=0)), r"model\[1\]\[0\]", "SoftmaxCrossEntropy"),
    (lambda: nn.Sequential(nn.Linear(3, 4, rng=0), nn.Residual(nn.Linear(4, 4, rng=0), nn.Mean())),
     r"model\[1\]\[1\]", "Mean"),
])  # fmt: skip
def test_to_torch_names_a_loss_in_the_middle(torch, model, where, loss):
    with pytest.raises(TypeError, match=rf"^to_torch: {where} is a {loss}, a loss in the middle of the model; "
                       r"to_torch drops the losses at the end of a training network only$"):
        nn.to_torch(model())


@pytest.mark.torch
def test_to_torch_refuses_before_building_any_module(torch, monkeypatch):
    built = []
    monkeypatch.setitem(TO_TORCH, nn.Linear, lambda layer, torch: built.append(layer))
    with pytest.raises(TypeError, match=r"model\[2\] is a Scale"):
        nn.to_torch(nn.Sequential(nn.Linear(3, 3, rng=0), nn.ReLU(), Scale()))
    assert built == []
    with pytest.raises(ValueError, match=r"^to_torch: the network holds no layers besides its loss layers"):
        nn.to_torch(nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean()))


# -- the core never imports them --------------------------------------------------------------------
@pytest.mark.parametrize("command", ["import nnscratch", "import nnscratch.cli; nnscratch.cli.build_parser()"])
def test_importing_nnscratch_imports_no_optional_package(command):
    """Runs without torch too (no marker needed): a fresh interpreter, then a look at sys.modules."""
    code = (f"{command}; import sys; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'onnx', 'onnxruntime', 'matplotlib', 'PIL'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
