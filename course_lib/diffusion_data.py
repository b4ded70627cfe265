"""Toy data and sample-quality distances for lab 6 (diffusion): generated in code, no files.

    x1 = gaussian_mixture(10_000, seed=0)   # (n, 1): 30% N(-0.5, 0.2²) + 70% N(+0.5, 0.2²)
    x2 = swiss_roll(8_000, seed=0)          # (n, 2): the KAIST assignment's swiss roll, normalised, ×2
    wasserstein_1d(samples, x1)             # 1D: area between the two empirical CDFs
    chamfer_distance(samples, x2)           # 2D: sum of squared nearest-neighbour distances, both ways

Nothing here is an answer of the lab: the schedule, the forward process, the loss and the sampler are
written in the notebook.
"""
import numpy as np
import torch

from .plots import _axes

MIXTURE_MEANS = (-0.5, 0.5)
MIXTURE_WEIGHTS = (0.3, 0.7)
MIXTURE_STD = 0.2


def gaussian_mixture(n, seed=0, means=MIXTURE_MEANS, weights=MIXTURE_WEIGHTS, std=MIXTURE_STD):
    """n points of a 1D Gaussian mixture (F. Fleuret's minidiffusion: modes ±0.5, std 0.2), shape (n, 1)."""
    g = torch.Generator().manual_seed(seed)
    mode = torch.multinomial(torch.tensor(weights, dtype=torch.float64), n, replacement=True, generator=g)
    x = torch.tensor(means, dtype=torch.float64)[mode] + std * torch.randn(n, generator=g, dtype=torch.float64)
    return x.float().unsqueeze(1)


def gaussian_mixture_pdf(x, means=MIXTURE_MEANS, weights=MIXTURE_WEIGHTS, std=MIXTURE_STD):
    """The mixture's density at the points x (a numpy array), for plotting."""
    x = np.asarray(x, dtype=np.float64)
    return sum(w * np.exp(-0.5 * ((x - m) / std) ** 2) / (std * np.sqrt(2 * np.pi)) for m, w in zip(means, weights))


def _normalise(points, scale):
    # as the KAIST assignment does: one mean and one standard deviation over all coordinates
    return (points - points.mean()) / points.std() * scale


def swiss_roll(n, seed=0, scale=2.0):
    """n points of a 2D swiss roll with a hole (sklearn's make_swiss_roll, coordinates x and z), shape (n, 2).

    Normalised like the KAIST CS492(D) DDPM assignment (`normalize(X[:, [0, 2]])`, ×2), so that its Chamfer
    distances compare with ours: its reference reaches 18.72 between 2,048 samples and 2,048 data points.
    """
    from sklearn.datasets import make_swiss_roll

    X, _ = make_swiss_roll(n_samples=n, noise=0.0, random_state=seed, hole=True)
    return torch.tensor(_normalise(X[:, [0, 2]], scale), dtype=torch.float32)


def two_moons(n, seed=0, scale=2.0, noise=0.0):
    """n points of sklearn's two moons, normalised like swiss_roll, shape (n, 2)."""
    from sklearn.datasets import make_moons

    X, _ = make_moons(n_samples=n, noise=noise, random_state=seed)
    return torch.tensor(_normalise(X, scale), dtype=torch.float32)


def wasserstein_1d(a, b):
    """Wasserstein-1 (earth mover's) distance between two 1D samples: the area between their empirical CDFs.

    Same value as scipy.stats.wasserstein_distance(a, b). The samples may differ in size.
    """
    a = np.sort(np.asarray(torch.as_tensor(a).detach().cpu(), dtype=np.float64).ravel())
    b = np.sort(np.asarray(torch.as_tensor(b).detach().cpu(), dtype=np.float64).ravel())
    if a.size == 0 or b.size == 0:
        raise ValueError("wasserstein_1d needs two non-empty samples")
    grid = np.sort(np.concatenate([a, b]))
    widths = np.diff(grid)
    cdf_a = np.searchsorted(a, grid[:-1], side="right") / a.size
    cdf_b = np.searchsorted(b, grid[:-1], side="right") / b.size
    return float(np.sum(np.abs(cdf_a - cdf_b) * widths))


def chamfer_distance(a, b, chunk=4096):
    """Chamfer distance between two point clouds (n, d) and (m, d), as the KAIST assignment computes it:

        sum over x in a of min_y |x - y|²  +  sum over y in b of min_x |x - y|²

    A sum, not a mean: it grows with the number of points (the lab always compares 2,048 with 2,048).
    """
    a = torch.as_tensor(a).detach().to("cpu", torch.float64)
    b = torch.as_tensor(b).detach().to("cpu", torch.float64)
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"chamfer_distance needs two (n, d) clouds of the same d, got {tuple(a.shape)} and {tuple(b.shape)}")
    min_ab = torch.cat([torch.cdist(part, b).min(dim=1).values for part in a.split(chunk)])
    min_ba = torch.cat([torch.cdist(part, a).min(dim=1).values for part in b.split(chunk)])
    return float((min_ab ** 2).sum() + (min_ba ** 2).sum())


def plot_histograms(data, samples, ax=None, bins=100, title="data and samples", density_curve=True):
    """Histograms of 1D data and samples on one axis, with the mixture's density when density_curve."""
    ax = _axes(ax, figsize=(6, 3.5))
    data = np.asarray(torch.as_tensor(data).detach().cpu()).ravel()
    samples = np.asarray(torch.as_tensor(samples).detach().cpu()).ravel()
    edges = np.linspace(-1.5, 1.5, bins + 1)
    ax.hist(data, bins=edges, density=True, alpha=0.5, label=f"data ({data.size:,})")
    ax.hist(samples, bins=edges, density=True, alpha=0.5, label=f"samples ({samples.size:,})")
    if density_curve:
        grid = np.linspace(-1.5, 1.5, 400)
        ax.plot(grid, gaussian_mixture_pdf(grid), "k--", lw=1, label="mixture density")
    ax.set(title=title, xlabel="x")
    ax.legend(fontsize=8)
    return ax


def plot_points(points, ax=None, title="", lim=4.5, color="C0", s=2):
    """A scatter of 2D points on a square axis from -lim to lim."""
    ax = _axes(ax, figsize=(4, 4))
    points = np.asarray(torch.as_tensor(points).detach().cpu().float())
    ax.scatter(points[:, 0], points[:, 1], s=s, alpha=0.5, color=color)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), title=title, aspect="equal")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax
