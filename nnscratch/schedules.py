"""Learning-rate schedules: ``schedule(t) -> lr``, with t the number of epochs done as a float.

That is the form ``fit`` takes: before every batch it sets ``optimizer.lr = schedule(t)`` with
t = epoch - 1 + (batch - 1) / batches, so t runs 0.0, 0.01, ... 1.0 (the second epoch's first batch),
1.5 (half way through the second epoch) and so on. Every schedule here is therefore a function of
continuous t and changes the rate a little at every batch (step decay excepted, which jumps where
t crosses a multiple of its step):

    schedule = nn.schedules.cosine(lr=3e-3, epochs=6, warmup=0.5)
    nn.fit(model, loss, optimizer, x, y, epochs=6, batch_size=128, schedule=schedule)

At whole epochs t = 0, 1, 2, ... they give what PyTorch's ``lr_scheduler`` classes give after that
many ``scheduler.step()`` calls once per epoch (StepLR, ExponentialLR, CosineAnnealingLR); one-cycle
is OneCycleLR's shape with its phases measured in epochs instead of steps. Past the end of training
(t >= epochs) the cosine and one-cycle schedules hold their final rate.
"""

from __future__ import annotations

import math

from .validation import check_number


def check_rate(owner: str, lr) -> float:
    """``lr`` as a float when it is a learning rate, a finite number >= 0; else a TypeError or
    ValueError naming ``owner``: a negative rate would train uphill, silently."""
    return check_number(owner, "the learning rate", lr, 0.0)


class Schedule:
    """A learning rate as a function of epochs done: ``schedule(t) -> lr``; its repr says which.

    Every rate it gives is checked (``check_rate``): a rule that returns a negative, infinite or NaN
    rate is an error where it is called, never a step taken with it.
    """

    def __init__(self, description: str, rule):
        self.description = description
        self._rule = rule

    def __call__(self, t) -> float:
        t = check_number(self.description, "t (epochs done)", t, 0.0, low_inclusive=True)
        return check_rate(f"{self.description} at t={t:g}", self._rule(t))

    def __repr__(self) -> str:
        return self.description


def constant(lr) -> Schedule:
    """lr(t) = lr."""
    lr = check_number("constant", "lr", lr, 0.0, low_inclusive=False)
    return Schedule(f"constant(lr={lr:g})", lambda t: lr)


def step_decay(lr, step_size, gamma=0.1) -> Schedule:
    """lr(t) = lr * gamma ** floor(t / step_size): multiplied by gamma every ``step_size`` epochs
    (a float: 0.5 decays twice per epoch). PyTorch's StepLR, stepped once per epoch."""
    owner = "step_decay"
    lr = check_number(owner, "lr", lr, 0.0, low_inclusive=False)
    step_size = check_number(owner, "step_size", step_size, 0.0, low_inclusive=False)
    gamma = check_number(owner, "gamma", gamma, 0.0, low_inclusive=False, high=1.0, high_inclusive=True)
    def rule(t: float) -> float:
        steps = t / step_size  # inf for a tiny step_size: gamma ** inf is 0 (or 1 for gamma = 1)
        return lr * gamma ** (math.floor(steps) if math.isfinite(steps) else steps)

    return Schedule(f"step_decay(lr={lr:g}, step_size={step_size:g}, gamma={gamma:g})", rule)


def exponential(lr, gamma) -> Schedule:
    """lr(t) = lr * gamma ** t: multiplied by gamma per epoch, smoothly from batch to batch.
    PyTorch's ExponentialLR at whole epochs."""
    lr = check_number("exponential", "lr", lr, 0.0, low_inclusive=False)
    gamma = check_number("exponential", "gamma", gamma, 0.0, low_inclusive=False, high=1.0, high_inclusive=True)
    return Schedule(f"exponential(lr={lr:g}, gamma={gamma:g})", lambda t: lr * gamma**t)


def cosine(lr, epochs, warmup=0.0, min_lr=0.0) -> Schedule:
    """Cosine annealing (Loshchilov & Hutter) from lr down to min_lr at t = epochs, after an
    optional linear warmup from 0 up to lr over the first ``warmup`` epochs:

        lr(t) = lr * t / warmup                                            t < warmup
        lr(t) = min_lr + (lr - min_lr) / 2 * (1 + cos(pi * (t - warmup) / (epochs - warmup)))
        lr(t) = min_lr                                                     t >= epochs

    Without warmup, PyTorch's CosineAnnealingLR(T_max=epochs, eta_min=min_lr) at whole epochs.
    """
    owner = "cosine"
    lr = check_number(owner, "lr", lr, 0.0, low_inclusive=False)
    epochs = check_number(owner, "epochs", epochs, 0.0, low_inclusive=False)
    warmup = check_number(owner, "warmup", warmup, 0.0, low_inclusive=True, high=epochs)
    min_lr = check_number(owner, "min_lr", min_lr, 0.0, low_inclusive=True, high=lr, high_inclusive=True)

    def rule(t: float) -> float:
        if t < warmup:
            return lr * (t / warmup)  # not (lr * t) / warmup, which overflows for lr near float's limit
        if t >= epochs:
            return min_lr
        # (lr - min_lr) * 0.5 * (1 + cos(pi * (t - warmup) / (epochs - warmup))), in this order, is
        # bit for bit the cosine train-mnist's presets always used (min_lr = warmup = 0).
        angle = math.pi * (t - warmup) / (epochs - warmup)
        if not math.isfinite(angle):  # pi * (t - warmup) overflows for t near float's limit
            angle = math.pi * ((t - warmup) / (epochs - warmup))
        return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(angle))

    extra = (f", warmup={warmup:g}" if warmup else "") + (f", min_lr={min_lr:g}" if min_lr else "")
    return Schedule(f"cosine(lr={lr:g}, epochs={epochs:g}{extra})", rule)


def one_cycle(max_lr, epochs, pct_start=0.3, div_factor=25.0, final_div_factor=1e4, anneal="cos") -> Schedule:
    """The one-cycle policy (Smith & Topin), the shape of PyTorch's OneCycleLR with its defaults:
    up from max_lr / div_factor to max_lr over the first pct_start of training, then down to
    max_lr / div_factor / final_div_factor at t = epochs.

        w = pct_start * epochs
        lr(t) = ramp(max_lr / div_factor, max_lr, t / w)                          t < w
        lr(t) = ramp(max_lr, max_lr / (div_factor * final_div_factor), (t - w) / (epochs - w))
        ramp(a, b, x) = b + (a - b) / 2 * (1 + cos(pi * x))   (anneal="cos"),  a + (b - a) * x  ("linear")

    PyTorch counts the phases in optimizer steps, ending them one step early (its last step is at
    the minimum); here they are in epochs, ending at t = w and t = epochs. Only the rate is
    scheduled: OneCycleLR's momentum cycling has no counterpart.
    """
    owner = "one_cycle"
    max_lr = check_number(owner, "max_lr", max_lr, 0.0, low_inclusive=False)
    epochs = check_number(owner, "epochs", epochs, 0.0, low_inclusive=False)
    pct_start = check_number(owner, "pct_start", pct_start, 0.0, low_inclusive=False, high=1.0)
    div_factor = check_number(owner, "div_factor", div_factor, 0.0, low_inclusive=False)
    final_div_factor = check_number(owner, "final_div_factor", final_div_factor, 0.0, low_inclusive=False)
    if anneal not in ("cos", "linear"):
        raise ValueError(f"{owner}: anneal must be 'cos' or 'linear', got {anneal!r}")
    initial_lr = max_lr / div_factor
    final_lr = initial_lr / final_div_factor
    if not math.isfinite(initial_lr):  # a tiny div_factor: 0.1 / 1e-320 overflows
        raise ValueError(f"{owner}: max_lr / div_factor = {max_lr!r} / {div_factor!r} is not a finite rate; "
                         "div_factor must be larger")
    if not math.isfinite(final_lr):
        raise ValueError(f"{owner}: max_lr / (div_factor * final_div_factor) = {max_lr!r} / ({div_factor!r} * "
                         f"{final_div_factor!r}) is not a finite rate; final_div_factor must be larger")
    warm = pct_start * epochs

    def ramp(start: float, end: float, x: float) -> float:
        if anneal == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * x) + 1.0)
        return (end - start) * x + start

    def rule(t: float) -> float:
        if t < warm:
            return ramp(initial_lr, max_lr, t / warm)
        if t >= epochs:  # the end, held; and no division when warm rounds to epochs (epochs ~ 5e-324)
            return ramp(max_lr, final_lr, 1.0)
        return ramp(max_lr, final_lr, (t - warm) / (epochs - warm))

    return Schedule(
        f"one_cycle(max_lr={max_lr:g}, epochs={epochs:g}, pct_start={pct_start:g}, div_factor={div_factor:g}, "
        f"final_div_factor={final_div_factor:g}, anneal={anneal!r})",
        rule,
    )
