"""Lab 5's answers: the normalisation, the convolution by hand, LeNet, the evaluation, the convnet, its
augmentation and the confusion matrix of the lab's reference solution.

Lab 5's hidden tests judge each exercise on its own with these. Its two training runs use several pieces at
once: LeNet's (section 3) the normalisation, `lenet`, `evaluate` and the learning rate the student chose; the
convnet's (section 4) the normalisation, `convnet`, `augment` and `evaluate`. When a run misses its test's bar
and exactly one of its pieces differs from the reference here (so it has already lost its own cell's points),
the test repeats the run with the reference in its place (`judged_lenet`, `judged_convnet`): a slip in one
exercise costs that exercise's points only. The runs are the notebook's own `train` (a given cell), called
with the reference's piece swapped into the notebook's namespace, where `train` looks its names up.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib import reference as pieces
from course_lib.budget import budget, is_graded, time_cap
from course_lib.device import autocast
from course_lib.reference import same_tensor as _close, swap

ANSWERS_OF = "05_convnets"  # `course bundle` packs this module only once lab 5's window has closed

PIXEL_MEAN, PIXEL_STD = 0.28604, 0.35302  # of Fashion-MNIST's 60,000 training images, pixels scaled to [0, 1]


def to_input(images, mean, std):
    return ((images.float() / 255 - mean) / std).unsqueeze(1)


def conv_output_size(W, K, P=0, S=1):
    return (W - K + 2 * P) // S + 1


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )


def evaluate(model, X, y, batch_size=1000):
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(X), batch_size):
            xb, yb = X[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
            with autocast(device):
                logits = model(xb)
            total_loss += F.cross_entropy(logits.float(), yb, reduction="sum").item()
            correct += (logits.argmax(dim=1) == yb).sum().item()
    model.train(was_training)
    return {"loss": total_loss / len(X), "acc": correct / len(X)}


def convnet(dropout=0.25):
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(dropout),
        nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(128, 10),
    )


def augment(x, max_shift=1, generator=None):
    N, _, H, W = x.shape
    flip = torch.rand(N, generator=generator) < 0.5
    x = torch.where(flip.view(N, 1, 1, 1).to(x.device), x.flip(3), x)
    shifts = torch.randint(-max_shift, max_shift + 1, (N, 2), generator=generator).to(x.device)
    # torch.roll of each image, at once: row r of the output is row (r - dy) mod H of the input
    rows = (torch.arange(H, device=x.device) - shifts[:, :1]) % H          # (N, H)
    cols = (torch.arange(W, device=x.device) - shifts[:, 1:]) % W          # (N, W)
    n = torch.arange(N, device=x.device).view(N, 1, 1, 1)
    c = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return x[n, c, rows.view(N, 1, H, 1), cols.view(N, 1, 1, W)]


def confusion_matrix(y_true, y_pred, n_classes=10):
    return torch.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).view(n_classes, n_classes)


# ---- does an exercise agree with the reference? (probes on inputs of their own; any error means no)

def _same_normalisation(ns):
    images = torch.tensor([[[0, 255], [51, 102]]], dtype=torch.uint8)
    return (abs(float(ns["pixel_mean"]) - PIXEL_MEAN) < 2e-5 and abs(float(ns["pixel_std"]) - PIXEL_STD) < 2e-5
            and _close(ns["to_input"](images, 0.5, 0.25), to_input(images, 0.5, 0.25), atol=1e-6))


def _same_network(make_mine, make_ref, *args):
    torch.manual_seed(0)
    ref = make_ref(*args).eval()
    mine = make_mine(*args).eval()
    if [type(m) for m in mine.modules()] != [type(m) for m in ref.modules()]:
        return False
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return _close(mine(x), ref(x), atol=1e-5)


def _same_convnet(ns):
    return _same_network(ns["convnet"], convnet) and _same_network(ns["convnet"], convnet, 0.5) and \
        [m.p for m in ns["convnet"](0.5).modules() if isinstance(m, nn.Dropout)] == [0.5, 0.5]


def _same_evaluate(ns):
    fn = ns["evaluate"]
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Dropout(0.5),
                          nn.Linear(4 * 26 * 26, 10)).train()
    for _ in range(3):
        model(torch.randn(16, 1, 28, 28) * 2 + 1)  # running statistics away from their start
    gen = torch.Generator().manual_seed(2)
    X, y = torch.randn(250, 1, 28, 28, generator=gen), torch.randint(0, 10, (250,), generator=gen)
    running = model[1].running_mean.clone()
    mine = fn(model, X, y, batch_size=100)
    if not (model.training and torch.equal(model[1].running_mean, running)):
        return False
    want = evaluate(model, X, y, batch_size=100)
    if set(mine) != {"loss", "acc"} or abs(mine["loss"] - want["loss"]) > 1e-5 or abs(mine["acc"] - want["acc"]) > 1e-9:
        return False
    seen = []

    class GradProbe(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(784, 10)

        def forward(self, x):
            seen.append(torch.is_grad_enabled())
            return self.linear(x.flatten(1))
    fn(GradProbe(), X, y, batch_size=100)
    return bool(seen) and not any(seen)


def _variants(x, max_shift):
    """Every image x[i] may become: flipped left-right or not, then rolled by (dy, dx), |dy|, |dx| <= max_shift."""
    shifts = range(-max_shift, max_shift + 1)
    return [(flip, dy, dx, torch.roll(x.flip(3) if flip else x, (dy, dx), dims=(2, 3)))
            for flip in (False, True) for dy in shifts for dx in shifts]


def augment_draws(out, x, max_shift):
    """For each image of out, the (flip, dy, dx) that made it from x, or None when none did."""
    variants = _variants(x, max_shift)
    same = torch.stack([(v == out).flatten(1).all(1) for _, _, _, v in variants])  # (variant, image), at once
    return [variants[int(same[:, i].nonzero()[0])][:3] if same[:, i].any() else None for i in range(len(x))]


def _same_augment(ns):
    fn = ns["augment"]
    x = torch.randn(200, 1, 28, 28, generator=torch.Generator().manual_seed(3))  # no image is its own flip or shift
    before = x.clone()
    out = fn(x, max_shift=2, generator=torch.Generator().manual_seed(4))
    if not torch.equal(x, before) or tuple(out.shape) != tuple(x.shape):
        return False
    draws = augment_draws(out, x, 2)
    if None in draws:
        return False
    flips = sum(flip for flip, _, _ in draws)
    if not 70 <= flips <= 130 or len({(dy, dx) for _, dy, dx in draws}) < 20:
        return False
    again = fn(x, max_shift=2, generator=torch.Generator().manual_seed(4))
    only_flips = augment_draws(fn(x[:50], max_shift=0, generator=torch.Generator().manual_seed(5)), x[:50], 0)
    return torch.equal(out, again) and None not in only_flips


_PROBES = {"normalisation": _same_normalisation,
           "lenet": lambda ns: _same_network(ns["lenet"], lenet),
           "evaluate": _same_evaluate,
           "convnet": _same_convnet,
           "augment": _same_augment}


def wrong_pieces(ns, names):
    """The names among `names` whose definition in the namespace ns differs from the reference (or fails)."""
    return pieces.wrong_pieces(ns, names, _PROBES)


def _correct(name, ns):
    """The names to swap in for a wrong piece; a wrong normalisation also made every input the runs read."""
    if name != "normalisation":
        return {name: globals()[name]}
    X_train, X_test = to_input(ns["X_train_u8"], PIXEL_MEAN, PIXEL_STD), to_input(ns["X_test_u8"], PIXEL_MEAN, PIXEL_STD)
    device = ns["device"]
    return {"to_input": to_input, "pixel_mean": PIXEL_MEAN, "pixel_std": PIXEL_STD, "X_train": X_train, "X_test": X_test,
            "X_tr": X_train[:55000].to(device), "X_val": X_train[55000:].to(device)}


# ---- section 3: LeNet's run (the notebook's cell train_lenet, with its given train(); keep the two together)

LENET_PIECES = ["normalisation", "lenet", "evaluate"]


def _passes_lenet(lenet_history, lenet_test):
    try:
        last = sum(lenet_history.losses[-50:]) / 50
        limit = 0.88 if not is_graded() else 0.76
        return (last < 1.15 and lenet_test["acc"] >= limit
                and abs(lenet_history.losses[0] - math.log(10)) < 0.3)
    except Exception:
        return False


def _run_lenet(ns, wrong):
    torch.manual_seed(0)
    model = ns["lenet"]()
    history = ns["train"](model, epochs=5, lr=ns["lenet_lr"])
    test = ns["evaluate"](model, ns["X_test"], ns["y_test"])
    print(f"  that run: LeNet test accuracy {test['acc']:.4f}")
    return history, test


def judged_lenet(ns):
    """(lenet_history, lenet_test): the notebook's, or when they miss the test's bar and exactly one of LeNet's
    pieces is wrong, those of the same run (your learning rate) with the reference in its place."""
    return pieces.judged_run(ns, ("lenet_history", "lenet_test"), _passes_lenet, LENET_PIECES, "Your LeNet run",
                             _run_lenet, _PROBES, _correct)


# ---- section 4: the convnet's run (the notebook's cell train_convnet; keep the two together)

CONVNET_PIECES = ["normalisation", "convnet", "augment", "evaluate"]


def _passes_convnet(model, history, convnet_acc):
    try:
        limit = 0.905 if not is_graded() else 0.6
        return (convnet_acc >= limit and not model.training and history.evals[-1][1]["val acc"] > 0.5
                and model[1].num_batches_tracked.item() == history.info["steps"])
    except Exception:
        return False


def _run_convnet(ns, wrong):
    torch.manual_seed(0)
    model = ns["convnet"]().to(memory_format=torch.channels_last)
    augment_generator = torch.Generator().manual_seed(1)
    history = ns["train"](model, epochs=18, lr=3e-3, max_seconds=time_cap(330), graded_steps=100,
                          transform=lambda x: ns["augment"](x, max_shift=1, generator=augment_generator))
    n = budget(full=10000, graded=2000)
    acc = ns["evaluate"](model, ns["X_test"][:n], ns["y_test"][:n])["acc"]
    print(f"  that run: convnet test accuracy {acc:.4f}")
    return model, history, acc


def judged_convnet(ns):
    """(model, history, convnet_acc): the notebook's, or when they miss the test's bar and exactly one of the
    convnet's pieces is wrong, those of the same run with the reference in its place."""
    return pieces.judged_run(ns, ("model", "history", "convnet_acc"), _passes_convnet, CONVNET_PIECES,
                             "Your convnet run", _run_convnet, _PROBES, _correct)
