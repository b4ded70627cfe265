"""Figures the labs share: loss curves and 2D decision boundaries (matplotlib)."""
import numpy as np


def _axes(ax, figsize=(6, 4)):
    """ax, or the axes of a new figure of figsize."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_losses(history_or_losses, ax=None, title="training loss", smooth=0, log=False):
    """Loss per step (a History or a list), optionally smoothed by a moving average; evals as dots."""
    ax = _axes(ax)
    losses = np.asarray(getattr(history_or_losses, "losses", history_or_losses), dtype=float)
    ax.plot(losses, alpha=0.35 if smooth else 1.0, label="train (per step)")
    if smooth and len(losses) > smooth:
        kernel = np.ones(smooth) / smooth
        ax.plot(np.arange(smooth - 1, len(losses)), np.convolve(losses, kernel, mode="valid"), label=f"train ({smooth}-step mean)")
    for step, values in getattr(history_or_losses, "evals", []):
        for i, (name, value) in enumerate(values.items()):
            ax.plot(step, value, "o", color=f"C{i + 2}", label=name if step == history_or_losses.evals[0][0] else None)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    return ax


def plot_decision_boundary(predict, X, y, ax=None, title="decision boundary", resolution=0.05):
    """predict(points: (n, 2) array) -> scores; the boundary is where the score changes sign."""
    ax = _axes(ax)
    X = np.asarray(X, dtype=float)
    (x0, y0), (x1, y1) = X.min(0) - 1, X.max(0) + 1
    xx, yy = np.meshgrid(np.arange(x0, x1, resolution), np.arange(y0, y1, resolution))
    scores = np.asarray(predict(np.c_[xx.ravel(), yy.ravel()]), dtype=float).reshape(xx.shape)
    ax.contourf(xx, yy, scores > 0, cmap="Spectral", alpha=0.8)
    ax.scatter(X[:, 0], X[:, 1], c=y, s=30, cmap="Spectral", edgecolors="k")
    ax.set_xlim(xx.min(), xx.max())
    ax.set_ylim(yy.min(), yy.max())
    ax.set_title(title)
    return ax
