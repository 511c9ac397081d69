"""nn.fit's throughput quiet and with one core taken by another program: the table of issue 15.

The benchmark's MLP (784-256-10) and CNN (c8-pool-c16-pool-fc) on MNIST-shaped random data, batch
128, SGD lr 0.01 momentum 0.9, trained by ``nn.fit`` (no validation, no progress bar) in four ways,
alternating, repeat after repeat:

    auto     fit's default: a ThreadChooser picks numpy's BLAS threads as it trains
    fixed N  threads fixed at the count BLAS had at the start (what fit did before issue 15)
    fixed 1  one thread throughout (when N is not 1): with a core taken, the best a fixed count
             does, and so about the best a chooser can do

each quiet and with a busy-loop process pinned to one CPU for the duration of the fit call
(``BusyCore``, killed after it and stopping by itself after --busy-max-seconds in any case).
samples/s is the samples trained over fit's own epoch seconds, median over the repeats. Targets:
busy / quiet >= 0.55 (MLP) and >= 0.75 (CNN) with auto, and auto's quiet speed no lower than fixed's.

    python scripts/busy_fit.py [--samples 60000] [--epochs 2] [--repeats 3] [--only mlp,cnn] [--json PATH]

The figures only mean something on an otherwise quiet machine: the CPU share other processes took
during the quiet runs is printed with them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

import nnscratch as nn
from nnscratch.threads import thread_variable

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from benchmark_format import check_busy_max_seconds, load_average, only_names, report, share, tally  # noqa: E402
from benchmark_machine import BusyCore, blas_info, cpu_snapshot, loadavg, others_cpu_share  # noqa: E402
from benchmark_networks import build_nnscratch  # noqa: E402

TARGETS = {"mlp": 0.55, "cnn": 0.75}  # busy / quiet with auto


def blas_default_threads() -> int | None:
    counts = [lib.num_threads for lib in ThreadpoolController().select(user_api="blas").lib_controllers]
    return max(counts) if counts else None


def fit_once(network: str, x, y, epochs: int, threads) -> tuple[float, int | None]:
    """(samples/s over fit's epoch seconds, the chooser's final choice or None) of one fit call."""
    net, optimizer = build_nnscratch(network)
    history = nn.fit(net[:-2], net[-2:], optimizer, x, y, epochs=epochs, batch_size=128, rng=0,
                     progress=False, threads=threads)
    seconds = sum(record["seconds"] for record in history)
    return len(x) * epochs / seconds, getattr(threads, "chosen", None)


def measure(network: str, samples: int, epochs: int, repeats: int, fixed: int, max_seconds: float) -> dict:
    rng = np.random.default_rng(0)
    x = rng.random((samples, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, samples)
    ways = ("auto", "fixed", "one") if fixed != 1 else ("auto", "fixed")
    speeds = {(way, load): [] for way in ways for load in ("quiet", "busy")}
    chosen = {"quiet": [], "busy": []}
    cpu = {"quiet": [], "busy": []}
    description = None
    for repeat in range(repeats):
        for load in ("quiet", "busy"):
            for way in ways if repeat % 2 == 0 else reversed(ways):
                threads = {"auto": nn.ThreadChooser(), "fixed": fixed, "one": 1}[way]
                before = cpu_snapshot()
                if load == "busy":
                    with BusyCore(max_seconds=max_seconds) as busy:
                        speed, choice = fit_once(network, x, y, epochs, threads)
                    description = busy.describe()
                else:
                    speed, choice = fit_once(network, x, y, epochs, threads)
                cpu[load].append(others_cpu_share(before, cpu_snapshot()))
                speeds[way, load].append(speed)
                if way == "auto":
                    chosen[load].append(choice)
    result = {"target": TARGETS[network], "load": description, "chosen": chosen,
              "others_cpu_share": {load: _median(shares) for load, shares in cpu.items()}}
    for way in ways:
        quiet, busy = statistics.median(speeds[way, "quiet"]), statistics.median(speeds[way, "busy"])
        result[way] = {"quiet": quiet, "busy": busy, "ratio": busy / quiet,
                       "runs": {load: speeds[way, load] for load in ("quiet", "busy")}}
    result["meets_target"] = result["auto"]["ratio"] >= TARGETS[network]
    result["quiet_auto_over_fixed"] = result["auto"]["quiet"] / result["fixed"]["quiet"]
    # the best a fixed count does with a core taken: what a perfect chooser would get there
    result["busy_auto_over_one"] = result["auto"]["busy"] / result["one"]["busy"] if "one" in result else None
    return result


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def render(results: dict) -> str:
    s = results["settings"]
    lines = [
        f"nn.fit on MNIST-shaped random data: {s['samples']:,} samples x {s['epochs']} epochs, batch 128, "
        f"SGD lr 0.01 momentum 0.9; medians of {s['repeats']} repeats",
        f"numpy's BLAS: {results['blas']}, {results['default_threads']} threads by default"
        + (f"; {results['thread_variable']} is set, so auto changes nothing" if results["thread_variable"] else ""),
        f"load average (1, 5, 15 min): before {load_average(results['load_before'])}, "
        f"after {load_average(results['load_after'])}",
    ]
    first = next(iter(results["networks"].values()))
    lines.append(f"busy: {first['load']}")
    lines += ["", f"{'network':<8}{'threads':<10}{'quiet samples/s':>16}{'busy samples/s':>16}{'busy/quiet':>12}"
              f"{'target':>9}  result  chosen quiet; busy"]
    for name, row in results["networks"].items():
        for way in (w for w in ("auto", "fixed", "one") if w in row):
            r = row[way]
            label = {"auto": "auto", "fixed": f"fixed {results['default_threads']}", "one": "fixed 1"}[way]
            line = f"{name.upper():<8}{label:<10}{r['quiet']:>16,.0f}{r['busy']:>16,.0f}{r['ratio']:>12.2f}"
            if way == "auto":
                chosen = "; ".join(tally(row["chosen"][load]) for load in ("quiet", "busy"))
                line += f"{'>= ' + format(row['target'], 'g'):>9}  {'PASS' if row['meets_target'] else 'MISS':<6}  {chosen}"
            lines.append(line)
    lines.append("quiet speed, auto / fixed (target: not lower, within noise): "
                 + "; ".join(f"{n.upper()} {row['quiet_auto_over_fixed']:.2f}" for n, row in results["networks"].items()))
    if any(row["busy_auto_over_one"] is not None for row in results["networks"].values()):
        lines.append("busy speed, auto / fixed 1 (one thread: the best a fixed count does with a core taken): "
                     + "; ".join(f"{n.upper()} {row['busy_auto_over_one']:.2f}" for n, row in results["networks"].items()
                                 if row["busy_auto_over_one"] is not None))
    lines.append("CPU share other processes took, median over runs (quiet; busy, where the busy loop alone is "
                 f"1/{results['cores']} of it): "
                 + "; ".join(f"{n.upper()} {share(row['others_cpu_share']['quiet'])}; "
                             f"{share(row['others_cpu_share']['busy'])}" for n, row in results["networks"].items()))
    return "\n".join(lines)


def run(args) -> dict:
    import os

    default_threads = blas_default_threads()
    results = {"settings": {k: v for k, v in vars(args).items() if k != "json"}, "blas": blas_info()["library"],
               "default_threads": default_threads, "thread_variable": thread_variable(), "cores": os.cpu_count(),
               "load_before": loadavg(), "networks": {}}
    for network in args.only:
        results["networks"][network] = measure(network, args.samples, args.epochs, args.repeats,
                                               default_threads or 1, args.busy_max_seconds)
    results["load_after"] = loadavg()
    return results


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=60000, help="training samples per epoch (MNIST: 60000)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per fit call (the issue: 2)")
    parser.add_argument("--repeats", type=int, default=3, help="fit calls per way and load (median)")
    parser.add_argument("--only", default="mlp,cnn", help="comma-separated networks, of mlp, cnn")
    parser.add_argument("--busy-max-seconds", type=float, default=900.0,
                        help="the busy-loop process stops by itself after this long, even if never killed")
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    for name in ("samples", "epochs", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: expected a positive int, got {getattr(args, name)}")
    check_busy_max_seconds(parser, args.busy_max_seconds)
    args.only = only_names(parser, args.only, tuple(TARGETS))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    results = run(args)
    return report(render(results), results, args.json)


if __name__ == "__main__":
    sys.exit(main())
