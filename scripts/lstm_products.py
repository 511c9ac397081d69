"""The matrix products of one LSTM layer's forward and backward, alone: numpy (its BLAS) against
torch.mm, the same shapes, float32, at the same thread count (docs/benchmarks.md: the LSTM's floor).

    python scripts/lstm_products.py [--batch 32] [--steps 64] [--size 256] [--repeats 15] [--no-torch]

The products are those of nnscratch's fast LSTM (nnscratch/layers/recurrent.py) at N = batch,
T = steps, D = H = size: the input projection x W_ih^T (T*N x D @ D x 4H), one h W_hh^T (N x H @
H x 4H) per step forward and one dA W_hh (N x 4H @ 4H x H) per step backward, the two weight
gradients, the biases' (a sum over the rows) and dL/dx. Each side's best of --repeats runs is
printed; the element-wise work around them is what the layer adds.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def shapes(batch: int, steps: int, size: int) -> dict:
    rng = np.random.default_rng(0)

    def f(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    rows, gates = steps * batch, 4 * size
    return {"x": f(rows, size), "w_ih": f(gates, size), "w_hh": f(gates, size), "d_gates": f(rows, gates),
            "h": f(batch, size), "w_t": f(size, gates), "d_step": f(batch, gates), "hs": f(rows, size),
            "ones": np.ones(rows, np.float32), "steps": steps}


def numpy_products(a: dict):
    """The products of one forward and backward, in numpy, into preallocated outputs as the layer does."""
    rows, gates = a["x"].shape[0], a["w_ih"].shape[0]
    out = {"proj": np.empty((rows, gates), np.float32), "step": np.empty((a["h"].shape[0], gates), np.float32),
           "dh": np.empty(a["h"].shape, np.float32), "dw": np.empty(a["w_ih"].shape, np.float32),
           "dx": np.empty(a["x"].shape, np.float32), "db": np.empty(gates, np.float32)}

    def run():
        np.matmul(a["x"], a["w_ih"].T, out=out["proj"])
        for _ in range(a["steps"]):
            np.matmul(a["h"], a["w_t"], out=out["step"])
        for _ in range(a["steps"]):
            np.matmul(a["d_step"], a["w_hh"], out=out["dh"])
        np.matmul(a["d_gates"].T, a["x"], out=out["dw"])
        np.matmul(a["d_gates"].T, a["hs"], out=out["dw"])
        np.matmul(a["ones"], a["d_gates"], out=out["db"])  # the biases' gradient, a sum over the rows
        np.matmul(a["d_gates"], a["w_ih"], out=out["dx"])

    return run


def torch_products(torch, a: dict):
    t = {k: torch.from_numpy(v) for k, v in a.items() if isinstance(v, np.ndarray)}

    def run():
        torch.mm(t["x"], t["w_ih"].t())
        for _ in range(a["steps"]):
            torch.mm(t["h"], t["w_t"])
        for _ in range(a["steps"]):
            torch.mm(t["d_step"], t["w_hh"])
        torch.mm(t["d_gates"].t(), t["x"])
        torch.mm(t["d_gates"].t(), t["hs"])
        torch.mv(t["d_gates"].t(), t["ones"])
        torch.mm(t["d_gates"], t["w_ih"])

    return run


def best_seconds(run, repeats: int) -> float:
    for _ in range(3):
        run()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args(argv)
    for name in ("batch", "steps", "size", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: expected a positive int, got {getattr(args, name)}")
    arrays = shapes(args.batch, args.steps, args.size)
    sides = {"numpy": numpy_products(arrays)}
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("lstm_products: PyTorch is not installed; numpy's side only", file=sys.stderr)
        else:
            from threadpoolctl import threadpool_info

            counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
            torch.set_num_threads(max(counts or [1]))
            sides["torch.mm"] = torch_products(torch, arrays)
    print(f"the products of one LSTM forward and backward, N={args.batch}, T={args.steps}, D=H={args.size}, "
          f"float32, best of {args.repeats}:")
    for name, run in sides.items():
        print(f"  {name:9s} {best_seconds(run, args.repeats) * 1e3:8.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
