"""What every optimizer shares (nnscratch/optim/base.py): updates in place in the parameters' dtype,
the adaptive ones against their textbook twins, PyTorch parity, no allocation per step, the state
round trip, and bad sources, hyperparameters, flags and dtypes refused. Each optimizer's own rule by
hand: test_sgd.py, test_adam.py, test_rmsprop.py."""

import gc
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as nn

from helpers.textbook_optim import Param, Params, textbook_adagrad, textbook_adamw, textbook_rmsprop


def test_float32_stays_float32():
    layer = Param(1.0, dtype=np.float32)
    for opt in (nn.SGD(layer, lr=0.1, momentum=0.9, weight_decay=0.1), nn.Adam(layer)):
        layer.run(opt, [1.0])
        assert layer.parameters[0].dtype == np.float32
    assert all(b.dtype == np.float32 for b in opt.m + opt.v)


def test_updates_in_place_for_all_layer_sources():
    net = nn.Sequential(nn.Linear(3, 2, rng=0), nn.ReLU(), nn.Linear(2, 1, rng=1))
    weight = net[0].weight
    before = weight.copy()
    net.forward(np.ones((4, 3), np.float32))
    net.backward(np.ones((4, 1), np.float32))
    nn.SGD([net[0], net[2]], lr=0.1).step()
    assert net[0].weight is weight
    np.testing.assert_allclose(weight, before - 0.1 * net[0].parameters_deltas[0])


def test_state_dict_round_trip_resumes_identically():
    a, b = Param(1.0), Param(1.0)
    opt_a = nn.Adam(a, lr=0.1)
    a.run(opt_a, [0.5, -1.0])
    state = opt_a.state_dict()
    b.parameters[0][...] = a.parameters[0]
    opt_b = nn.Adam(b, lr=0.1)
    opt_b.load_state_dict(state)
    assert a.run(opt_a, [0.3]) == b.run(opt_b, [0.3])
    assert state["steps"] == 2 and set(state) == {"steps", "m.0", "v.0"}


def test_load_state_dict_checks_shapes():
    layer = Param(1.0)
    opt = nn.SGD(layer, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"SGD: optimizer state 'velocity.0' has shape \(2,\), expected \(1,\)"):
        opt.load_state_dict({"steps": 1, "velocity.0": np.zeros(2)})


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda s: nn.SGD(s, lr=0), r"SGD: lr must be > 0, got 0"),
        (lambda s: nn.SGD(s, lr=-0.1), r"SGD: lr must be > 0, got -0.1"),
        (lambda s: nn.SGD(s, lr=0.1, momentum=-0.5), r"SGD: momentum must be >= 0 and < 1, got -0.5"),
        (lambda s: nn.SGD(s, lr=0.1, nesterov=True), r"SGD: nesterov=True needs momentum > 0"),
        (lambda s: nn.SGD(s, lr=0.1, weight_decay=-1), r"SGD: weight_decay must be >= 0, got -1"),
        (lambda s: nn.Adam(s, lr=0), r"Adam: lr must be > 0, got 0"),
        (lambda s: nn.Adam(s, betas=(0.9, 1.0)), r"Adam: beta2 must be >= 0 and < 1, got 1"),
        (lambda s: nn.Adam(s, betas=0.9), r"Adam: betas must be a pair"),
        (lambda s: nn.Adam(s, eps=0), r"Adam: eps must be > 0, got 0"),
    ],
)
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make(Param(1.0))


def test_bad_source_and_types():
    with pytest.raises(TypeError, match=r"SGD: expected a layer, a Sequential or a list of layers.*got int"):
        nn.SGD(3, lr=0.1)
    with pytest.raises(TypeError, match=r"SGD: lr must be a real number, got str"):
        nn.SGD(Param(1.0), lr="0.1")


def test_misaligned_deltas():
    layer = Param(1.0)
    layer.parameters_deltas = []
    with pytest.raises(ValueError, match=r"SGD: 1 parameters but 0 parameters_deltas"):
        nn.SGD(layer, lr=0.1).step()


@pytest.mark.parametrize("make", [lambda net: nn.SGD(net, lr=0.1, momentum=0.9, weight_decay=0.01),
                                  lambda net: nn.Adam(net, lr=0.1, weight_decay=0.01)])
def test_optimizers_never_touch_buffers(make):
    class WithState(nn.Layer):
        def __init__(self):
            super().__init__()
            self.parameters = [np.ones(3)]
            self.parameters_deltas = [np.full(3, 0.5)]
            self.buffers = [np.full(3, 2.0), np.arange(4.0)]

        def forward(self, x, *args):
            return x

        def backward(self, delta):
            return delta

    layer = WithState()
    net = nn.Sequential(layer)
    optimizer = make(net)
    for _ in range(3):
        optimizer.step()
    assert not np.allclose(layer.parameters[0], 1.0)  # the parameter moved
    np.testing.assert_array_equal(layer.buffers[0], np.full(3, 2.0))
    np.testing.assert_array_equal(layer.buffers[1], np.arange(4.0))
    assert not any(np.shares_memory(b, s) for b in layer.buffers for s in optimizer.state_dict().values()
                   if isinstance(s, np.ndarray))


ADAPTIVE = [
    (nn.RMSprop, textbook_rmsprop, {"lr": 0.01}),
    (nn.RMSprop, textbook_rmsprop, {"lr": 0.01, "alpha": 0.9, "momentum": 0.9, "weight_decay": 0.01}),
    (nn.RMSprop, textbook_rmsprop, {"lr": 0.003, "centered": True, "momentum": 0.5, "eps": 1e-6}),
    (nn.Adagrad, textbook_adagrad, {"lr": 0.1}),
    (nn.Adagrad, textbook_adagrad, {"lr": 0.05, "eps": 1e-6, "weight_decay": 0.1}),
    (nn.AdamW, textbook_adamw, {"lr": 0.01}),
    (nn.AdamW, textbook_adamw, {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.3}),
]
ADAPTIVE_IDS = ["rmsprop", "rmsprop-momentum-wd", "rmsprop-centered", "adagrad", "adagrad-wd", "adamw",
                "adamw-settings"]


@pytest.mark.parametrize("dtype, rtol, atol", [(np.float64, 1e-11, 1e-13), (np.float32, 2e-5, 2e-6)])
@pytest.mark.parametrize("cls, twin, settings", ADAPTIVE, ids=ADAPTIVE_IDS)
def test_adaptive_optimizers_match_their_textbook_twins_over_many_steps(dtype, rtol, atol, cls, twin, settings):
    rng = np.random.default_rng(5)
    shapes = [(5, 3), (3,), (2, 2, 2)]
    starts = [rng.normal(size=shape) for shape in shapes]
    # gradients of very different sizes from step to step, as in training
    grads = [rng.normal(size=(30, *shape)) * np.logspace(-3, 1, 30).reshape(-1, *[1] * len(shape))
             for shape in shapes]
    layer = Params(starts, dtype)
    optimizer = cls(layer, **settings)
    for t in range(30):
        for delta, g in zip(layer.parameters_deltas, grads):
            delta[...] = g[t]
        optimizer.step()
    for p, start, g in zip(layer.parameters, starts, grads):
        assert p.dtype == dtype
        np.testing.assert_allclose(p, twin(start.astype(dtype), g.astype(dtype), **settings), rtol=rtol, atol=atol)
    for name in optimizer._state_names:
        assert all(b.dtype == dtype for b in getattr(optimizer, name) or [])


@settings(max_examples=40, deadline=None)
@given(
    which=st.sampled_from(["rmsprop", "adagrad", "adamw"]), lr=st.floats(1e-4, 0.5),
    decay=st.sampled_from([0.0, 0.5, 0.9, 0.99]), momentum=st.sampled_from([0.0, 0.5, 0.9]),
    centered=st.booleans(), eps=st.sampled_from([1e-10, 1e-8, 1e-3]), weight_decay=st.sampled_from([0.0, 1e-3, 0.1]),
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=4), steps=st.integers(1, 6), seed=st.integers(0, 2**16),
)
def test_adaptive_optimizers_match_the_textbook_for_random_settings(
    which, lr, decay, momentum, centered, eps, weight_decay, sizes, steps, seed
):
    if which == "rmsprop":
        cls, twin = nn.RMSprop, textbook_rmsprop
        settings = {"alpha": decay, "momentum": momentum, "centered": centered}
    elif which == "adagrad":
        cls, twin, settings = nn.Adagrad, textbook_adagrad, {}
    else:
        cls, twin, settings = nn.AdamW, textbook_adamw, {"betas": (decay, 0.999)}
    settings.update(lr=lr, eps=eps, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    starts = [rng.normal(size=size) for size in sizes]
    grads = [rng.normal(size=(steps, size)) for size in sizes]
    layer = Params(starts, np.float64)
    optimizer = cls(layer, **settings)
    for t in range(steps):
        for delta, g in zip(layer.parameters_deltas, grads):
            delta[...] = g[t]
        optimizer.step()
    for p, start, g in zip(layer.parameters, starts, grads):
        # centered RMSprop's sqrt(v - a^2) loses digits when v ~ a^2 (one step, alpha 0): looser there
        np.testing.assert_allclose(p, twin(start, g, **settings), rtol=1e-7 if centered else 1e-9, atol=1e-12)


# -- PyTorch parity ----------------------------------------------------------------------------
TORCH_CASES = [
    ("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 1e-3}),
    ("Adam", {"lr": 0.003, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.01, "betas": (0.85, 0.995), "eps": 1e-7, "weight_decay": 0.2}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.001, "alpha": 0.9, "eps": 1e-6, "momentum": 0.9, "weight_decay": 0.01}),
    ("RMSprop", {"lr": 0.001, "momentum": 0.5, "centered": True}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1, "eps": 1e-6, "weight_decay": 0.05}),
]


@pytest.mark.torch
@pytest.mark.parametrize("dtype, rtol, atol", [(np.float64, 1e-10, 1e-12), (np.float32, 1e-4, 1e-5)])
@pytest.mark.parametrize("name, settings", TORCH_CASES)
def test_matches_torch_over_many_steps(name, settings, dtype, rtol, atol):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    shapes = [(6, 4), (4,)]
    starts = [rng.normal(size=shape).astype(dtype) for shape in shapes]
    steps = 100
    layer = Params(starts, dtype)
    ours = getattr(nn, name)(layer, **settings)
    tensors = [torch.tensor(start.copy(), requires_grad=True) for start in starts]
    theirs = getattr(torch.optim, name)(tensors, **settings)
    for t in range(steps):
        scale = 10.0 ** rng.uniform(-3, 1)  # gradients of changing sizes
        for delta, tensor in zip(layer.parameters_deltas, tensors):
            delta[...] = rng.normal(size=delta.shape) * scale
            tensor.grad = torch.tensor(delta.copy())
        ours.step()
        theirs.step()
    for p, tensor in zip(layer.parameters, tensors):
        assert p.dtype == dtype
        np.testing.assert_allclose(p, tensor.detach().numpy(), rtol=rtol, atol=atol)


# -- no allocation per step --------------------------------------------------------------------
def traced_peak_during(step, steps=4) -> int:
    """The most memory (bytes, NumPy arrays included) held at once during ``steps`` calls beyond what
    was held before them."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(steps):
            step()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


ALL_OPTIMIZERS = [
    lambda s: nn.SGD(s, lr=0.1),
    lambda s: nn.SGD(s, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda s: nn.Adam(s, weight_decay=0.01),
    lambda s: nn.AdamW(s),
    lambda s: nn.RMSprop(s, momentum=0.9, weight_decay=0.01, centered=True),
    lambda s: nn.RMSprop(s),
    lambda s: nn.Adagrad(s, weight_decay=0.01),
]
ALL_IDS = ["sgd", "sgd-nesterov-wd", "adam-wd", "adamw", "rmsprop-all", "rmsprop", "adagrad-wd"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", ALL_OPTIMIZERS, ids=ALL_IDS)
def test_a_step_allocates_nothing(make, dtype):
    layer = Params([np.ones((200, 100)), np.ones(100)], dtype)  # the weight: 80 or 160 kB
    for delta in layer.parameters_deltas:
        delta[...] = 0.01
    optimizer = make(layer)
    optimizer.step()  # the first step makes the state and the scratch arrays
    weight_bytes = layer.parameters[0].nbytes
    # One temporary the weight's size would show as weight_bytes; Python's own small objects stay
    # far below a tenth of that.
    assert traced_peak_during(optimizer.step) < weight_bytes / 10
    # and the measure sees one: the same optimizer plus a temporary per step
    assert traced_peak_during(lambda: optimizer.step() or layer.parameters[0] * 2.0) >= weight_bytes


# -- flags and dtypes (issue 17) ---------------------------------------------------------------
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda s: nn.SGD(s, lr=0.1, momentum=0.9, nesterov="false"), r"SGD: nesterov must be True or False, got str 'false'"),
        (lambda s: nn.SGD(s, lr=0.1, momentum=0.9, nesterov=1), r"SGD: nesterov must be True or False, got int 1"),
        (lambda s: nn.SGD(s, lr=0.1, momentum=0.9, nesterov=None), r"SGD: nesterov must be True or False, got NoneType"),
        (lambda s: nn.RMSprop(s, centered="no"), r"RMSprop: centered must be True or False, got str 'no'"),
        (lambda s: nn.RMSprop(s, centered=0), r"RMSprop: centered must be True or False, got int 0"),
    ],
)
def test_flags_must_be_real_bools(make, match):
    with pytest.raises(TypeError, match=match):
        make(Param(1.0))


def test_numpy_bools_are_bools():
    optimizer = nn.SGD(Param(1.0), lr=0.1, momentum=0.9, nesterov=np.bool_(True))
    assert optimizer.nesterov is True
    assert nn.RMSprop(Param(1.0), centered=np.bool_(False)).centered is False


OPTIMIZER_CLASSES = [
    (nn.SGD, {"lr": 0.1}), (nn.Adam, {}), (nn.AdamW, {}), (nn.RMSprop, {}), (nn.Adagrad, {}),
]


@pytest.mark.parametrize("cls, kwargs", OPTIMIZER_CLASSES, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("dtype", [np.float16, np.int64, np.complex128, np.longdouble])
def test_parameters_other_than_float32_or_float64_are_refused(cls, kwargs, dtype):
    if np.dtype(dtype) == np.float64:  # longdouble is float64 on some platforms
        pytest.skip("longdouble is float64 here")
    layer = Params([np.ones(3), np.ones(2)], np.float32)
    layer.parameters[1] = layer.parameters[1].astype(dtype)
    name = cls.__name__
    match = rf"{name}: parameter 1 is {np.dtype(dtype)}, expected float32 or float64"
    with pytest.raises(TypeError, match=match):
        cls(layer, **kwargs)
    # ... and when a parameter is swapped for one after construction
    layer = Params([np.ones(3), np.ones(2)], np.float32)
    optimizer = cls(layer, **kwargs)
    layer.parameters[1] = np.ones(2, dtype)
    with pytest.raises(TypeError, match=match):
        optimizer.step()
    assert not np.any(np.isnan(layer.parameters[0]))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda s: nn.RMSprop(s, lr=0), r"RMSprop: lr must be > 0, got 0"),
        (lambda s: nn.RMSprop(s, alpha=1.0), r"RMSprop: alpha must be >= 0 and < 1, got 1"),
        (lambda s: nn.RMSprop(s, alpha=-0.1), r"RMSprop: alpha must be >= 0 and < 1, got -0.1"),
        (lambda s: nn.RMSprop(s, eps=0), r"RMSprop: eps must be > 0, got 0"),
        (lambda s: nn.RMSprop(s, momentum=1.0), r"RMSprop: momentum must be >= 0 and < 1, got 1"),
        (lambda s: nn.RMSprop(s, weight_decay=-1), r"RMSprop: weight_decay must be >= 0, got -1"),
        (lambda s: nn.Adagrad(s, lr=float("nan")), r"Adagrad: lr must be finite and > 0, got nan"),
        (lambda s: nn.Adagrad(s, eps=-1e-10), r"Adagrad: eps must be > 0, got -1e-10"),
        (lambda s: nn.Adagrad(s, weight_decay=float("inf")), r"Adagrad: weight_decay must be finite and >= 0, got inf"),
        (lambda s: nn.AdamW(s, lr=-1), r"AdamW: lr must be > 0, got -1"),
        (lambda s: nn.AdamW(s, betas=(1.0, 0.9)), r"AdamW: beta1 must be >= 0 and < 1, got 1"),
        (lambda s: nn.AdamW(s, betas=(0.9,)), r"AdamW: betas must be a pair"),
        (lambda s: nn.AdamW(s, weight_decay=-0.01), r"AdamW: weight_decay must be >= 0, got -0.01"),
    ],
)
def test_bad_hyperparameters_of_the_adaptive_optimizers(make, match):
    with pytest.raises(ValueError, match=match):
        make(Param(1.0))
    with pytest.raises(TypeError, match=r"RMSprop: alpha must be a real number, got str"):
        nn.RMSprop(Param(1.0), alpha="0.9")


@pytest.mark.parametrize("make", ALL_OPTIMIZERS, ids=ALL_IDS)
def test_state_dict_round_trip_resumes_bit_identically(make):
    rng = np.random.default_rng(8)
    grads = rng.normal(size=(6, 4, 3))
    a = Params([np.ones((4, 3))], np.float32)
    opt_a = make(a)
    for g in grads[:3]:
        a.parameters_deltas[0][...] = g
        opt_a.step()
    b = Params([a.parameters[0]], np.float32)
    opt_b = make(b)
    opt_b.load_state_dict(opt_a.state_dict())
    for g in grads[3:]:
        for layer, opt in ((a, opt_a), (b, opt_b)):
            layer.parameters_deltas[0][...] = g
            opt.step()
    np.testing.assert_array_equal(a.parameters[0], b.parameters[0])
    assert opt_b.steps == opt_a.steps == 6
