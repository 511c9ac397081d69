"""The GPT row of scripts/benchmark.py: nanoGPT's CPU configuration as a stack of TransformerBlocks,
in nnscratch and, from the same weights, in PyTorch (a model of the same architecture written here).

    4 TransformerBlocks (128 wide, 4 heads, causal, MLP 512, no dropout), LayerNorm, Linear 128 -> 65,
    SoftmaxCrossEntropy + Mean over the 12 x 64 tokens; one step = forward, backward, AdamW

The token embedding is left out on both sides: the input is a float (12, 64, 128) batch, and
PyTorch's input requires its gradient, as the output of an embedding would, so both compute the
same gradients (nnscratch's full backward). The logits (N, T, 65) are scored as the (N*T, 65)
matrix of their rows (the same numbers as scoring (N, T, V) with (N, T) targets).
"""

from __future__ import annotations

import numpy as np

import nnscratch as nn
from benchmark_networks import TARGETS, compare_runs, measure_step_memory

GPT = {"blocks": 4, "dim": 128, "heads": 4, "context": 64, "batch": 12, "vocab": 65}
ADAMW = {"lr": 1e-3, "betas": (0.9, 0.99), "weight_decay": 0.1}


def build_nnscratch_gpt(seed: int = 0, dtype=np.float32):
    """(stack, loss, AdamW): the blocks, final LayerNorm and head; SoftmaxCrossEntropy + Mean."""
    rng = np.random.default_rng(seed)
    dim = GPT["dim"]
    blocks = [nn.TransformerBlock(dim, GPT["heads"], dtype=dtype, rng=rng) for _ in range(GPT["blocks"])]
    stack = nn.Sequential(*blocks, nn.LayerNorm(dim, dtype=dtype), nn.Linear(dim, GPT["vocab"], dtype=dtype, rng=rng))
    return stack, nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean()), nn.AdamW(stack, **ADAMW)


def gpt_batches(count: int, batch: int = GPT["batch"], seed: int = 1, dtype=np.float32):
    """``count`` (x (batch, context, dim) N(0, 1), targets (batch, context) in [0, vocab)) pairs."""
    rng = np.random.default_rng(seed)
    shape = (batch, GPT["context"], GPT["dim"])
    return [(rng.standard_normal(shape, dtype=np.float32).astype(dtype, copy=False),
             rng.integers(0, GPT["vocab"], shape[:2])) for _ in range(count)]


def nnscratch_gpt_step(stack, loss_layers, optimizer, x, targets):
    """One training step; returns the loss."""
    logits = stack.forward(x)
    loss = loss_layers.forward(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    stack.backward(loss_layers.backward(1.0).reshape(logits.shape))
    optimizer.step()
    return loss


def build_torch_gpt(torch, stack):
    """PyTorch's twin of ``stack`` (nanoGPT's architecture, scaled_dot_product_attention for the
    attention as nanoGPT uses it), its AdamW and loss, starting from the stack's weights."""
    functional = torch.nn.functional

    class SelfAttention(torch.nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads, self.qkv, self.proj = heads, torch.nn.Linear(dim, 3 * dim), torch.nn.Linear(dim, dim)

        def forward(self, x):
            n, t, e = x.shape
            q, k, v = self.qkv(x).view(n, t, 3, self.heads, e // self.heads).permute(2, 0, 3, 1, 4)
            heads = functional.scaled_dot_product_attention(q, k, v, is_causal=True)  # (N, H, T, d)
            return self.proj(heads.transpose(1, 2).reshape(n, t, e))

    class Block(torch.nn.Module):
        def __init__(self, dim, heads, hidden):
            super().__init__()
            self.ln_1, self.attn = torch.nn.LayerNorm(dim), SelfAttention(dim, heads)
            self.ln_2 = torch.nn.LayerNorm(dim)
            self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.GELU(approximate="tanh"),
                                           torch.nn.Linear(hidden, dim))

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    *blocks, norm, head = stack.layers
    model = torch.nn.Sequential(*[Block(b.dim, b.num_heads, b[1][1].out_features) for b in blocks],
                                torch.nn.LayerNorm(norm.normalized_shape), torch.nn.Linear(head.in_features,
                                                                                           head.out_features))
    with torch.no_grad():
        for param, value in zip(model.parameters(), torch_layout(stack, stack.parameters)):
            param.copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return model, torch.optim.AdamW(model.parameters(), **ADAMW), torch.nn.CrossEntropyLoss()


def torch_layout(stack, arrays) -> list:
    """The stack's parameters (or deltas) in PyTorch's order and layout: Linear weights transposed
    ((in, out) here, (out, in) there); the attention's are PyTorch's already."""
    linear_weights = {id(layer.parameters[0]) for layer in nn.protocol.walk(stack) if isinstance(layer, nn.Linear)}
    return [a.T if id(p) in linear_weights else a for p, a in zip(stack.parameters, arrays)]


def torch_gpt_step(model, optimizer, loss_fn, x, targets):
    optimizer.zero_grad()
    logits = model(x)
    loss = loss_fn(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    loss.backward()
    optimizer.step()
    return loss


def compare_gpt(torch=None, repeats=7, steps=20, warmup=3, warmup_seconds=0.2, processes=1) -> dict:
    """Alternating timed runs of the two GPT stacks (see ``compare_runs``); a sample is one sequence
    of ``GPT["context"]`` tokens. With ``processes`` > 1, nnscratch shares each batch among that many
    processes as train-text does (``nnscratch.parallel.DataParallel``, BLAS at one thread in each),
    dL/dx of the input included as in one process."""
    from nnscratch.parallel import DataParallel

    stack, loss_layers, optimizer = build_nnscratch_gpt()
    batches = gpt_batches(4)
    with DataParallel(stack, loss_layers, processes, lambda y: y.size, where="benchmark", input_delta=True) as shared:
        step = ((lambda x, y: nnscratch_gpt_step(stack, loss_layers, optimizer, x, y)) if processes == 1
                else (lambda x, y: nnscratch_parallel_step(shared, optimizer, x, y)))
        runners = {"nnscratch": (step, batches)}
        if torch is not None:
            model, torch_optimizer, loss_fn = build_torch_gpt(torch, stack)
            torch_batches = [(torch.from_numpy(x).requires_grad_(True), torch.from_numpy(y)) for x, y in batches]
            runners["pytorch"] = (lambda x, y: torch_gpt_step(model, torch_optimizer, loss_fn, x, y), torch_batches)
        result = compare_runs(runners, TARGETS["gpt"], repeats, steps, warmup, warmup_seconds)
    return {**result, "processes": processes}


def nnscratch_parallel_step(shared, optimizer, x, targets):
    """One training step with the batch shared among processes (the logits scored as (N, T, V))."""
    loss = shared.step(x, targets)
    optimizer.step()
    return loss


def measure_gpt_memory(epochs=5, steps=40) -> dict:
    """Resident memory of the nnscratch GPT stack's training after each epoch (``measure_step_memory``)."""
    stack, loss_layers, optimizer = build_nnscratch_gpt()
    batches = gpt_batches(8, seed=3)
    return measure_step_memory(lambda i: nnscratch_gpt_step(stack, loss_layers, optimizer, *batches[i % 8]),
                               epochs, steps)
