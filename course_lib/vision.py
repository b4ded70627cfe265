"""Images for lab 5: Fashion-MNIST as torchvision datasets, shuffled mini-batches, and figures.

    train_set = fashion_mnist(train=True)       # torchvision.datasets.FashionMNIST over course_lib.data's files
    batches = epoch_batches(X, y, batch_size=128, generator=g)   # for course_lib.train.fit
    show_images(images, labels, class_names=CLASSES)
    plot_confusion_matrix(counts, CLASSES)
    show_filters(model.conv1.weight)

Nothing here computes what the lab asks you to write (convolutions, models, accuracy, confusion counts).
"""
import math

import numpy as np
import torch

from . import data
from .plots import _axes

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def fashion_mnist(train: bool = True):
    """torchvision.datasets.FashionMNIST(root, train=train, download=False) over the verified files."""
    from torchvision.datasets import FashionMNIST

    return FashionMNIST(str(data.fashion_mnist_root()), train=train, download=False)


def epoch_batches(X, y, batch_size, generator=None, transform=None):
    """A function returning the next (x, y) mini-batch: each epoch visits every example once, in a new
    random order drawn from generator (the last incomplete batch of an epoch is dropped).
    transform(x) (e.g. data augmentation) is applied to each batch of inputs."""
    n = len(X) // batch_size * batch_size
    if n == 0:
        raise ValueError(f"batch_size {batch_size} is larger than the {len(X)} examples")
    order, position = None, n

    def next_batch():
        nonlocal order, position
        if position >= n:
            order, position = torch.randperm(len(X), generator=generator).to(X.device), 0
        index = order[position:position + batch_size]
        position += batch_size
        xb = X[index]
        return (transform(xb) if transform is not None else xb), y[index]

    return next_batch


# ----------------------------------------------------------------------------- figures

def _grid(n, ncols, size=1.3):
    import matplotlib.pyplot as plt

    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 1.15), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes.flat


def _image(x):
    x = x.detach().float().cpu().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=float)
    return x.reshape(x.shape[-2], x.shape[-1])


def show_images(images, labels=None, predictions=None, class_names=CLASSES, ncols=10, title=None):
    """A grid of grey images (N, 28, 28) or (N, 1, 28, 28), each titled with its class name; with
    predictions, 'predicted (true)' in red where they differ."""
    fig, axes = _grid(len(images), ncols)
    for i, ax in zip(range(len(images)), axes):
        ax.imshow(_image(images[i]), cmap="gray_r")
        if labels is None:
            continue
        true = class_names[int(labels[i])]
        if predictions is None:
            ax.set_title(true, fontsize=8)
        else:
            guess = class_names[int(predictions[i])]
            wrong = guess != true
            ax.set_title(f"{guess}\n({true})" if wrong else guess, fontsize=7, color="red" if wrong else "black")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(counts, class_names=CLASSES, ax=None, title="confusion matrix"):
    """counts[i, j]: how many examples of true class i were predicted as class j; each cell shows its count."""
    counts = np.asarray(counts.cpu() if hasattr(counts, "cpu") else counts)
    ax = _axes(ax, figsize=(7, 6))
    image = ax.imshow(counts, cmap="Blues")
    k = len(class_names)
    ax.set_xticks(range(k), class_names, rotation=60, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    high = counts.max() / 2 if counts.size else 0
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            if counts[i, j]:
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if counts[i, j] > high else "black")
    ax.figure.colorbar(image, ax=ax, fraction=0.046)
    return ax


def show_filters(weight, ncols=8, title="first-layer filters"):
    """The kernels of a first convolution (C_out, 1, K, K), each on its own colour scale (red +, blue -)."""
    w = weight.detach().float().cpu()
    fig, axes = _grid(w.shape[0], ncols, size=1.0)
    for i, ax in zip(range(w.shape[0]), axes):
        kernel = w[i, 0].numpy()
        scale = float(np.abs(kernel).max()) or 1.0
        ax.imshow(kernel, cmap="RdBu_r", vmin=-scale, vmax=scale)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
