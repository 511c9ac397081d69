"""Where a step of train-text's model goes, on each side: nnscratch per layer class (its forward and
backward wrapped in timers, summed over the blocks) and PyTorch per op (``torch.profiler``), at a
fixed thread count, from the same weights on the same windows as ``benchmark_text.py``.

    python scripts/benchmark_text_parts.py [FILE] [--model transformer] [--threads 2] [--steps 200]
        [--warmup 20] [--no-torch]

Without FILE: tiny shakespeare from train-text's cache (--data-dir, --mirror as train-text's). The
timers cost about a microsecond a call; the profiler slows PyTorch's step a little, so its step is
also timed without it.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import benchmark_text as bench  # noqa: E402
from nnscratch import protocol, text_training  # noqa: E402


def timed(owner, name: str, label: str, spent: collections.Counter, undo: list) -> None:
    """Wrap ``owner.name`` (a method or function) so that its time adds up in ``spent[label]``; what
    puts it back goes into ``undo``."""
    real, had, own = getattr(owner, name), name in vars(owner), vars(owner).get(name)
    undo.append(lambda: setattr(owner, name, own) if had else delattr(owner, name))

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - started

    setattr(owner, name, wrapper)


def nnscratch_parts(training, steps: int, warmup: int) -> dict:
    """{"step": mean seconds a step, part label: mean seconds a step}, the layers' classes timed per
    class (their forward and backward), clipping, the optimizer and the batch apart."""
    spent, undo = collections.Counter(), []
    classes = {type(layer) for layer in protocol.walk(training.net) if not getattr(layer, "layers", None)}
    try:
        for cls in sorted(classes, key=lambda c: c.__name__):
            timed(cls, "forward", f"{cls.__name__} forward", spent, undo)
            timed(cls, "backward", f"{cls.__name__} backward", spent, undo)
        timed(text_training, "clip_grad_norm", "clip_grad_norm", spent, undo)
        timed(training.optimizer, "step", f"{type(training.optimizer).__name__} step", spent, undo)
        timed(training.corpus, "batch", "the batch of windows", spent, undo)
        for index in range(warmup):
            training.step(index)
        spent.clear()
        started = time.perf_counter()
        for index in range(warmup, warmup + steps):
            training.step(index)
        total = time.perf_counter() - started
    finally:
        for put_back in reversed(undo):
            put_back()
    parts = {label: seconds / steps for label, seconds in spent.most_common()}
    parts["the rest (containers, the loop)"] = (total - sum(spent.values())) / steps
    return {"step": total / steps, **parts}


def torch_parts(torch, model: str, training, weights, corpus, config: dict, seed: int, steps: int, warmup: int):
    """(mean seconds a step without the profiler, the profiler's table of ops by self time)."""
    module = bench.torch_twin(torch, model, training.net, weights)
    torch_config = {**config, "iters": warmup + steps}
    def train(iters: int) -> float:  # the training steps only: no validation pass in the profile
        return bench.train_torch(torch, model, module, corpus, {**torch_config, "iters": iters}, seed, False)["seconds"]

    train(max(warmup, 1))
    plain = train(steps) / steps
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        train(max(steps // 2, 1))
    return plain, profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=16)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", default=None, help="a UTF-8 text (default: tiny shakespeare)")
    parser.add_argument("--model", choices=tuple(bench.PRESETS), default="transformer")
    parser.add_argument("--threads", type=int, default=2, help="numpy's BLAS threads and PyTorch's (default 2)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-torch", action="store_true", help="the nnscratch side only")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--mirror", action="append", dest="mirrors", default=None)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--steps and --threads must be >= 1, --warmup >= 0")
    from threadpoolctl import threadpool_limits

    corpus = bench.load_corpus(args.file, False, args.data_dir, args.mirrors)
    config = bench.recipe(args.model, corpus, args.warmup + args.steps)
    training, weights = bench.nnscratch_run(args.model, corpus, config, args.seed)
    with threadpool_limits(args.threads, "blas"):
        parts = nnscratch_parts(training, args.steps, args.warmup)
    print(f"nnscratch, {args.threads} threads: {1000 * parts.pop('step'):.1f} ms a step over {args.steps} steps")
    for label, seconds in parts.items():
        print(f"  {label:34s} {1000 * seconds:7.2f} ms")
    if not args.no_torch:
        import torch

        torch.set_num_threads(args.threads)
        fresh, weights = bench.nnscratch_run(args.model, corpus, config, args.seed)
        plain, table = torch_parts(torch, args.model, fresh, weights, corpus, config, args.seed, args.steps,
                                   args.warmup)
        print(f"PyTorch, {args.threads} threads: {1000 * plain:.1f} ms a step (without the profiler); its ops:")
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
