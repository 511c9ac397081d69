"""scripts/benchmark.py's GPT row (scripts/benchmark_gpt.py): correctness only, no timing assertions.

The two stacks must do the same work: from the same weights, the same loss, the same gradients (the
input's included, as an embedding's would be) and the same AdamW updates; the nnscratch side's
memory must not grow from step to step; the figures must come out in the JSON file.
"""

import json
import math

import numpy as np
import pytest

from helpers.script_modules import load_script
from helpers.benchmark_checks import check_speed, traced_growth


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmark.py")


@pytest.fixture(scope="module")
def gpt(bench):  # loaded by benchmark.py, from its folder
    import benchmark_gpt

    return benchmark_gpt


def test_json_has_the_gpt_row_and_its_memory_trace(bench, tmp_path, capsys):
    path = tmp_path / "figures.json"
    argv = ["--only", "gpt,memory", "--no-torch", "--repeats", "2", "--gpt-steps", "1", "--warmup", "1",
            "--warmup-seconds", "0", "--memory-epochs", "2", "--json", str(path)]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    figures = json.loads(path.read_text())
    row = figures["networks"]["gpt"]
    check_speed(row["nnscratch"])
    assert row["target"] == 0.75 and row["batch"] == 12 and row["pytorch"] is None
    assert set(figures["memory"]) == {"gpt"} and len(figures["memory"]["gpt"]["rss_mb"]) == 3
    assert "GPT " in out and "a GPT sample: a sequence of 64 tokens" in out


@pytest.mark.torch
@pytest.mark.slow  # importing torch alone takes seconds
def test_both_frameworks_compute_the_same_loss_gradients_and_adamw_updates(gpt):
    torch = pytest.importorskip("torch")
    stack, loss_layers, optimizer = gpt.build_nnscratch_gpt(seed=5)
    model, torch_optimizer, loss_fn = gpt.build_torch_gpt(torch, stack)
    (x, targets), = gpt.gpt_batches(1, batch=3, seed=6)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)

    logits = stack.forward(x)
    loss = loss_layers.forward(logits.reshape(-1, 65), targets.reshape(-1))
    d_x = stack.backward(loss_layers.backward(1.0).reshape(logits.shape))
    torch_loss = loss_fn(model(tx).reshape(-1, 65), torch.from_numpy(targets).reshape(-1))
    torch_loss.backward()
    assert loss.dtype == np.float32 and float(loss) == pytest.approx(torch_loss.item(), rel=1e-5)
    np.testing.assert_allclose(d_x, tx.grad.numpy(), rtol=1e-3, atol=1e-6)
    theirs = [p.grad.numpy() for p in model.parameters()]
    ours = gpt.torch_layout(stack, stack.parameters_deltas)
    assert len(ours) == len(theirs) == 4 * 12 + 4
    for index, (a, b) in enumerate(zip(ours, theirs)):
        assert a.dtype == np.float32 and a.shape == b.shape, index
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-6, err_msg=f"parameter {index}")

    # The training steps proper, one AdamW update each. Adam divides each gradient by its own size, so a
    # weight whose gradient is near 0 (float32 rounding decides its sign) moves by up to lr either way:
    # every weight is compared to the 3 steps' reach (3 lr = 3e-3), and all but one in 10,000 to 2e-5.
    for _ in range(3):
        gpt.nnscratch_gpt_step(stack, loss_layers, optimizer, x, targets)
        gpt.torch_gpt_step(model, torch_optimizer, loss_fn, torch.from_numpy(x), torch.from_numpy(targets))
    for index, (a, b) in enumerate(zip(gpt.torch_layout(stack, stack.parameters), model.parameters())):
        a, b = a.copy(), b.detach().numpy().copy()
        if index % 12 == 3 and index < 48:
            # The key bias's gradient is exactly 0 (it adds the same q . b_k to every score of a row,
            # which the softmax ignores): both are float32 rounding noise, which Adam scales up to
            # steps of up to lr in either direction. Its part of the packed bias is left out.
            a[128:256] = b[128:256] = 0.0
        np.testing.assert_allclose(a, b, rtol=0, atol=3e-3, err_msg=f"parameter {index}")
        close = np.isclose(a, b, rtol=1e-4, atol=2e-5)
        assert close.mean() >= 0.9999, f"parameter {index}: {np.count_nonzero(~close)} of {close.size} differ"


def test_training_memory_does_not_grow_per_step(gpt):
    stack, loss_layers, optimizer = gpt.build_nnscratch_gpt()
    batches = gpt.gpt_batches(3, batch=2)
    counter = iter(range(10**9))

    def step():
        loss = gpt.nnscratch_gpt_step(stack, loss_layers, optimizer, *batches[next(counter) % 3])
        assert math.isfinite(float(loss))

    # One batch is 2 x 64 x 128 x 4 B = 64 kB; a per-step leak of that size over 30 steps would be
    # about 2 MB. Allow a tenth of that for interpreter noise.
    assert traced_growth(step, warmup=3, steps=30) < 200_000


def test_the_gpt_shared_by_processes_has_its_row(bench, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("nnscratch.parallel.usable_cpus", lambda: 2)
    path = tmp_path / "figures.json"
    argv = ["--only", "gpt-processes", "--no-torch", "--repeats", "2", "--gpt-steps", "1", "--warmup", "1",
            "--warmup-seconds", "0", "--json", str(path)]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    row = json.loads(path.read_text())["networks"]["gpt-processes"]
    check_speed(row["nnscratch"])
    assert row["processes"] == 2 and row["target"] == 0.75
    assert "\nGPT-2P " in out and "GPT-2P: the GPT with each batch shared by 2 processes" in out


def test_the_shared_step_computes_what_one_process_computes(gpt):
    from nnscratch.parallel import DataParallel

    (x, targets), = gpt.gpt_batches(1, batch=4, seed=6)
    stack, loss_layers, optimizer = gpt.build_nnscratch_gpt(seed=5)
    plain = gpt.nnscratch_gpt_step(stack, loss_layers, optimizer, x, targets)
    stack2, loss2, optimizer2 = gpt.build_nnscratch_gpt(seed=5)
    with DataParallel(stack2, loss2, 2, lambda y: y.size, input_delta=True) as shared:
        value = gpt.nnscratch_parallel_step(shared, optimizer2, x, targets)
    assert value == pytest.approx(float(plain), rel=1e-5)
    assert len(stack.parameters_deltas) == 4 * 12 + 4
    for index, (a, b) in enumerate(zip(stack2.parameters_deltas, stack.parameters_deltas)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-6, err_msg=f"parameter {index}")
