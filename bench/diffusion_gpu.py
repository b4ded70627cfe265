"""Lab 6's 2D DDPM (swiss roll) trained on one device: training time, final loss, Chamfer distance.

    python bench/diffusion_gpu.py                      # cuda when there is one, else cpu; the lab's recipe
    python bench/diffusion_gpu.py --device cpu --steps 5000 --batch 128 --lr 1e-3   # the KAIST configuration
    python bench/diffusion_gpu.py --precision bf16     # bf16 autocast for training on CUDA (schedule, loss and sampling stay fp32)

The DDPM pieces are the lab's reference answers (course_lib/reference/diffusion.py); the loss and the sampler
are repeated here with a device and a precision (the loss in fp32 under bf16 autocast). The Chamfer distance is the KAIST CS492(D) assignment's: 2,048 samples
against 2,048 fresh data points, squared nearest-neighbour distances summed both ways (its reference reaches
18.72 and gets full marks under 20).
"""
import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from course_lib.diffusion_data import chamfer_distance, swiss_roll  # noqa: E402
from course_lib.reference.diffusion import NoisePredictor, linear_schedule, q_sample, sinusoidal_embedding  # noqa: E402


def diffusion_loss(model, x0, alpha_bars):
    t = torch.randint(0, len(alpha_bars), (x0.shape[0],), device=x0.device)
    noise = torch.randn_like(x0)
    return F.mse_loss(model(q_sample(x0, t, alpha_bars, noise), t).float(), noise)


@torch.no_grad()
def sample(model, n, dim, betas, alpha_bars, generator, device):
    # fp32, as in the lab: sampling 2,048 points is cheap on any device
    x = torch.randn((n, dim), generator=generator, device=device)
    for t in reversed(range(len(betas))):
        eps = model(x, torch.full((n,), t, dtype=torch.long, device=device))
        beta, alpha_bar = betas[t], alpha_bars[t]
        x = (x - beta / (1 - alpha_bar).sqrt() * eps.float()) / (1 - beta).sqrt()
        if t > 0:
            x = x + beta.sqrt() * torch.randn(x.shape, generator=generator, device=device)
    return x


class TimeEveryLayer(nn.Module):
    """Variant: the time embedding, projected, is added to every hidden layer."""

    def __init__(self, dim, embed, embed_dim, hidden=128, depth=3):
        super().__init__()
        self.embed = embed
        self.inp = nn.Linear(dim, hidden)
        self.hidden = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(depth - 1)])
        self.time = nn.ModuleList([nn.Linear(embed_dim, hidden) for _ in range(depth)])
        self.out = nn.Linear(hidden, dim)

    def forward(self, x, t):
        e = self.embed(t)
        h = F.silu(self.inp(x) + self.time[0](e))
        for layer, time in zip(self.hidden, self.time[1:]):
            h = F.silu(layer(h) + time(e))
        return self.out(h)


def autocast(device, precision):
    if precision == "bf16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    import contextlib
    return contextlib.nullcontext()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--arch", default="concat", choices=["concat", "every"])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--embed", type=int, default=64)
    parser.add_argument("--points", type=int, default=8000, help="training set size")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    T = 1000
    betas, _, alpha_bars = (x.to(device) for x in linear_schedule(T))  # fp32, outside autocast
    data = swiss_roll(args.points, seed=0).to(device)
    model_class = {"concat": NoisePredictor, "every": TimeEveryLayer}[args.arch]
    model = model_class(2, lambda t: sinusoidal_embedding(t, args.embed), args.embed, args.hidden, args.depth).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    g = torch.Generator(device=device).manual_seed(args.seed)
    losses = []
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for step in range(args.steps):
        for group in optimizer.param_groups:  # cosine decay to 0
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        x0 = data[torch.randint(0, len(data), (args.batch,), generator=g, device=device)]
        with autocast(device, args.precision):
            loss = diffusion_loss(model, x0, alpha_bars)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - start
    losses = torch.stack(losses).float().cpu()
    model.eval()
    start = time.perf_counter()
    samples = sample(model, 2048, 2, betas, alpha_bars, torch.Generator(device=device).manual_seed(1), device)
    sample_s = time.perf_counter() - start
    cd = chamfer_distance(samples.cpu(), swiss_roll(2048, seed=1))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"{vars(args)}")
    print(f"device {name}: {sum(p.numel() for p in model.parameters()):,} parameters, {args.steps} steps in {train_s:.1f} s "
          f"({1000 * train_s / args.steps:.2f} ms/step), sampling 2,048 points in {sample_s:.1f} s; "
          f"final loss (mean of the last 500 steps) {losses[-500:].mean():.4f}; Chamfer distance {cd:.2f}")


if __name__ == "__main__":
    main()
