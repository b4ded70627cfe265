"""Lab 6's answers: the DDPM pieces of the lab's reference solution (forward process, loss, sampler, and the (*)
section's DDIM sampler), with the pieces the lab gives (schedule, noise predictor, time embedding) that the
training runs are rebuilt from.

Lab 6's hidden tests judge each exercise on its own with these. A test cell of the loss runs the student's
`diffusion_loss` with this `q_sample` in the notebook's namespace (the student's function looks `q_sample`
up there when it runs), and the sampler's test runs the student's `sample` with this `p_sample`:

    swapped = swap(globals(), q_sample=q_sample)   # ... the student's loss now calls the reference ...
    swapped.restore()                               # the notebook's own names again

The training runs (sections 6 and 7) use every piece at once. When a run misses its test's bar and an
earlier exercise differs from the reference here (so it has already lost its own cell's points), the test
repeats the run with the reference in place of that piece and judges that run instead (`judged_run_1d`,
`judged_run_2d`): a slip in one exercise costs that exercise's points only. With two or more wrong there is
no repeat: too little of the run would be the student's.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib.budget import budget
from course_lib.device import seed_everything
from course_lib.diffusion_data import chamfer_distance, gaussian_mixture, swiss_roll, wasserstein_1d
from course_lib import reference as pieces
from course_lib.reference import same_tensor as _close, swap
from course_lib.train import fit

ANSWERS_OF = "06_diffusion"  # `course bundle` packs this module only once lab 6's window has closed


def linear_schedule(T, beta_1=1e-4, beta_T=0.02):
    betas = torch.linspace(beta_1, beta_T, T, dtype=torch.float32)
    alphas = 1.0 - betas
    return betas, alphas, torch.cumprod(alphas, dim=0)


def q_sample(x0, t, alpha_bars, noise):
    a = alpha_bars[t].reshape(-1, 1)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def diffusion_loss(model, x0, alpha_bars, t=None, noise=None):
    if t is None:
        t = torch.randint(0, len(alpha_bars), (x0.shape[0],), device=x0.device)
    if noise is None:
        noise = torch.randn_like(x0)
    return F.mse_loss(model(q_sample(x0, t, alpha_bars, noise), t), noise)


class NoisePredictor(nn.Module):

    def __init__(self, dim, embed, embed_dim, hidden=128, depth=3):
        super().__init__()
        self.embed = embed
        layers, width = [], dim + embed_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x, t):
        return self.net(torch.cat([x, self.embed(t)], dim=1))


@torch.no_grad()
def p_sample(model, x, t, betas, alpha_bars, generator=None):
    beta, alpha_bar = betas[t], alpha_bars[t]
    eps = model(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
    mean = (x - beta / (1 - alpha_bar).sqrt() * eps) / (1 - beta).sqrt()
    if t == 0:
        return mean
    return mean + beta.sqrt() * torch.randn(x.shape, generator=generator, device=x.device)


@torch.no_grad()
def sample(model, n, dim, betas, alpha_bars, generator=None):
    x = torch.randn((n, dim), generator=generator, device=betas.device)
    for t in reversed(range(len(betas))):
        x = p_sample(model, x, t, betas, alpha_bars, generator)
    return x


def sinusoidal_embedding(t, dim, max_period=10000.0):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


@torch.no_grad()
def ddim_sample(model, n, dim, alpha_bars, steps, generator=None):
    timesteps = torch.linspace(len(alpha_bars) - 1, 0, steps).round().long().tolist()
    x = torch.randn((n, dim), generator=generator, device=alpha_bars.device)
    for i, t in enumerate(timesteps):
        a = alpha_bars[t]
        eps = model(x, torch.full((n,), t, dtype=torch.long, device=x.device))
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        a_next = alpha_bars[timesteps[i + 1]] if i + 1 < len(timesteps) else torch.ones_like(a)
        x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
    return x


# ---- does an exercise agree with the reference? (probes on inputs of their own; any error means no)

def _same_schedule(fn):
    return all(_close(torch.as_tensor(mine), ref, atol=1e-6) for args in ((1000,), (7, 0.1, 0.4))
               for mine, ref in zip(fn(*args), linear_schedule(*args)))


def _same_q_sample(fn):
    gen = torch.Generator().manual_seed(0)
    ab = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), 0)
    cases = [(torch.randn(5, d, generator=gen), torch.tensor([0, 7, 250, 500, 999]), torch.randn(5, d, generator=gen))
             for d in (1, 2)]
    return all(_close(fn(x0, t, ab, noise), q_sample(x0, t, ab, noise)) for x0, t, noise in cases)


def _same_loss(fn, ns):
    # the student's loss, with the reference q_sample under it: judges the loss alone
    with swap(ns, q_sample=q_sample):
        return _same_loss_alone(fn)


def _same_loss_alone(fn):
    ab = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), 0)
    gen = torch.Generator().manual_seed(0)
    stub = lambda x, t: 0.5 * x + 1e-3 * t[:, None].float()  # noqa: E731
    x0, noise, t = torch.randn(6, 2, generator=gen), torch.randn(6, 2, generator=gen), torch.tensor([0, 3, 100, 500, 998, 999])
    if not _close(fn(stub, x0, ab, t=t, noise=noise), diffusion_loss(stub, x0, ab, t=t, noise=noise)):
        return False
    seen = {}

    def recorder(x, t):
        seen["t"] = t
        return torch.zeros_like(x)
    loss = fn(recorder, torch.full((20_000, 1), 3.0), ab)  # drawn steps and noise: one step per row over 0..T-1
    t = seen["t"]
    return (t.shape == (20_000,) and not t.dtype.is_floating_point and int(t.min()) == 0 and int(t.max()) == 999
            and len(torch.unique(t)) > 900 and abs(float(loss) - 1) < 0.05)


def _same_model(cls):
    embed3 = lambda t: torch.stack([t.float().sin(), t.float().cos(), t.float() / 1000], 1)  # noqa: E731
    for args, kwargs in (((1, lambda t: (t.float() / 999 - 0.5).unsqueeze(1), 1), {}), ((2, embed3, 3), dict(hidden=16, depth=2))):
        torch.manual_seed(0)
        mine = cls(*args, **kwargs)
        ref = NoisePredictor(*args, **kwargs)
        ref.load_state_dict(mine.state_dict())  # the same layers, the same weights
        x, t = torch.randn(5, args[0]), torch.tensor([0, 1, 10, 500, 999])
        with torch.no_grad():
            if not _close(mine(x, t), ref(x, t)):
                return False
    return True


def _same_p_sample(fn):
    b = torch.linspace(1e-4, 0.02, 1000)
    ab = torch.cumprod(1 - b, 0)
    half = lambda x, t: torch.full_like(x, 0.5) + 1e-4 * t[:, None].float()  # noqa: E731
    x = torch.linspace(-2, 2, 8).reshape(4, 2)
    return all(_close(fn(half, x, t, b, ab, torch.Generator().manual_seed(5)),
                      p_sample(half, x, t, b, ab, torch.Generator().manual_seed(5))) for t in (0, 1, 300, 999))


def _same_sample(fn, ns):
    # the student's sample, with the reference p_sample under it: judges the loop alone
    with swap(ns, p_sample=p_sample):
        b = torch.linspace(0.05, 0.3, 30)
        ab = torch.cumprod(1 - b, 0)
        model = lambda x, t: 0.1 * x + 1e-2 * t[:, None].float()  # noqa: E731
        return _close(fn(model, 50, 2, b, ab, torch.Generator().manual_seed(3)),
                      sample(model, 50, 2, b, ab, torch.Generator().manual_seed(3)))


def _same_embedding(fn):
    return all(_close(fn(t, dim, *period), sinusoidal_embedding(t, dim, *period))
               for t, dim, period in ((torch.tensor([0, 1, 10, 999]), 8, ()), (torch.tensor([7, 123]), 6, (100.0,)),
                                      (torch.arange(1000), 64, ())))


_PROBES = {"linear_schedule": lambda ns: _same_schedule(ns["linear_schedule"]),
           "q_sample": lambda ns: _same_q_sample(ns["q_sample"]),
           "diffusion_loss": lambda ns: _same_loss(ns["diffusion_loss"], ns),
           "NoisePredictor": lambda ns: _same_model(ns["NoisePredictor"]),
           "p_sample": lambda ns: _same_p_sample(ns["p_sample"]),
           "sample": lambda ns: _same_sample(ns["sample"], ns),
           "sinusoidal_embedding": lambda ns: _same_embedding(ns["sinusoidal_embedding"])}


def wrong_pieces(ns, names):
    """The names among `names` whose definition in the namespace ns differs from the reference (or fails)."""
    return pieces.wrong_pieces(ns, names, _PROBES)


def _judged_run(ns, results, passes, names, what, run):
    """The notebook's values of `results`, or when they fail passes(*values) and one of `names` is wrong, the
    values of run(ns) with the reference's version of it."""
    return pieces.judged_run(ns, results, passes, names, what, lambda ns, wrong: run(ns), _PROBES,
                             lambda name, ns: {name: globals()[name]})


def _cosine_lr(lr, steps):
    return lambda step: lr * 0.5 * (1 + math.cos(math.pi * step / steps))


# ---- section 6: the 1D run (the recipe of the notebook's cell train_1d; keep the two together)

def _passes_1d(samples, history, w1, left_mass, w1_limit):
    try:
        losses = history.losses
        return (tuple(samples.shape) == (budget(full=5000, graded=1000), 1) and bool(torch.isfinite(samples).all())
                and sum(losses[-50:]) < sum(losses[:50]) and sum(losses[-50:]) / 50 < 0.5
                and w1 < w1_limit and abs(left_mass - 0.3) < 0.04)
    except Exception:
        return False


def _run_1d(ns):
    betas, _, alpha_bars = ns["linear_schedule"](1000)
    data = gaussian_mixture(20_000, seed=0)
    steps = budget(full=4000, graded=1000)
    seed_everything(0)
    model = ns["NoisePredictor"](1, ns["scalar_time"], 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    batches = torch.Generator().manual_seed(0)
    history = fit(model, lambda: data[torch.randint(0, len(data), (512,), generator=batches)],
                  lambda m, x0: ns["diffusion_loss"](m, x0, alpha_bars), optimizer, steps=steps,
                  lr_schedule=_cosine_lr(2e-3, steps), progress=False)
    model.eval()
    samples = ns["sample"](model, budget(full=5000, graded=1000), 1, betas, alpha_bars, generator=torch.Generator().manual_seed(1))
    w1 = wasserstein_1d(samples, gaussian_mixture(len(samples), seed=1))
    left_mass = (samples < 0).float().mean().item()
    print(f"  that run: W1 = {w1:.4f}, {left_mass:.1%} of the samples below 0")
    return samples, history, w1, left_mass


def judged_run_1d(ns, w1_limit):
    """(samples_1d, history_1d, w1_1d, left_mass_1d): the notebook's, or when they miss the test's bar and one
    earlier exercise is wrong, those of the same run with the reference in its place."""
    return _judged_run(ns, ("samples_1d", "history_1d", "w1_1d", "left_mass_1d"),
                       lambda *own: _passes_1d(*own, w1_limit),
                       ["q_sample", "diffusion_loss", "p_sample", "sample"], "Your 1D run", _run_1d)


# ---- section 7: the 2D run (the recipe of the notebook's cells train_2d and reverse_2d; keep them together)

def _passes_2d(n_params, samples, history, chamfer, chamfer_limit):
    try:
        losses = history.losses
        return (n_params == 41_858 and tuple(samples.shape) == (2048, 2) and bool(torch.isfinite(samples).all())
                and sum(losses[-50:]) < sum(losses[:50]) and chamfer < chamfer_limit and float(samples.abs().max()) < 10)
    except Exception:
        return False


def _run_2d(ns):
    betas, _, alpha_bars = ns["linear_schedule"](1000)
    data = swiss_roll(8000, seed=0)
    steps = budget(full=10_000, graded=3000)
    seed_everything(0)
    embedding = ns["sinusoidal_embedding"]
    model = ns["NoisePredictor"](2, lambda t: embedding(t, 64), 64)
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    batches = torch.Generator().manual_seed(0)
    history = fit(model, lambda: data[torch.randint(0, len(data), (512,), generator=batches)],
                  lambda m, x0: ns["diffusion_loss"](m, x0, alpha_bars), optimizer, steps=steps,
                  lr_schedule=_cosine_lr(2e-3, steps), progress=False)
    model.eval()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn((2048, 2), generator=generator)
    for t in reversed(range(1000)):
        x = ns["p_sample"](model, x, t, betas, alpha_bars, generator)
    chamfer = chamfer_distance(x, swiss_roll(2048, seed=1))
    print(f"  that run: Chamfer distance {chamfer:.2f}")
    return n_params, x, history, chamfer


def judged_run_2d(ns, chamfer_limit):
    """(n_params_2d, samples_2d, history_2d, chamfer_2d): the notebook's, or when they miss the test's bar and
    one earlier exercise is wrong, those of the same run (on the cpu) with the reference in its place."""
    return _judged_run(ns, ("n_params_2d", "samples_2d", "history_2d", "chamfer_2d"),
                       lambda *own: _passes_2d(*own, chamfer_limit),
                       ["q_sample", "diffusion_loss", "p_sample"], "Your 2D run", _run_2d)
