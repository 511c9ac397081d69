"""train-text's model trained in nnscratch and in PyTorch, one right after the other (issue 23).

Both sides train the same network from the same initial weights with the same recipe, on the same
windows, for the same number of iterations, and are then measured on the whole validation split:

- the windows: one ``CharCorpus`` (or ``LineCorpus``) and, for each side, a generator seeded as
  train-text seeds its own, so the two draw the very same batches;
- the network: the preset's, built by nnscratch with train-text's seed; PyTorch's twin starts from
  its weights. The transformer's twin is a GPT written here (token and position embeddings,
  pre-LayerNorm blocks with PyTorch's ``scaled_dot_product_attention``, as nanoGPT uses it); the
  recurrent ones are ``nnscratch.to_torch`` of the network (``nn.LSTM``, ``nn.GRU``, ``nn.RNN``);
- the recipe: the preset's optimizer (AdamW with decay on matrices only as two parameter groups,
  RMSprop or Adagrad), its schedule set before every step, ``clip_grad_norm_`` at its norm.

The time is the training iterations alone (the batches drawn, forward, backward, clipping, step), on
each side; the losses are over the whole validation split, in nats per character. nnscratch runs as
train-text does: by default each batch shared by one process per CPU (``--processes``), each with
BLAS at one thread; with --processes 1, numpy's BLAS threads chosen by its ThreadChooser, unless
--threads fixes them. PyTorch gets --threads, or as many threads as numpy's BLAS has.

    python scripts/benchmark_text.py [FILE] [--model transformer] [--iters 2000] [--seed 0]
        [--order nnscratch,pytorch] [--lines] [--json figures.json]

Without FILE: tiny shakespeare from train-text's cache (--data-dir, downloaded there on first use;
--mirror as train-text's). PyTorch is needed (pip install -e ".[bench]").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import nnscratch as nn  # noqa: E402
from nnscratch.data.text import IGNORE_INDEX, CharCorpus, LineCorpus, read_text  # noqa: E402
from nnscratch.text_presets import PRESETS  # noqa: E402
from nnscratch.text_training import TextTraining, seeded  # noqa: E402


# -- the data and the nnscratch side -----------------------------------------------------------------
def load_corpus(path=None, lines=False, data_dir=None, mirrors=None):
    if path:
        text = read_text(path)
    else:
        from nnscratch.data.shakespeare import load_tiny_shakespeare

        text = load_tiny_shakespeare(data_dir, mirrors)
    return LineCorpus(text) if lines else CharCorpus(text)


def recipe(model: str, corpus, iters=None, lines=False) -> dict:
    """train-text's defaults for ``model`` on ``corpus``: batch and block sizes, iterations, lr."""
    preset = PRESETS[model]
    return {"batch_size": preset.lines_batch_size if lines else preset.batch_size,
            "block_size": corpus.longest + 1 if lines else preset.block_size,
            "iters": iters or (preset.lines_iters if lines else preset.iters),
            "lr": preset.lines_lr if lines else preset.lr}


def nnscratch_run(model: str, corpus, config: dict, seed: int, threads="auto") -> tuple:
    """(TextTraining, its untrained weights): the network and windows exactly as train-text makes them."""
    preset = PRESETS[model]
    init_rng, window_rng = seeded(seed)
    net = preset.build(len(corpus.vocabulary), config["block_size"], rng=init_rng)
    training = TextTraining(net, preset.optimizer(net, config["lr"]), corpus, window_rng,
                            batch_size=config["batch_size"], block_size=config["block_size"],
                            schedule=preset.schedule(config["lr"], config["iters"]),
                            max_grad_norm=preset.max_grad_norm, seed=seed)
    return training, [p.copy() for p in net.parameters]


def train_nnscratch(training, iters: int, threads="auto", processes="auto") -> dict:
    """Train as train-text does (its --threads and --processes rules), then measure."""
    from nnscratch.commands.train_text_options import processes_for
    from nnscratch.threads import training_threads

    options = argparse.Namespace(threads=threads, processes=processes)
    processes, threads = processes_for(options, {"iters": iters, "batch_size": training.batch_size})
    losses = []
    with training.use_processes(processes, 1 if threads == "auto" else threads):
        with training_threads(threads, "benchmark") as chooser:
            started = time.perf_counter()
            for index in range(iters):
                losses.append(training.step(index))
                chooser.step()
            seconds = time.perf_counter() - started
        validation = training.validation_loss()
    return {"seconds": seconds, "last_losses": float(np.mean(losses[-50:])), "val_loss": validation,
            "processes": processes}


# -- the PyTorch side --------------------------------------------------------------------------------
def torch_gpt(torch, net):
    """A GPT of the same architecture as the nnscratch ``net`` (without its loss), in PyTorch."""
    functional = torch.nn.functional

    class CausalSelfAttention(torch.nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.in_proj = torch.nn.Linear(dim, 3 * dim)  # PyTorch's in_proj layout: (3E, E), as nnscratch's
            self.out_proj = torch.nn.Linear(dim, dim)

        def forward(self, x):
            batch, length, dim = x.shape
            split = self.in_proj(x).view(batch, length, 3, self.heads, dim // self.heads)
            q, k, v = split.permute(2, 0, 3, 1, 4)  # each (N, heads, T, head size)
            mixed = functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.out_proj(mixed.transpose(1, 2).reshape(batch, length, dim))

    class Block(torch.nn.Module):
        def __init__(self, dim, heads, hidden):
            super().__init__()
            self.ln_1, self.attn, self.ln_2 = torch.nn.LayerNorm(dim), CausalSelfAttention(dim, heads), \
                torch.nn.LayerNorm(dim)
            self.fc, self.proj = torch.nn.Linear(dim, hidden), torch.nn.Linear(hidden, dim)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.proj(functional.gelu(self.fc(self.ln_2(x)), approximate="tanh"))

    class GPT(torch.nn.Module):
        def __init__(self, vocab, context, dim, heads, hidden, layers):
            super().__init__()
            self.tokens, self.positions = torch.nn.Embedding(vocab, dim), torch.nn.Embedding(context, dim)
            self.blocks = torch.nn.ModuleList([Block(dim, heads, hidden) for _ in range(layers)])
            self.ln_f, self.head = torch.nn.LayerNorm(dim), torch.nn.Linear(dim, vocab)

        def forward(self, ids):
            x = self.tokens(ids) + self.positions.weight[: ids.shape[1]]
            for block in self.blocks:
                x = block(x)
            return self.head(self.ln_f(x))

    tokens, positions, *blocks, _, _ = net.layers[:-2]  # the blocks, then the final LayerNorm and the head
    first = blocks[0]
    return GPT(tokens.num_embeddings, positions.max_len, first.dim, first.num_heads,
               first[1][1].parameters[0].shape[1], len(blocks))


def torch_twin(torch, model: str, net, weights):
    """PyTorch's network for ``net`` (the model part), starting from ``weights`` (nnscratch's order)."""
    module = torch_gpt(torch, net) if model == "transformer" else nn.to_torch(net[:-2])
    linear = {id(layer.parameters[0]) for layer in nn.protocol.walk(net) if isinstance(layer, nn.Linear)}
    params = list(module.parameters())
    if [tuple(p.shape) for p in params] != [(a.T if id(p) in linear else a).shape
                                            for p, a in zip(net.parameters, weights)]:
        raise RuntimeError("the PyTorch twin's parameters do not match nnscratch's one to one")
    with torch.no_grad():
        for param, p, value in zip(params, net.parameters, weights):
            param.copy_(torch.from_numpy(np.ascontiguousarray(value.T if id(p) in linear else value)))
    return module


def torch_optimizer(torch, model: str, module, lr: float):
    """The preset's optimizer over ``module``'s parameters, with the preset's settings."""
    params = list(module.parameters())
    if model == "transformer":  # nanoGPT's two groups: decay on matrices only
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99))
    if model == "rnn":
        return torch.optim.Adagrad(params, lr=lr)
    return torch.optim.RMSprop(params, lr=lr, alpha=0.95)


def train_torch(torch, model: str, module, corpus, config: dict, seed: int, validate: bool = True) -> dict:
    """PyTorch's side: the iterations timed, then (with ``validate``) the whole-split validation loss."""
    preset = PRESETS[model]
    optimizer = torch_optimizer(torch, model, module, config["lr"])
    schedule = preset.schedule(config["lr"], config["iters"])
    _, rng = seeded(seed)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
    losses = []
    started = time.perf_counter()
    for index in range(config["iters"]):
        for group in optimizer.param_groups:
            group["lr"] = schedule(index)
        x, y = corpus.batch(rng, config["batch_size"], config["block_size"])
        logits = module(torch.from_numpy(x))
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), preset.max_grad_norm)
        optimizer.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "last_losses": float(np.mean(losses[-50:])),
            "val_loss": torch_validation_loss(torch, module, corpus, config["block_size"]) if validate else None}


def torch_validation_loss(torch, module, corpus, block_size: int) -> float:
    from nnscratch.text_training import VALIDATION_BATCH

    total, counted = 0.0, 0
    with torch.no_grad():
        for x, y in corpus.validation_batches(block_size, VALIDATION_BATCH):
            logits = module(torch.from_numpy(x))
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                     torch.from_numpy(y).reshape(-1), reduction="sum",
                                                     ignore_index=IGNORE_INDEX)
            total, counted = total + loss.item(), counted + int((y != IGNORE_INDEX).sum())
    return total / counted


# -- the run -----------------------------------------------------------------------------------------
def compare(torch, model: str, corpus, seed: int, iters=None, order=("nnscratch", "pytorch"), threads=None,
            lines=False, processes="auto") -> dict:
    config = recipe(model, corpus, iters, lines)
    training, weights = nnscratch_run(model, corpus, config, seed)
    if threads is not None:
        torch.set_num_threads(threads)
    results = {"model": model, "seed": seed, "config": config, "torch_threads": torch.get_num_threads(),
               "load_before": list(os.getloadavg())}
    for side in order:
        if side == "nnscratch":
            results["nnscratch"] = train_nnscratch(training, config["iters"], "auto" if threads is None else threads,
                                                   processes)
        else:
            module = torch_twin(torch, model, training.net, weights)
            results["pytorch"] = train_torch(torch, model, module, corpus, config, seed)
    results["load_after"] = list(os.getloadavg())
    if "nnscratch" in results and "pytorch" in results:
        results["ratio"] = results["nnscratch"]["seconds"] / results["pytorch"]["seconds"]
    return results


def render(results: dict) -> str:
    config = results["config"]
    lines = [f"{results['model']}, seed {results['seed']}: {config['iters']} iterations of batch {config['batch_size']} "
             f"x {config['block_size']} characters, lr {config['lr']:g}; PyTorch {results['torch_threads']} threads"]
    for side, shown in (("nnscratch", "nnscratch:"), ("pytorch", "PyTorch:  ")):
        if side == "nnscratch" and side in results and results[side]["processes"] > 1:
            shown = f"nnscratch ({results[side]['processes']} processes):"
        if side in results:
            seconds = results[side]["seconds"]
            lines.append(f"  {shown} {seconds:7.1f} s training ({1000 * seconds / config['iters']:.1f} ms an "
                         f"iteration), validation loss {results[side]['val_loss']:.4f} nats/char over the whole split")
    if "ratio" in results:
        lines.append(f"  time ratio nnscratch / PyTorch: {results['ratio']:.2f} (target <= 1.33; aim <= 1.0)")
    lines.append(f"  load average before {results['load_before'][0]:.2f}, after {results['load_after'][0]:.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", default=None, help="a UTF-8 text (default: tiny shakespeare)")
    parser.add_argument("--model", choices=tuple(PRESETS), default="transformer")
    parser.add_argument("--iters", type=int, default=None, help="iterations (default: the model's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--order", default="nnscratch,pytorch", help="which side trains first; one side alone "
                        "(pytorch) times that side only, e.g. right after the train-text command")
    parser.add_argument("--threads", type=int, default=None, help="fix both sides' threads (default: nnscratch "
                        "chooses as train-text does, PyTorch takes numpy's BLAS count)")
    parser.add_argument("--processes", default="auto", help="nnscratch's processes, as train-text's --processes "
                        "(default: auto, as train-text)")
    parser.add_argument("--lines", action="store_true", help="line mode, as train-text --lines")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--mirror", action="append", dest="mirrors", default=None)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    order = tuple(side.strip() for side in args.order.split(","))
    if sorted(order) not in (["nnscratch", "pytorch"], ["nnscratch"], ["pytorch"]):
        parser.error(f"--order must name nnscratch or pytorch or both, once each, got {args.order!r}")
    if args.iters is not None and args.iters < 1:
        parser.error("--iters must be >= 1")
    try:
        import torch
    except ImportError:
        print("benchmark_text: PyTorch is not installed (pip install -e '.[bench]')", file=sys.stderr)
        return 1
    if args.threads is None:
        from threadpoolctl import threadpool_info

        counts = [info["num_threads"] for info in threadpool_info() if info.get("user_api") == "blas"]
        torch.set_num_threads(max(counts or [1]))
    corpus = load_corpus(args.file, args.lines, args.data_dir, args.mirrors)
    processes = args.processes if args.processes == "auto" else int(args.processes)
    results = compare(torch, args.model, corpus, args.seed, args.iters, order, args.threads, args.lines, processes)
    print(render(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(math.isfinite(results[side]["val_loss"]) for side in order) else 1


if __name__ == "__main__":
    sys.exit(main())
