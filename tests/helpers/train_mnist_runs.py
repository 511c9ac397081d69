"""How the train-mnist tests run the command (tests/commands/test_train_mnist*.py): the options that
point it at a loopback mirror, metrics without their timings, one BLAS thread for bit-for-bit runs,
and a run to a saved checkpoint."""

import json

import nnscratch as nn
from nnscratch.cli import train_mnist_main


def options(data, *extra):
    return ["--data-dir", str(data.data_dir), "--mirror", data.url, "--quiet", *extra]


def without_timings(metrics):
    metrics = json.loads(json.dumps(metrics))
    for key in ("train_seconds", "samples_per_second"):
        metrics.pop(key)
    for record in metrics["history"]:
        record.pop("seconds")
    return metrics


# Bit for bit needs one BLAS thread count throughout: OpenBLAS rounds some products differently
# at another count, and --threads auto (the default) may change it as the machine's load changes.
FIXED_THREADS = ("--threads", "1")


def run_to_params(synthetic_mnist, tmp_path, name, *extra):
    path = tmp_path / f"{name}.npz"
    assert train_mnist_main(options(synthetic_mnist, "--model", "mlp", "--batch-size", "64", *extra, *FIXED_THREADS,
                                    "--save", str(path), "--metrics", str(tmp_path / f"{name}.json"))) == 0
    return path, [p.copy() for p in nn.load(path).parameters]
