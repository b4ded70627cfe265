"""Training a language model on a stream of token ids: one loop, device-aware, no callbacks.

    config = TrainConfig(max_iters=2000, batch_size=12)
    history = train_lm(model, train_ids, val_ids, config, get_batch=get_batch)   # ids: 1-D int tensors
    history.last("val")

`get_batch(data, block_size, batch_size, generator)` returns (x, y), random windows of data and the same
windows shifted by one token: lab 4's, or course_lib.reference.gpt's (lab 4's answer, not in the student
bundle while lab 4 is open).

What it does, in order, at every step: set the learning rate (linear warmup, then cosine decay to
min_lr; or, with schedule="wsd", warmup, a stable stretch and a linear decay at the end), evaluate every eval_interval steps (mean loss over eval_iters random batches of each split,
in eval mode), forward and backward on one random batch, clip the gradient norm, AdamW step (with optimizer="muon": Muon for the blocks' weight matrices,
AdamW for the rest). `history.info["train_seconds"]` is the run's time without its evaluations.

Precision: bf16 autocast on CUDA, and on a CPU with native bf16 instructions (AVX512-BF16 or AMX)
where bf16 matrix products are several times faster than fp32; fp32 everywhere else. The weights,
the optimizer state and the loss stay fp32 (autocast only lowers the matrix products), and
bench/gpt_shakespeare.py checks that the final loss matches an fp32 run.

A checkpoint (model, optimizer, step, random state, history) is written atomically at every
evaluation when `checkpoint` is set; a later call with the same path resumes where it stopped.
"""
import contextlib
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .budget import time_cap
from .files import replacing
from .train import History


@dataclass
class TrainConfig:
    max_iters: int = 2000
    batch_size: int = 12
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 2000
    beta1: float = 0.9
    beta2: float = 0.99
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_iters: int = 20
    precision: str = "auto"       # "auto", "bf16" or "fp32"
    compile: bool = False         # torch.compile: measured no faster on a 2-core CPU at this size
    checkpoint: str | None = None
    max_seconds: float | None = None  # a time budget (scaled by budget.time_cap): after a few timed steps, max_iters shrinks to fit it
    keep_best: bool = False       # end with the weights of the best val estimate (nanoGPT saves only those)
    seed: int = 1337
    progress: bool = True
    # what changed since GPT-2's training (the nanoGPT speedrun); the defaults are nanoGPT's
    schedule: str = "cosine"      # "wsd": warmup, stable at learning_rate, linear decay over the last cooldown_frac
    cooldown_frac: float = 0.4    # (wsd) the share of the run that decays to min_lr
    optimizer: str = "adamw"      # "muon": Muon on the blocks' 2-D weights (fewer steps to a loss), AdamW on the rest
    muon_lr: float = 0.02         # (muon) Muon's peak learning rate; the schedule scales it as it does learning_rate
    muon_momentum: float = 0.95   # (muon) Nesterov momentum of Muon


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 matrices in hardware (x86 AVX512-BF16 / AMX-BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_dtype(device: torch.device, precision: str = "auto"):
    """The dtype autocast lowers matrix products to, or None for plain fp32."""
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', not {precision!r}")
    if precision == "fp32" or device.type not in ("cuda", "cpu"):
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if cpu_has_native_bf16() else None


def precision_context(device: torch.device, dtype):
    return torch.autocast(device_type=device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def batch_on(device, get_batch, data, block_size, batch_size, generator=None):
    """get_batch's (x, y), moved to the device (the windows are cut from data on the CPU)."""
    x, y = get_batch(data, block_size, batch_size, generator)
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def learning_rate_at(step: int, config: TrainConfig) -> float:
    """Linear warmup to learning_rate, cosine decay to min_lr at lr_decay_iters, then min_lr. With
    schedule="wsd": warmup, learning_rate until the last cooldown_frac of lr_decay_iters, linear decay to min_lr."""
    if config.schedule not in ("cosine", "wsd"):
        raise ValueError(f"schedule must be 'cosine' or 'wsd', not {config.schedule!r}")
    if step < config.warmup_iters:
        return config.learning_rate * step / config.warmup_iters
    if config.schedule == "wsd":
        decay_start = config.lr_decay_iters * (1 - config.cooldown_frac)
        if step < decay_start:
            return config.learning_rate
        ratio = min(1.0, (step - decay_start) / max(1, config.lr_decay_iters - decay_start))
        return config.learning_rate + ratio * (config.min_lr - config.learning_rate)
    if step > config.lr_decay_iters:
        return config.min_lr
    ratio = (step - config.warmup_iters) / max(1, config.lr_decay_iters - config.warmup_iters)
    return config.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (config.learning_rate - config.min_lr)


def newton_schulz(G, steps: int = 5, eps: float = 1e-7):
    """An approximately orthogonal matrix with G's singular vectors: U V^T of G = U S V^T, without an SVD.
    Five steps of a quintic iteration X <- aX + b(XX^T)X + c(XX^T)^2 X, whose coefficients (Keller Jordan's)
    push every singular value of the normalised G into about [0.7, 1.2] fast rather than exactly to 1."""
    a, b, c = 3.4445, -4.7750, 2.0315
    X = G / (G.norm() + eps)  # singular values <= 1, where the iteration converges
    tall = X.size(0) > X.size(1)
    if tall:
        X = X.T  # X X^T is the smaller of the two Gram matrices
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if tall else X


class Muon(torch.optim.Optimizer):
    """Muon (MomentUm Orthogonalized by Newton-Schulz, Keller Jordan 2024), for 2-D weight matrices only:
    SGD with Nesterov momentum whose update is orthogonalised, so every direction of the matrix moves by
    about the same amount, however unequal the gradient's singular values are."""

    def __init__(self, params, lr=0.02, momentum=0.95, nesterov=True, ns_steps=5):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, ns_steps=ns_steps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.mul_(group["momentum"]).add_(p.grad)
                g = p.grad.add(buf, alpha=group["momentum"]) if group["nesterov"] else buf
                update = newton_schulz(g, group["ns_steps"])
                # an orthogonal update of a tall matrix has smaller entries: scale it to the same RMS per row
                p.add_(update, alpha=-group["lr"] * max(1.0, p.size(0) / p.size(1)) ** 0.5)


class Optimizers:
    """Several optimizers stepped as one (Muon for the matrices, AdamW for the rest): param_groups, step,
    zero_grad, state_dict and load_state_dict, as train_lm uses them."""

    def __init__(self, *optimizers):
        self.optimizers = optimizers
        self.param_groups = [g for o in optimizers for g in o.param_groups]

    def step(self):
        for o in self.optimizers:
            o.step()

    def zero_grad(self, set_to_none=True):
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        return [o.state_dict() for o in self.optimizers]

    def load_state_dict(self, states):
        for o, state in zip(self.optimizers, states):
            o.load_state_dict(state)


def make_optimizer(model, config: TrainConfig, device: torch.device):
    """AdamW; weight decay on matrices only (not on biases and LayerNorm gains). With optimizer="muon", Muon
    takes the blocks' 2-D weights (the hidden matrices) and AdamW keeps the embeddings, the output layer,
    the gains and the biases."""
    if config.optimizer not in ("adamw", "muon"):
        raise ValueError(f"optimizer must be 'adamw' or 'muon', not {config.optimizer!r}")
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    hidden = [p for n, p in params if config.optimizer == "muon" and p.dim() == 2 and n.startswith("blocks.")]
    rest = [p for _, p in params if not any(p is h for h in hidden)]
    groups = [{"params": [p for p in rest if p.dim() >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0}]
    fused = device.type in ("cuda", "cpu")  # one kernel for all parameters instead of one per tensor
    adamw = torch.optim.AdamW(groups, lr=config.learning_rate, betas=(config.beta1, config.beta2), fused=fused)
    if not hidden:
        return adamw
    muon = Muon([{"params": hidden, "muon": True}], lr=config.muon_lr, momentum=config.muon_momentum)
    return Optimizers(muon, adamw)


@torch.no_grad()
def estimate_loss(model, splits: dict, block_size: int, config: TrainConfig, device, dtype, get_batch,
                  generator=None) -> dict:
    """Mean loss over eval_iters random batches of each split, in eval mode (no dropout)."""
    was_training = model.training
    model.eval()
    out = {}
    for name, data in splits.items():
        losses = torch.zeros(config.eval_iters)
        for k in range(config.eval_iters):
            x, y = batch_on(device, get_batch, data, block_size, config.batch_size, generator)
            with precision_context(device, dtype):
                losses[k] = model(x, y)[1].float()
        out[name] = losses.mean().item()
    model.train(was_training)
    return out


@torch.no_grad()
def split_loss(model, data: torch.Tensor, block_size: int, batch_size: int = 256, device=None) -> float:
    """Mean loss over a whole split, every token predicted once (non-overlapping windows, eval mode).
    Slower than estimate_loss but without its sampling noise (about ±0.02 with 20 batches of 12x64)."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    n = (len(data) - 1) // block_size
    x, y = data[:n * block_size].view(n, block_size), data[1:n * block_size + 1].view(n, block_size)
    total = 0.0
    for i in range(0, n, batch_size):
        total += model(x[i:i + batch_size].to(device), y[i:i + batch_size].to(device))[1].item() * len(x[i:i + batch_size])
    model.train(was_training)
    return total / n


def train_lm(model, train_data: torch.Tensor, val_data: torch.Tensor, config: TrainConfig,
             device: torch.device = None, block_size: int = None, *, get_batch) -> History:
    """Train model (called as model(x, y) -> (logits, loss)) on 1-D token tensors, with the batches of
    get_batch (see the module's docstring); returns its History."""
    device = device or next(model.parameters()).device
    block_size = block_size or model.config.block_size
    dtype = autocast_dtype(device, config.precision)
    model.to(device).train()
    optimizer = make_optimizer(model, config, device)
    generator = torch.Generator().manual_seed(config.seed)
    history, start, resumed = History(), 0, False
    history.info = {"precision": str(dtype or torch.float32).replace("torch.", ""), "device": str(device),
                    "config": asdict(config)}
    if config.checkpoint and Path(config.checkpoint).is_file():
        start, history = _resume(config.checkpoint, model, optimizer, generator)
        resumed = True
        if "planned_iters" in history.info:
            config = _shortened(config, history.info["planned_iters"])
    best_val, best_state = math.inf, None
    step_fn = torch.compile(model) if config.compile else model
    splits = {"train": train_data, "val": val_data}
    tokens = config.batch_size * block_size
    bar = tqdm(total=config.max_iters + 1 - start, desc="training", disable=not config.progress, mininterval=1.0)
    t0 = time.perf_counter()
    eval_seconds, all_eval_seconds, timing_from, evals_before = 0.0, 0.0, None, 0.0
    full_config, next_plan = config, 12  # the schedule before any time plan; the step (after start) of the next plan
    step = start
    while True:
        lr = learning_rate_at(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr * (config.muon_lr / config.learning_rate) if group.get("muon") else lr
        # (a resumed run already holds the evaluation at its first step, made before the checkpoint)
        if (step % config.eval_interval == 0 or step == config.max_iters) and not (resumed and step == start):
            t_eval = time.perf_counter()
            history.evals.append((step, estimate_loss(model, splits, block_size, config, device, dtype, get_batch,
                                                      generator)))
            eval_seconds = time.perf_counter() - t_eval
            all_eval_seconds += eval_seconds
            if config.keep_best and history.evals[-1][1]["val"] < best_val:
                best_val = history.evals[-1][1]["val"]
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                history.info.update(best_val=best_val, best_step=step)
            bar.set_postfix({k: f"{v:.4f}" for k, v in history.evals[-1][1].items()})
            if config.checkpoint:
                _save(config.checkpoint, step, model, optimizer, generator, history)
        if step == config.max_iters:
            bar.update()
            break
        if config.max_seconds and not (resumed and "planned_iters" in history.info):
            # time the steps from start+2 on (the first ones warm caches up); plan the rest to fit at step
            # start+12, then plan again at 25, 50, 100, ... steps with the mean so far (steps slow down as the
            # machine warms or gets busy), until 80% of the plan (later, a shorter schedule would jolt the rate)
            if step == start + 2:
                timing_from, evals_before = time.perf_counter(), all_eval_seconds
            elif step == start + next_plan and step < start + 0.8 * history.info.get("planned_iters", math.inf):
                per_step = (time.perf_counter() - timing_from - (all_eval_seconds - evals_before)) / (step - start - 2)
                planned = _iters_within(full_config, step, time_cap(config.max_seconds) - (time.perf_counter() - t0),
                                        per_step, eval_seconds)
                history.info["planned_iters"] = planned
                config = _shortened(full_config, planned)
                bar.total = planned + 1 - start
                next_plan = 2 * next_plan + 1 if next_plan > 12 else 25
        x, y = batch_on(device, get_batch, train_data, block_size, config.batch_size, generator)
        with precision_context(device, dtype):
            _, loss = step_fn(x, y)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip, foreach=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        history.steps.append(step)
        history.losses.append(loss.detach().item())
        if not math.isfinite(history.losses[-1]):
            raise FloatingPointError(f"loss became {history.losses[-1]} at step {step}: lower the learning rate?")
        step += 1
        bar.update()
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    seconds = time.perf_counter() - t0
    history.info.update(seconds=seconds, train_seconds=seconds - all_eval_seconds, tokens_per_s=tokens * (config.max_iters - start) / max(seconds, 1e-9),
                        steps=config.max_iters)
    return history


def _iters_within(config: TrainConfig, step: int, seconds_left: float, per_step: float, per_eval: float) -> int:
    """The last step that the time left reaches, counting the evaluations on the way and at the end."""
    affordable = (seconds_left - per_eval) / (per_step + per_eval / config.eval_interval)
    return max(step + 1, min(config.max_iters, step + int(affordable)))


def _shortened(config: TrainConfig, max_iters: int) -> TrainConfig:
    """The same schedule compressed to max_iters steps (warmup kept, cosine decay ending at the new last step)."""
    if max_iters >= config.max_iters:
        return config
    decay = max(config.warmup_iters + 1, round(config.lr_decay_iters * max_iters / config.max_iters))
    return replace(config, max_iters=max_iters, lr_decay_iters=decay)


def _save(path, step, model, optimizer, generator, history):
    state = {"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
             "history": {"steps": history.steps, "losses": history.losses, "evals": history.evals,
                         "info": history.info}}
    with replacing(path) as tmp:  # a crash mid-write never leaves a half checkpoint behind
        torch.save(state, tmp)


def _resume(path, model, optimizer, generator):
    state = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    saved = state["history"]
    history = History(steps=saved["steps"], losses=saved["losses"], evals=saved["evals"], info=saved["info"])
    return state["step"], history


@dataclass(frozen=True)
class Recipe:
    """A model size and a training schedule that go together, with the val loss they reach."""
    model_kwargs: dict
    train_kwargs: dict
    target_val: float
    note: str = ""

    def model(self, **overrides):
        from .gpt import GPTConfig

        return GPTConfig(**{**self.model_kwargs, **overrides})

    def train(self, **overrides) -> TrainConfig:
        return TrainConfig(**{**self.train_kwargs, **overrides})


SPEEDRUN_STEPS = 450

RECIPES = {
    # nanoGPT's README command for a CPU (config/train_shakespeare_char.py with its CPU overrides)
    "cpu": Recipe(dict(block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0),
                  dict(max_iters=2000, lr_decay_iters=2000, batch_size=12, eval_iters=20),
                  target_val=1.89, note="nanoGPT's CPU recipe: val 1.88 in its README"),
    # the lab's full run: the best val loss we found for five minutes of a 2-core CPU. A wider model (4x192,
    # context 128, dropout 0.1, 2500 steps) reached 1.6624 in 296 s where the CPU has bf16 instructions and
    # takes over 13 minutes where it has not; this one trains in fp32 within the budget and ends lower.
    "5min": Recipe(dict(block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0),
                   dict(max_iters=4000, lr_decay_iters=4000, batch_size=16, eval_iters=20, learning_rate=2e-3,
                        min_lr=2e-4, max_seconds=300),
                   target_val=1.85, note="the lab's bar: full caps reach 1.61 here, halved caps 1.73, a run cut to 1,468 steps by a loaded machine 1.8025"),
    # nanoGPT's CPU recipe's model with what changed since GPT-2 (the nanoGPT speedrun, modded-nanogpt): rotary
    # embeddings, QK-norm, ReLU squared, an untied head, zero-initialised projections, Muon and a warmup-stable-
    # decay schedule; fewer, larger steps. bench/gpt_shakespeare.py --recipe speedrun times it against "cpu".
    "speedrun": Recipe(dict(block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, rotary=True, qk_norm=True,
                            activation="relu2", tied_head=False, zero_init_proj=True),
                       dict(max_iters=SPEEDRUN_STEPS, lr_decay_iters=SPEEDRUN_STEPS, batch_size=16, eval_iters=20,
                            learning_rate=3e-3, min_lr=3e-4, warmup_iters=50, grad_clip=0.0, optimizer="muon",
                            muon_lr=0.03, schedule="wsd", cooldown_frac=0.4),
                       target_val=1.89, note="the CPU recipe's loss (nanoGPT: 1.88) in fewer steps"),
    # nanoGPT's config/train_shakespeare_char.py, for one GPU: 1.4697 best val in about 3 minutes on an A100
    "gpu": Recipe(dict(block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2),
                  dict(max_iters=5000, lr_decay_iters=5000, batch_size=64, learning_rate=1e-3, min_lr=1e-4,
                       eval_interval=250, eval_iters=200, keep_best=True),
                  target_val=1.50, note="nanoGPT's GPU recipe: best val 1.4697 on an A100 in its README"),
}

