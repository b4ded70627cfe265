"""A plain training loop: no callbacks, no plug-ins; read it top to bottom.

    history = fit(model, batches, compute_loss, optimizer, steps=1000)

`batches` is an iterable or a function returning a batch; `compute_loss(model, batch)` returns
a scalar tensor. The loss of every step goes into `history.losses`; `evaluate()` (optional) is
called every `eval_every` steps and its dict of numbers is logged too.
"""
import math
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm


@dataclass
class History:
    steps: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    evals: list = field(default_factory=list)  # (step, {"val": 2.1, ...})
    info: dict = field(default_factory=dict)   # how it ran: device, precision, seconds, ...

    def last(self, key=None):
        if key is None:
            return self.losses[-1] if self.losses else math.nan
        values = [e[key] for _, e in self.evals if key in e]
        return values[-1] if values else math.nan


def fit(model, batches, compute_loss, optimizer, *, steps, lr_schedule=None, clip_grad=None,
        evaluate=None, eval_every=0, progress=True, desc="training") -> History:
    """Train for `steps` optimizer steps; returns the History."""
    next_batch = batches if callable(batches) else _cycle(batches)
    history = History()
    model.train()
    bar = tqdm(range(steps), desc=desc, disable=not progress, mininterval=0.5)
    for step in bar:
        if lr_schedule is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr_schedule(step)
        loss = compute_loss(model, next_batch())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}: lower the learning rate?")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        optimizer.step()
        history.steps.append(step)
        history.losses.append(loss.detach().item())
        if evaluate is not None and eval_every and (step % eval_every == 0 or step == steps - 1):
            model.eval()
            with torch.no_grad():
                history.evals.append((step, evaluate()))
            model.train()
            bar.set_postfix({k: f"{v:.4f}" for k, v in history.evals[-1][1].items()})
        elif step % 50 == 0:
            bar.set_postfix(loss=f"{history.losses[-1]:.4f}")
    return history


def _cycle(iterable):
    def next_batch():
        nonlocal iterator
        try:
            return next(iterator)
        except StopIteration:
            iterator = iter(iterable)
            return next(iterator)

    iterator = iter(iterable)
    return next_batch
