"""scripts/benchmark.py: correctness only, no timing assertions.

The side-by-side is only worth something if both columns do the same work: the nnscratch and
PyTorch networks it builds must compute the same loss, gradients and SGD update from the same
weights. The command must write every figure as positive finite numbers, and training memory must
stay flat from step to step.
"""

import gc
import json
import math
import os
import tracemalloc

import numpy as np
import pytest

import nnscratch as nn
from helpers.benchmark_checks import check_speed, traced_growth
from helpers.script_modules import children_running, load_script, usage_error


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmark.py")


TINY = ["--repeats", "2", "--mlp-steps", "2", "--cnn-steps", "1", "--warmup", "1", "--batch", "4", "--warmup-seconds", "0",
        "--memory-epochs", "2", "--only", "mlp,cnn,memory"]


def _numbers(tree):
    """Every int/float in a JSON tree (bools and counts included as they are)."""
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _numbers(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _numbers(value)
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield tree


def test_json_without_torch_has_every_figure_and_says_why_torch_is_skipped(bench, tmp_path, capsys):
    path = tmp_path / "figures.json"
    assert bench.main([*TINY, "--no-torch", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "skipping the PyTorch column: --no-torch given" in out
    figures = json.loads(path.read_text())
    assert set(figures) >= {"machine", "settings", "torch_skipped", "networks", "memory",
                            "load_before", "load_after"}
    assert set(figures["networks"]) == {"mlp", "cnn"}
    for name, row in figures["networks"].items():
        check_speed(row["nnscratch"])
        assert row["pytorch"] is None and row["ratio"] is None and row["pair_ratios"] is None
        assert row["best_ratio"] is None
        assert row["target"] == {"mlp": 1.25, "cnn": 0.75}[name] and row["batch"] == 4
        assert row["others_cpu_share"] is None or 0 <= row["others_cpu_share"] <= 1
        assert len(row["blas_gflops"]) == 2 and all(g > 0 for g in row["blas_gflops"])  # one per repeat
    probes = figures["networks"]["mlp"]["blas_gflops"]
    assert f"MLP {(probes[0] + probes[1]) / 2:.0f} ({min(probes):.0f}-{max(probes):.0f})" in out
    for mem in figures["memory"].values():
        assert len(mem["rss_mb"]) == 3 and all(mb > 0 for mb in mem["rss_mb"])
    assert all(math.isfinite(v) for v in _numbers(figures))
    assert [p.name for p in tmp_path.iterdir()] == ["figures.json"]  # no temp file left behind


@pytest.mark.torch
@pytest.mark.slow  # importing torch alone takes seconds
def test_json_with_torch_has_the_pytorch_column_and_ratios(bench, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    path = tmp_path / "figures.json"
    assert bench.main([*TINY, "--only", "mlp,cnn", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    figures = json.loads(path.read_text())
    assert figures["torch_skipped"] is None and "skipping" not in out
    machine = figures["machine"]
    assert machine["torch"] == torch.__version__
    if machine["blas_threads"]:
        assert machine["torch_threads"] == machine["blas_threads"]
    for row in figures["networks"].values():
        check_speed(row["nnscratch"])
        check_speed(row["pytorch"])
        assert row["ratio"] == pytest.approx(row["nnscratch"]["median"] / row["pytorch"]["median"])
        assert row["pair_ratios"] == pytest.approx([a / b for a, b in zip(row["nnscratch"]["runs"], row["pytorch"]["runs"])])
        assert isinstance(row["meets_target"], bool)
        assert row["best_ratio"] == pytest.approx(row["nnscratch"]["best"] / row["pytorch"]["best"])
    assert "MLP" in out and "CNN" in out and "ratio" in out
    pairs = figures["networks"]["mlp"]["pair_ratios"]
    assert f"MLP {min(pairs):.2f}-{max(pairs):.2f} (" in out


def test_busy_mode_prints_quiet_and_busy_side_by_side_and_leaves_no_busy_process(bench, tmp_path, capsys):
    path = tmp_path / "figures.json"
    assert bench.main([*TINY, "--only", "mlp,cnn", "--no-torch", "--busy", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    figures = json.loads(path.read_text())
    assert set(figures["networks"]) == set(figures["busy"]) == {"mlp", "cnn"}  # the usual figures too
    for name, row in figures["busy"].items():
        assert row["pytorch"] is None and row["steps"] == {"mlp": 2, "cnn": 1}[name] and row["repeats"] == 2
        ours = row["nnscratch"]
        for load in ("quiet", "busy"):
            check_speed(ours[load])
            # the chooser's final choice in each run: one of its candidates (None only if it was off)
            assert len(row["chosen"][load]) == 2
            assert all(c is None or c in {1, figures["machine"]["blas_threads"]} for c in row["chosen"][load])
        assert ours["ratio"] == pytest.approx(ours["busy"]["median"] / ours["quiet"]["median"])
        assert row["load"].startswith("one busy-loop process")
        assert f"{name.upper():<8}{ours['quiet']['median']:>16,.0f}{ours['busy']['median']:>10,.0f}" in out
    assert "quiet vs busy: one busy-loop process" in out and "PyTorch skipped" in out
    assert children_running("sched_setaffinity") == []


@pytest.mark.torch
@pytest.mark.slow  # importing torch alone takes seconds
def test_busy_mode_runs_pytorch_as_it_comes_and_says_with_how_many_threads(bench, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    default = torch.get_num_threads()
    path = tmp_path / "figures.json"
    assert bench.main([*TINY, "--only", "mlp", "--busy", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    figures = json.loads(path.read_text())
    assert figures["machine"]["torch_default_threads"] == default
    assert f"PyTorch as it comes ({default} threads)" in out
    theirs = figures["busy"]["mlp"]["pytorch"]
    check_speed(theirs["quiet"])
    check_speed(theirs["busy"])
    assert theirs["ratio"] == pytest.approx(theirs["busy"]["median"] / theirs["quiet"]["median"])
    assert children_running("sched_setaffinity") == []


def test_busy_core_spins_on_one_cpu_and_stops_when_killed_or_by_itself(bench):
    with bench.BusyCore(cpu=0, max_seconds=60) as busy:
        process = busy.process
        assert process.poll() is None and busy.pinned == hasattr(os, "sched_setaffinity")
        if busy.pinned:
            assert os.sched_getaffinity(process.pid) == {0}
            assert children_running("sched_setaffinity") == [process.pid]  # what the other tests look for
        assert "pinned to CPU 0" in busy.describe() or not busy.pinned
    assert process.poll() is not None and process.returncode != 0  # killed on exit, long before 60 s

    busy = bench.BusyCore(max_seconds=0.3)
    busy.__enter__()  # and never exited, as when the benchmark itself dies
    process = busy.process
    assert process.wait(timeout=30) == 0  # it stopped by itself at its deadline
    busy.__exit__(None, None, None)
    with pytest.raises(ValueError, match=r"BusyCore: max_seconds must be in \(0, 3600\], got 0"):
        bench.BusyCore(max_seconds=0)


def test_spread_of_ratios_is_range_and_quartiles(bench):
    assert bench._spread([1.0, 2.0, 3.0, 4.0, 5.0]) == "1.00-5.00 (1.50-4.50)"  # exclusive quartiles
    assert bench._spread([1.25]) == "1.25"


def test_conv_micro_benchmark_times_both_implementations(bench):
    conv = bench.compare_conv(repeats=2, naive_repeats=1, batch=1, warmup_seconds=0.01)
    assert conv["skipped"] is None
    assert conv["fast_seconds"] > 0 and conv["naive_seconds"] > 0
    assert conv["speedup"] == pytest.approx(conv["naive_seconds"] / conv["fast_seconds"])


def test_the_naive_reference_computes_what_the_timed_layer_computes(bench):
    # The micro-benchmark calls both the way compare_conv does; they must agree to be comparable.
    naive = bench.load_naive()
    rng = np.random.default_rng(0)
    layer = nn.Conv2D(1, 8, 3, padding=1, dtype=np.float64, rng=rng)
    layer.bias[:] = rng.normal(size=8)
    x, delta = rng.normal(size=(2, 1, 28, 28)), rng.normal(size=(2, 8, 28, 28))
    np.testing.assert_allclose(layer.forward(x), naive.naive_conv2d_forward(x, layer.weight, layer.bias, 1, 1),
                               rtol=1e-10, atol=1e-12)
    d_x, d_weight, d_bias = naive.naive_conv2d_backward(x, layer.weight, delta, 1, 1)
    np.testing.assert_allclose(layer.backward(delta), d_x, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.parameters_deltas[0], d_weight, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.parameters_deltas[1], d_bias, rtol=1e-10, atol=1e-12)


@pytest.mark.torch
@pytest.mark.parametrize("network", ["mlp", "cnn"])
def test_both_frameworks_compute_the_same_loss_gradients_and_update(bench, network):
    torch = pytest.importorskip("torch")
    net, optimizer = bench.build_nnscratch(network, seed=5)
    model, torch_optimizer, loss_fn = bench.build_torch(torch, net)
    (x, labels), = bench.make_batches(1, 16, seed=6)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)

    loss = net.forward(x, labels)
    d_x = net.backward()
    torch_loss = loss_fn(model(tx), torch.from_numpy(labels))
    torch_loss.backward()

    assert loss.dtype == np.float32
    assert float(loss) == pytest.approx(torch_loss.item(), rel=1e-5)
    np.testing.assert_allclose(d_x, tx.grad.numpy(), rtol=1e-4, atol=1e-7)
    theirs = [p.grad.numpy() for p in model.parameters()]
    ours = [d.T if d.ndim == 2 else d for d in net.parameters_deltas]  # Linear's W is (in, out)
    assert len(ours) == len(theirs) == {"mlp": 4, "cnn": 6}[network]
    for index, (a, b) in enumerate(zip(ours, theirs)):
        assert a.dtype == np.float32, index
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=f"parameter {index}")

    # The training step proper: data gradient skipped on our side, one SGD-with-momentum update each.
    for _ in range(2):
        bench.nnscratch_step(net, optimizer, x, labels)
        bench.torch_step(model, torch_optimizer, loss_fn, torch.from_numpy(x), torch.from_numpy(labels))
    for index, (a, b) in enumerate(zip(net.parameters, model.parameters())):
        a = a.T if a.ndim == 2 else a
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-4, atol=1e-6, err_msg=f"parameter {index}")


@pytest.mark.parametrize("network", ["mlp", pytest.param("cnn", marks=pytest.mark.slow)])
def test_training_memory_does_not_grow_per_step(bench, network):
    net, optimizer = bench.build_nnscratch(network)
    batches = bench.make_batches(3, 16)
    counter = iter(range(10**9))

    def step():
        bench.nnscratch_step(net, optimizer, *batches[next(counter) % 3])

    # One batch of images is 16 x 784 x 4 B = 50 kB; a per-step leak of that size over 30 steps
    # would be 1.5 MB. Allow a seventh of that for interpreter noise.
    assert traced_growth(step) < 200_000

    # The bound catches a leak: keeping each step's loss output plus one 50 kB copy grows past it.
    kept = []
    leaky = lambda: kept.append(batches[0][0].copy()) or step()  # noqa: E731
    assert traced_growth(leaky) > 200_000


def test_memory_measure_reports_a_flat_rss_trace(bench):
    mem = bench.measure_memory("mlp", epochs=3, steps=20, batch=16)
    assert len(mem["rss_mb"]) == 4 and min(mem["rss_mb"]) > 0
    # RSS moves in pages and with the allocator's moods: a loose bound, 8 MB over 60 small steps.
    assert abs(mem["growth_mb"]) < 8
    assert mem["growth_per_step_bytes"] == pytest.approx(mem["growth_mb"] * 2**20 / 60)


def test_others_cpu_share_counts_only_what_this_process_did_not_use(bench):
    # Machine-wide 3 CPU-seconds busy over 2 s of wall clock, 1 of them ours, on os.cpu_count() CPUs.
    cpus = os.cpu_count() or 1
    share = bench.others_cpu_share((10.0, 5.0, 100.0), (13.0, 6.0, 102.0))
    assert share == pytest.approx(min(2.0 / (2.0 * cpus), 1.0))
    assert bench.others_cpu_share((10.0, 5.0, 100.0), (10.5, 6.0, 102.0)) == 0.0  # never negative
    assert bench.others_cpu_share((None, 5.0, 100.0), (None, 6.0, 102.0)) is None
    busy, own, wall = bench.cpu_snapshot()
    assert own > 0 and wall > 0 and (busy is None or busy > 0)


def test_blas_probe_reports_the_flops_of_its_product_per_second(bench):
    ticks = iter(range(1000))
    clock = lambda: next(ticks) * 1e-3  # noqa: E731 - every timed product takes exactly 1 ms
    # 2 m k n for (128, 784) @ (784, 256): 51.4 MFLOP in 1 ms is 51.4 GFLOP/s
    assert bench.blas_gflops(calls=5, clock=clock) == pytest.approx(2 * 128 * 784 * 256 / 1e-3 / 1e9)
    real = bench.blas_gflops(calls=3)
    assert 0 < real < 1e5 and math.isfinite(real)


def test_machine_probes(bench):
    info = bench.blas_info()
    assert set(info) == {"library", "threads", "threads_source"}
    assert info["threads"] is None or info["threads"] >= 1
    assert bench.rss_bytes() > 10 * 2**20  # this interpreter with numpy loaded
    assert bench.cpu_model()


def test_write_json_is_atomic_on_failure(bench, tmp_path):
    path = tmp_path / "figures.json"
    bench.write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        bench.write_json(path, {"a": object()})  # not serialisable
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["figures.json"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--repeats", "0"], "--repeats: expected a positive int, got 0"),
        (["--warmup", "-1"], "--warmup: expected a non-negative int, got -1"),
        (["--warmup-seconds", "-0.5"], "--warmup-seconds: expected seconds between 0 and 60, got -0.5"),
        (["--only", "mlp,gpu"], "--only: expected names among mlp, cnn, gpt, gpt-processes, conv, memory, lstm, "
                                "gru, rnn, lstm-memory, got gpu"),
        (["--gpt-steps", "0"], "--gpt-steps: expected a positive int, got 0"),
        (["--busy-max-seconds", "0"], "--busy-max-seconds: expected seconds in (0, 3600], got 0.0"),
    ],
)
def test_bad_options_exit_2_with_a_message(bench, capsys, argv, message):
    assert message in usage_error(bench.parse_args, argv, capsys)


def test_unknown_network_is_a_clear_error(bench):
    with pytest.raises(ValueError, match="benchmark: network must be 'mlp' or 'cnn', got 'rnn'"):
        bench.build_nnscratch("rnn")


# -- the recurrent layers (issue 22) ------------------------------------------------------------------
TINY_SEQUENCES = {"batch": 3, "length": 5, "input_size": 4, "hidden_size": 6}


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_recurrent_rows_have_every_figure_without_torch(bench, cell):
    row = bench.compare_recurrent(cell, None, repeats=2, steps=1, warmup=1, warmup_seconds=0, shape=TINY_SEQUENCES)
    check_speed(row["nnscratch"])
    assert row["pytorch"] is None and row["ratio"] is None and row["meets_target"] is None
    assert row["target"] == {"lstm": 0.75, "gru": None, "rnn": None}[cell] and row["shape"] == TINY_SEQUENCES
    assert len(row["blas_gflops"]) == 2


def test_the_command_prints_the_recurrent_rows(bench, tmp_path, capsys, monkeypatch):
    measure = bench.compare_recurrent
    monkeypatch.setattr(bench, "compare_recurrent", lambda *args: measure(*args, shape=TINY_SEQUENCES))
    path = tmp_path / "figures.json"
    argv = ["--only", "lstm,gru", "--repeats", "2", "--recurrent-steps", "1", "--warmup-seconds", "0", "--no-torch",
            "--json", str(path)]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    figures = json.loads(path.read_text())
    assert set(figures["recurrent"]) == {"lstm", "gru"} and figures["networks"] == {}
    row = figures["recurrent"]["lstm"]
    assert f"LSTM{row['nnscratch']['median']:>21,.1f}{'skipped':>15}" in out and "N=3, T=5, D=4, H=6" in out
    assert all(math.isfinite(v) for v in _numbers(figures))


@pytest.mark.torch
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_both_recurrent_steps_compute_the_same_gradients(bench, cell):
    torch = pytest.importorskip("torch")
    layer, x, delta = bench.build_recurrent(cell, shape=TINY_SEQUENCES)
    steps = bench.recurrent_steps(torch, layer, x, delta)  # PyTorch's twin from the same weights
    ours, theirs = steps["nnscratch"](x, delta), steps["pytorch"](x, delta)
    assert ours.dtype == np.float32 and theirs.dtype == torch.float32
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-4, atol=1e-6)
    assert np.abs(ours).max() > 1e-3  # dL/dx: both compute it, as in the middle of a network


def test_recurrent_memory_is_flat_and_a_leak_would_show(bench):
    memory = bench.measure_recurrent_memory(steps=40, every=10, shape=TINY_SEQUENCES)
    assert memory["steps"] == 40 and len(memory["rss_mb"]) == 5 and all(mb > 0 for mb in memory["rss_mb"])
    layer, x, delta = bench.build_recurrent("lstm", shape={**TINY_SEQUENCES, "batch": 16, "length": 32})

    def step():
        layer.forward(x)
        layer.backward(delta)

    # one step's arrays are tens of kB (16 x 32 x 4 x 6 floats the gates alone); 30 leaked steps would be
    # far above the bound, and recycling keeps it flat
    assert traced_growth(step) < 200_000
    kept = []
    assert traced_growth(lambda: kept.append(layer.forward(x).copy()) or step()) > 200_000
