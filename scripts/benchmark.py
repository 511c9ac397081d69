"""Training-step throughput of nnscratch next to PyTorch on the same CPU, in one process (issue 5).

Networks (batch 128, float32, SoftmaxCrossEntropy + Mean, SGD lr 0.01 momentum 0.9):

    MLP  Flatten, Linear 784->256, ReLU, Linear 256->10                           target >= 1.5
    CNN  Conv2D 1->8 3x3 pad 1, ReLU, MaxPool2D 2, Conv2D 8->16 3x3 pad 1, ReLU,
         MaxPool2D 2, Flatten, Linear 784->10                                     target >= 0.75

PyTorch runs the same architecture from the same initial weights (nn.CrossEntropyLoss,
torch.optim.SGD) with as many threads as numpy's BLAS uses. The two alternate, run by run, each
run preceded by at least 0.2 s of untimed warm-up steps (OpenBLAS's idle threads spin for
~0.1 s and would slow the next run's timed steps); the figures are medians over the runs. Also: Conv2D forward
+ backward (batch 64, 28x28, 1->8 3x3 pad 1) against the naive loop twin in tests/naive.py
(target >= 100x), and the resident memory of nnscratch training across epochs.

    python scripts/benchmark.py [--repeats 9] [--json figures.json]    (pip install -e .[bench] for torch)

Machines shared with other work give noisy timings: the load average, and the share of the CPUs
that other processes took during each network's timed runs, are printed with the figures.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import nnscratch as nn

TARGETS = {"mlp": 1.5, "cnn": 0.75, "conv2d": 100.0}
LR, MOMENTUM = 0.01, 0.9
REPO = Path(__file__).resolve().parent.parent


# -- the machine -------------------------------------------------------------------------------
def blas_info() -> dict:
    """numpy's BLAS library and how many threads it uses (asked from the loaded library itself)."""
    info = {"library": "unknown", "threads": None, "threads_source": "unknown"}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["library"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older numpy: no dict mode; the thread count below still works
        pass
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "blas" in line.lower() or "mkl" in line.lower()}
    except OSError:
        paths = set()
    getters = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
               "openblas_get_num_threads64_", "openblas_get_num_threads", "MKL_Get_Max_Threads")
    # numpy's own copy first: torch, when imported, may bring a BLAS of its own.
    for path in sorted((p for p in paths if p.startswith("/")), key=lambda p: ("numpy" not in p, p)):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in getters:
            if hasattr(library, name):
                info["threads"] = int(getattr(library, name)())
                info["threads_source"] = f"{name}() in {os.path.basename(path)}"
                return info
    for variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(variable, "").isdigit():
            info["threads"], info["threads_source"] = int(os.environ[variable]), f"${variable}"
            return info
    return info


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def rss_bytes() -> int:
    """Resident memory of this process now (Linux /proc/self/statm; elsewhere the peak, from resource)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        import resource

        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def cpu_snapshot() -> tuple:
    """(CPU seconds used by the whole machine, by this process, wall clock) now.

    Two snapshots tell how much of the CPUs *other* processes used in between: the noise that a
    load average, a minute-long mean, only hints at. The machine's figure is None off Linux.
    """
    own = os.times()
    try:
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:]]
        busy = (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
    except (OSError, ValueError, IndexError):
        busy = None
    return busy, own.user + own.system, time.perf_counter()


def others_cpu_share(before: tuple, after: tuple) -> float | None:
    """Fraction of all CPUs' time that other processes used between two ``cpu_snapshot``s."""
    if before[0] is None or after[0] is None or after[2] <= before[2]:
        return None
    others = (after[0] - before[0]) - (after[1] - before[1])
    return min(max(others / ((after[2] - before[2]) * (os.cpu_count() or 1)), 0.0), 1.0)


def load_torch():
    """(torch, None) when it imports, else (None, the reason)."""
    try:
        import torch
    except ImportError as error:
        return None, f"torch is not installed ({error}); `pip install -e .[bench]` adds that column"
    return torch, None


# -- the networks, the same in both frameworks --------------------------------------------------
def build_nnscratch(network: str, seed: int = 0):
    """The network with its loss (SoftmaxCrossEntropy + Mean) and its SGD optimizer."""
    rng = np.random.default_rng(seed)
    if network == "mlp":
        layers = [nn.Flatten(), nn.Linear(784, 256, rng=rng), nn.ReLU(), nn.Linear(256, 10, rng=rng)]
    elif network == "cnn":
        layers = [
            nn.Conv2D(1, 8, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2D(2),
            nn.Conv2D(8, 16, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2D(2),
            nn.Flatten(), nn.Linear(784, 10, rng=rng),
        ]
    else:
        raise ValueError(f"benchmark: network must be 'mlp' or 'cnn', got {network!r}")
    net = nn.Sequential(*layers, nn.SoftmaxCrossEntropy(), nn.Mean())
    return net, nn.SGD(net, lr=LR, momentum=MOMENTUM)


def build_torch(torch, net):
    """PyTorch's twin of an nnscratch network (without its loss layers), starting from its weights."""
    modules = []
    for layer in net.layers:
        if isinstance(layer, nn.Linear):
            module = torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
        elif isinstance(layer, nn.Conv2D):
            module = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                     stride=layer.stride, padding=layer.padding, bias=layer.bias is not None)
        elif isinstance(layer, nn.MaxPool2D):
            module = torch.nn.MaxPool2d(layer.kernel_size, layer.stride)
        elif isinstance(layer, nn.ReLU):
            module = torch.nn.ReLU()
        elif isinstance(layer, nn.Flatten):
            module = torch.nn.Flatten()
        elif isinstance(layer, (nn.SoftmaxCrossEntropy, nn.Mean)):
            continue  # torch.nn.CrossEntropyLoss does both
        else:
            raise TypeError(f"benchmark: no PyTorch twin for {type(layer).__name__}")
        with torch.no_grad():
            for param, value in zip(module.parameters(), layer.parameters):
                # nnscratch's Linear keeps W as (in, out), PyTorch's as (out, in); Conv2D agrees.
                value = value.T if isinstance(layer, nn.Linear) and value.ndim == 2 else value
                param.copy_(torch.from_numpy(np.ascontiguousarray(value)))
        modules.append(module)
    model = torch.nn.Sequential(*modules)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    return model, optimizer, torch.nn.CrossEntropyLoss()


def make_batches(count: int, batch: int, seed: int = 1):
    """``count`` (images (batch, 1, 28, 28) float32, labels (batch,) int64) pairs, shared by both."""
    rng = np.random.default_rng(seed)
    return [(rng.random((batch, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, batch))
            for _ in range(count)]


def nnscratch_step(net, optimizer, x, labels, full_backward=False):
    """One training step. Nobody uses dL/dx of the data, so it is skipped, as PyTorch does."""
    loss = net.forward(x, labels)
    net.backward(1.0, input_delta=full_backward)
    optimizer.step()
    return loss


def torch_step(model, optimizer, loss_fn, x, labels):
    optimizer.zero_grad()
    loss = loss_fn(model(x), labels)
    loss.backward()
    optimizer.step()
    return loss


# -- measuring ---------------------------------------------------------------------------------
def samples_per_second(step, batches, steps: int, warmup: int, warmup_seconds: float = 0.0) -> float:
    """Run untimed warm-up steps (at least ``warmup`` of them and ``warmup_seconds`` of them), then
    ``steps`` timed ones cycling through ``batches``; return samples per second.

    The warm-up time is for fairness: after its last call OpenBLAS keeps a worker thread spinning
    on a core for ~0.1 s (measured here), which must not slow down the timed steps of whichever
    framework runs next. (Sleeping instead made later runs erratic: after an idle pause the
    BLAS threads sometimes share one core.)
    """
    start, i = time.perf_counter(), 0
    while i < warmup or time.perf_counter() - start < warmup_seconds:
        step(*batches[i % len(batches)])
        i += 1
    start = time.perf_counter()
    for i in range(steps):
        step(*batches[i % len(batches)])
    elapsed = time.perf_counter() - start
    return steps * len(batches[0][1]) / elapsed


def compare_network(network: str, torch=None, repeats=7, steps=50, warmup=5, batch=128,
                    full_backward=False, warmup_seconds=0.2) -> dict:
    """Alternating runs of nnscratch and PyTorch (who goes first swaps each repeat); medians."""
    net, optimizer = build_nnscratch(network)
    batches = make_batches(4, batch)
    runners = {"nnscratch": lambda x, y: nnscratch_step(net, optimizer, x, y, full_backward)}
    if torch is not None:
        model, torch_optimizer, loss_fn = build_torch(torch, net)
        torch_batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]
        runners["pytorch"] = lambda x, y: torch_step(model, torch_optimizer, loss_fn, x, y)
    runs = {name: [] for name in runners}
    before = cpu_snapshot()
    for repeat in range(repeats):
        order = list(runners) if repeat % 2 == 0 else list(reversed(runners))
        for name in order:
            data = torch_batches if name == "pytorch" else batches
            runs[name].append(samples_per_second(runners[name], data, steps, warmup, warmup_seconds))
    result = {
        "target": TARGETS[network], "steps": steps, "repeats": repeats, "batch": batch,
        "nnscratch": _summary(runs["nnscratch"]),
        "pytorch": None, "ratio": None, "pair_ratios": None, "best_ratio": None, "meets_target": None,
        "others_cpu_share": others_cpu_share(before, cpu_snapshot()),
    }
    if torch is not None:
        result["pytorch"] = _summary(runs["pytorch"])
        # The fastest run is the one least disturbed by anything else on the machine.
        result["best_ratio"] = result["nnscratch"]["best"] / result["pytorch"]["best"]
        result["ratio"] = result["nnscratch"]["median"] / result["pytorch"]["median"]
        # Each repeat's two runs are next to each other in time: their ratio sees the same load.
        result["pair_ratios"] = [a / b for a, b in zip(runs["nnscratch"], runs["pytorch"])]
        result["meets_target"] = result["ratio"] >= TARGETS[network]
    return result


def _summary(runs: list) -> dict:
    return {"median": statistics.median(runs), "best": max(runs), "runs": runs}


def load_naive():
    """tests/naive.py (the loop references), or None when the checkout has no tests folder."""
    path = REPO / "tests" / "naive.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("nnscratch_tests_naive", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compare_conv(repeats=20, naive_repeats=1, batch=64) -> dict:
    """Conv2D 1->8 3x3 pad 1 forward + backward on (batch, 1, 28, 28), fast layer vs naive loops."""
    rng = np.random.default_rng(2)
    layer = nn.Conv2D(1, 8, 3, padding=1, rng=rng)
    x = rng.standard_normal((batch, 1, 28, 28), dtype=np.float32)
    delta = rng.standard_normal((batch, 8, 28, 28), dtype=np.float32)

    def fast():
        layer.forward(x)
        layer.backward(delta)

    fast()  # warm-up: builds the layer's buffers
    fast_times = [_seconds(fast) for _ in range(repeats)]
    result = {"batch": batch, "target": TARGETS["conv2d"], "repeats": repeats,
              "fast_seconds": statistics.median(fast_times), "naive_seconds": None,
              "speedup": None, "meets_target": None, "skipped": None}
    naive = load_naive()
    if naive is None:
        result["skipped"] = f"no {REPO / 'tests' / 'naive.py'} (the naive reference lives in the tests)"
        return result

    def slow():
        naive.naive_conv2d_forward(x, layer.weight, layer.bias, stride=1, padding=1)
        naive.naive_conv2d_backward(x, layer.weight, delta, stride=1, padding=1)

    result["naive_repeats"] = naive_repeats
    result["naive_seconds"] = statistics.median(_seconds(slow) for _ in range(naive_repeats))
    result["speedup"] = result["naive_seconds"] / result["fast_seconds"]
    result["meets_target"] = result["speedup"] >= TARGETS["conv2d"]
    return result


def _seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def measure_memory(network: str, epochs=5, steps=40, batch=128) -> dict:
    """Resident memory of nnscratch training after each of ``epochs`` epochs of ``steps`` steps.

    One epoch runs first, unmeasured, so the buffers layers keep from step to step exist at the
    baseline; from then on a leak shows as steady growth, a bounded loop as a flat line.
    """
    net, optimizer = build_nnscratch(network)
    batches = make_batches(8, batch, seed=3)

    def epoch():
        for i in range(steps):
            nnscratch_step(net, optimizer, *batches[i % len(batches)])

    epoch()
    rss = [rss_bytes()]
    for _ in range(epochs):
        epoch()
        rss.append(rss_bytes())
    growth = rss[-1] - rss[0]
    return {"epochs": epochs, "steps_per_epoch": steps, "rss_mb": [r / 2**20 for r in rss],
            "growth_mb": growth / 2**20, "growth_per_step_bytes": growth / (epochs * steps)}


# -- reporting ---------------------------------------------------------------------------------
def render(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores; numpy {m['numpy']} ({m['blas']}, "
        f"{m['blas_threads']} threads, from {m['blas_threads_source']}); "
        + (f"torch {m['torch']} ({m['torch_threads']} threads, set to match numpy's BLAS)"
           if m["torch"] else "torch: not installed"),
        f"load average (1, 5, 15 min): before {_load(results['load_before'])}, after {_load(results['load_after'])}",
    ]
    if results["torch_skipped"]:
        lines.append(f"skipping the PyTorch column: {results['torch_skipped']}")
    lines += ["", f"{'network':<8}{'nnscratch samples/s':>21}{'PyTorch samples/s':>19}"
              f"{'ratio':>8}{'target':>9}  result  {'best runs ratio':>15}  CPU used by others"]
    for name, row in results["networks"].items():
        torch_speed = f"{row['pytorch']['median']:,.0f}" if row["pytorch"] else "skipped"
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "-"
        best = f"{row['best_ratio']:.2f}" if row["best_ratio"] is not None else "-"
        verdict = "-" if row["meets_target"] is None else ("PASS" if row["meets_target"] else "MISS")
        lines.append(f"{name.upper():<8}{row['nnscratch']['median']:>21,.0f}{torch_speed:>19}{ratio:>8}"
                     f"{'>= ' + format(row['target'], 'g'):>9}  {verdict:<6}  {best:>15}  "
                     f"{_share(row['others_cpu_share'])}")
    conv = results.get("conv2d")
    if conv:
        lines.append("")
        head = f"Conv2D 1->8 3x3 pad 1, forward + backward, batch {conv['batch']}: fast {conv['fast_seconds'] * 1e3:.2f} ms"
        if conv["skipped"]:
            lines.append(f"{head}; naive reference skipped: {conv['skipped']}")
        else:
            lines.append(f"{head}, naive loops {conv['naive_seconds']:.2f} s -> {conv['speedup']:,.0f}x "
                         f"faster (target >= {conv['target']:g}x)  {'PASS' if conv['meets_target'] else 'MISS'}")
    for name, mem in results.get("memory", {}).items():
        trace = " ".join(f"{mb:.1f}" for mb in mem["rss_mb"])
        lines.append(f"{name.upper()} training RSS after each epoch of {mem['steps_per_epoch']} steps (MB): "
                     f"{trace}; growth {mem['growth_mb']:+.2f} MB ({mem['growth_per_step_bytes']:+,.0f} B/step)")
    lines.append(f"samples/s: medians of {results['settings']['repeats']} alternating runs; ratio = nnscratch / "
                 "PyTorch (the target is on it); best runs ratio = fastest run / fastest run")
    return "\n".join(lines)


def _share(value) -> str:
    return "unknown" if value is None else f"{value:.0%}"


def _load(values) -> str:
    return ", ".join(f"{v:.2f}" for v in values) if values else "unknown"


def write_json(path, results: dict) -> None:
    """Write the figures to ``path`` atomically: a temp file in the same folder, then os.replace."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temp.write_text(json.dumps(results, indent=2) + "\n")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def loadavg():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def run(args) -> dict:
    """Everything the command measures, as one JSON-ready dict."""
    blas = blas_info()
    torch, skipped = (None, "--no-torch given") if args.no_torch else load_torch()
    if torch is not None and blas["threads"]:
        torch.set_num_threads(blas["threads"])
    results = {
        "machine": {
            "cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "blas": blas["library"], "blas_threads": blas["threads"],
            "blas_threads_source": blas["threads_source"],
            "torch": torch.__version__ if torch else None,
            "torch_threads": torch.get_num_threads() if torch else None,
        },
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "torch_skipped": skipped,
        "load_before": loadavg(),
        "networks": {},
    }
    for network, steps in (("mlp", args.mlp_steps), ("cnn", args.cnn_steps)):
        if network in args.only:
            results["networks"][network] = compare_network(
                network, torch, args.repeats, steps, args.warmup, args.batch, args.full_backward,
                args.warmup_seconds)
    if "conv" in args.only:
        results["conv2d"] = compare_conv(args.conv_repeats, args.naive_repeats)
    if "memory" in args.only:
        networks = [n for n in ("mlp", "cnn") if n in args.only] or ["mlp", "cnn"]
        epoch_steps = {"mlp": 4 * args.mlp_steps, "cnn": 2 * args.cnn_steps}
        results["memory"] = {n: measure_memory(n, args.memory_epochs, epoch_steps[n], args.batch)
                             for n in networks}
    results["load_after"] = loadavg()
    return results


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per framework and network (median)")
    parser.add_argument("--mlp-steps", type=int, default=100, help="timed training steps per MLP run")
    parser.add_argument("--cnn-steps", type=int, default=20, help="timed training steps per CNN run")
    parser.add_argument("--warmup", type=int, default=5, help="minimum untimed steps before every run")
    parser.add_argument("--warmup-seconds", type=float, default=0.2,
                        help="minimum untimed warm-up per run; covers the other library's still-spinning threads")
    parser.add_argument("--batch", type=int, default=128, help="batch size of the networks (the issue: 128)")
    parser.add_argument("--conv-repeats", type=int, default=20, help="timed calls of the fast Conv2D")
    parser.add_argument("--naive-repeats", type=int, default=1, help="timed calls of the naive Conv2D")
    parser.add_argument("--memory-epochs", type=int, default=5, help="measured epochs of the memory check (an epoch: 4x --mlp-steps or 2x --cnn-steps steps)")
    parser.add_argument("--only", default="mlp,cnn,conv,memory",
                        help="comma-separated parts to run, of mlp, cnn, conv, memory (default: all)")
    parser.add_argument("--full-backward", action="store_true",
                        help="also compute dL/dx of the data in nnscratch (PyTorch never does)")
    parser.add_argument("--no-torch", action="store_true", help="leave out the PyTorch column")
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    for name in ("repeats", "mlp_steps", "cnn_steps", "batch", "conv_repeats", "naive_repeats", "memory_epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: expected a positive int, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup: expected a non-negative int, got {args.warmup}")
    if not 0 <= args.warmup_seconds <= 60:
        parser.error(f"--warmup-seconds: expected seconds between 0 and 60, got {args.warmup_seconds}")
    args.only = [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = sorted(set(args.only) - {"mlp", "cnn", "conv", "memory"})
    if unknown or not args.only:
        parser.error(f"--only: expected names among mlp, cnn, conv, memory, got {', '.join(unknown) or 'none'}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    results = run(args)
    print(render(results))
    if args.json:
        write_json(args.json, results)
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
