"""to_torch / from_torch: the PyTorch twin's outputs, input gradients and parameter gradients against
nnscratch's, both ways, for every layer they convert and every train-mnist preset; clear errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.presets import PRESETS
from nnscratch.torch_interop import TO_TORCH

from interop_cases import (  # tests/ on sys.path
    CASES,
    RANDOM_IN_TRAINING,
    Scale,
    builtin_inference_layers,
    covered_classes,
    perturb,
    sample_input,
)

TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-5)}


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def leaves(model) -> list:
    """The layers of ``model`` in order, nested Sequentials and Residuals opened."""
    containers = (nn.Sequential, nn.Residual)
    found = []
    for layer in model.layers if isinstance(model, containers) else [model]:
        found += leaves(layer) if isinstance(layer, containers) else [layer]
    return found


def in_torch_layout(model, arrays) -> list:
    """nnscratch parameters (or their deltas) laid out as PyTorch's ``module.parameters()`` are."""
    arrays, result = list(arrays), []
    for layer in leaves(model):
        own, arrays = arrays[: len(layer.parameters)], arrays[len(layer.parameters) :]
        if isinstance(layer, nn.Linear):  # W is (in, out) here, (out, in) in PyTorch
            own = [own[0].T, *own[1:]]
        result += own
    assert not arrays
    return result


def nnscratch_pass(model, x, delta):
    """(y, dL/dx, parameter deltas) of one forward and backward with upstream gradient ``delta``."""
    y = model.forward(x)
    dx = model.backward(delta)
    return y, dx, [d.copy() for d in model.parameters_deltas]


def torch_pass(torch, module, x, delta):
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    module.zero_grad()
    ty = module(tx)
    ty.backward(torch.from_numpy(delta))
    return ty.detach().numpy(), tx.grad.numpy(), [p.grad.numpy() for p in module.parameters()]


def assert_same_function(torch, model, module, input_shape, dtype, batch=4):
    """Outputs, input gradients and parameter gradients equal, for a random upstream gradient."""
    x = sample_input(input_shape, batch, dtype)
    delta = np.random.default_rng(7).normal(size=model.output_shape((batch, *input_shape))).astype(dtype)
    y, dx, deltas = nnscratch_pass(model, x, delta)
    ty, tdx, tdeltas = torch_pass(torch, module, x, delta)
    tolerance = TOLERANCE[dtype]
    assert ty.dtype == y.dtype == dtype
    np.testing.assert_allclose(ty, y, **tolerance)
    np.testing.assert_allclose(tdx, dx, **tolerance)
    expected = in_torch_layout(model, deltas)
    assert len(tdeltas) == len(expected)
    for got, want in zip(tdeltas, expected):
        np.testing.assert_allclose(got, want, **tolerance)
    # BatchNorm's running statistics, moved the same way in training mode (and not at all in eval)
    buffers = [b.numpy() for b in module.buffers() if b.is_floating_point()]
    assert len(buffers) == len(model.buffers)
    for got, want in zip(buffers, model.buffers):
        np.testing.assert_allclose(got, want, **tolerance)


# -- nnscratch -> PyTorch (the tests that use PyTorch carry the torch marker) -----------------------


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


def test_every_converted_layer_has_a_case():
    assert set(TO_TORCH) <= covered_classes()


def test_every_built_in_layer_has_a_pytorch_twin():
    missing = sorted(cls.__name__ for cls in builtin_inference_layers() - set(TO_TORCH) - {nn.Residual})
    assert not missing, (f"to_torch has no twin for {', '.join(missing)}: add one (and its from_torch way back) "
                         "to nnscratch/torch_interop.py, and a case to tests/interop_cases.py")


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
    with pytest.raises(TypeError, match=r"to_torch: model\[1\]\[1\] is a Scale, which has no PyTorch twin here; "
                                        r"to_torch converts AvgPool2D, .*Conv2D, .*Linear, .*reference.Conv2D, .*Residual and Sequential"):
        nn.to_torch(model)
    with pytest.raises(TypeError, match=r"to_torch: model\[1\] is a Mean, a loss in the middle of the model"):
        nn.to_torch(nn.Sequential(nn.Linear(3, 1, rng=0), nn.Mean(), nn.Sigmoid()))


# -- PyTorch -> nnscratch ---------------------------------------------------------------------------
def torch_models(torch, dtype):
    """PyTorch modules built and initialised by PyTorch itself, one per convertible kind."""
    torch.manual_seed(0)
    tnn = torch.nn
    models = {
        "Linear": (tnn.Sequential(tnn.Linear(5, 4), tnn.Sigmoid(), tnn.Linear(4, 3, bias=False)), (5,)),
        "Conv2d": (tnn.Sequential(tnn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0)), tnn.Tanh(),
                                  tnn.Conv2d(3, 2, 3, bias=False)), (2, 9, 6)),
        "MaxPool2d": (tnn.Sequential(tnn.MaxPool2d(3, stride=2), tnn.ReLU(), tnn.MaxPool2d((2, 1))), (2, 9, 7)),
        "activations": (tnn.Sequential(tnn.Linear(5, 6), tnn.LeakyReLU(0.1), tnn.Linear(6, 6), tnn.ELU(0.5),
                                       tnn.GELU(approximate="tanh"), tnn.SiLU(), tnn.Softplus(beta=1.5, threshold=2.0),
                                       tnn.Dropout(0.2), tnn.Linear(6, 3)).eval(), (5,)),
        "pooling": (tnn.Sequential(tnn.AvgPool2d(3, stride=2, padding=1), tnn.Conv2d(2, 3, 3),
                                   tnn.AvgPool2d((2, 1)), nn.torch_interop.torch_modules(torch).GlobalAvgPool2d(),
                                   tnn.Linear(3, 2)), (2, 11, 9)),
        "normalization": (tnn.Sequential(tnn.Conv2d(2, 3, 3), tnn.BatchNorm2d(3, momentum=0.2), tnn.ReLU(), tnn.Flatten(),
                                         tnn.Linear(3 * 3 * 2, 6), tnn.BatchNorm1d(6, eps=1e-3), tnn.LayerNorm(6),
                                         tnn.Linear(6, 4), tnn.LayerNorm((4,), elementwise_affine=False)), (2, 5, 4)),
        "residual": (tnn.Sequential(tnn.Conv2d(2, 3, 3, padding=1), nn.torch_interop.torch_modules(torch).Residual(
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
    with pytest.raises(TypeError, match=r"from_torch: module\[1\]\[1\] is a torch.nn.modules.conv.Conv1d, which has "
                                        r"no nnscratch layer here; from_torch converts nn.AvgPool2d, .*nn.Conv2d, .*"
                                        r"nnscratch.torch_interop.Residual and nn.Sequential"):
        nn.from_torch(module)
    with pytest.raises(TypeError, match=r"from_torch: expected a torch.nn.Module, got list"):
        nn.from_torch([tnn.Linear(3, 4)])


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


@pytest.mark.torch
def test_from_torch_refuses_integer_and_half_weights(torch):
    with pytest.raises(ValueError, match=r"module\[0\] has a weight of dtype float16; nnscratch takes float32 or float64"):
        nn.from_torch(torch.nn.Sequential(torch.nn.Linear(2, 2).half()))


def test_without_torch_the_message_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"need PyTorch, which nnscratch does not install: pip install torch"):
        nn.to_torch(nn.Sequential(nn.Linear(2, 2, rng=0)))
    with pytest.raises(ImportError, match=r"need PyTorch"):
        nn.from_torch(object())


# -- the core never imports them --------------------------------------------------------------------
@pytest.mark.parametrize("command", ["import nnscratch", "import nnscratch.cli; nnscratch.cli.build_parser()"])
def test_importing_nnscratch_imports_no_optional_package(command):
    """Runs without torch too (no marker needed): a fresh interpreter, then a look at sys.modules."""
    code = (f"{command}; import sys; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'onnx', 'onnxruntime', 'matplotlib', 'PIL'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
