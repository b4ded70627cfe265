"""Checks for the visible tests of the labs: failures say what differs and by how much."""

import numpy as np


def _as_array(x):
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().double().numpy()
    elif hasattr(x, "data") and isinstance(getattr(x, "data"), (int, float)):  # a micrograd Value
        x = x.data
    return np.asarray(x, dtype=np.float64)


def assert_close(actual, expected, *, atol=1e-6, rtol=1e-6, name="value"):
    """Assert |actual - expected| <= atol + rtol*|expected| elementwise, with a useful message.

    Accepts numbers, lists, numpy arrays, torch tensors and objects with a numeric `.data`
    (micrograd's Value).
    """
    a, e = _as_array(actual), _as_array(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{name}: expected shape {e.shape}, got shape {a.shape}")
    if not np.all(np.isfinite(a)) and np.all(np.isfinite(e)):
        raise AssertionError(f"{name}: got non-finite values (nan or inf): {a}")
    diff = np.abs(a - e)
    allowed = atol + rtol * np.abs(e)
    if np.all(diff <= allowed):
        return
    if a.ndim == 0:
        raise AssertionError(
            f"{name}: expected {float(e):.8g}, got {float(a):.8g} "
            f"(differs by {float(diff):.3g}; tolerance {float(allowed):.3g})"
        )
    worst = np.unravel_index(np.argmax(diff - allowed), diff.shape)
    n_bad = int(np.sum(diff > allowed))
    raise AssertionError(
        f"{name}: {n_bad} of {a.size} entries differ; worst at index {tuple(int(i) for i in worst)}: "
        f"expected {e[worst]:.8g}, got {a[worst]:.8g} (differs by {diff[worst]:.3g}; "
        f"tolerance {allowed[worst]:.3g})"
    )


def numerical_gradient(f, xs, h=1e-6):
    """Centred finite differences of a scalar function f(list of floats) at the point xs."""
    xs = [float(x) for x in xs]
    grads = []
    for i in range(len(xs)):
        up = xs.copy()
        down = xs.copy()
        up[i] += h
        down[i] -= h
        grads.append((f(up) - f(down)) / (2 * h))
    return grads


def assert_gradients_match_torch(f, xs, grads, *, atol=1e-6, rtol=1e-6, name="gradient"):
    """Compare `grads` (yours) with torch's float64 autograd of f at xs.

    f takes a list of scalar torch tensors and returns a scalar tensor; it is written with
    operations that both torch and your engine understand (+, *, **, tanh via .tanh(), ...).
    """
    import torch

    leaves = [torch.tensor(float(x), dtype=torch.float64, requires_grad=True) for x in xs]
    out = f(leaves)
    out.backward()
    expected = [0.0 if t.grad is None else t.grad.item() for t in leaves]
    assert_close(grads, expected, atol=atol, rtol=rtol, name=name)


def assert_shape(tensor, shape, *, name="tensor"):
    """Assert a tensor or array has exactly this shape."""
    got = tuple(tensor.shape)
    if got != tuple(shape):
        raise AssertionError(f"{name}: expected shape {tuple(shape)}, got {got}")


def relative_error(a, b):
    """max |a-b| / max(1e-8, |a|+|b|), as cs231n reports it."""
    a, b = _as_array(a), _as_array(b)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


CREDIT_MIME = "application/vnd.course.credit+json"
CELL_NONCE = None  # set by the grader before each test cell (course_lib.guard)


class Credit:
    """Points per check inside one test cell, each with its own message (nbgrader alone gives all or nothing).

        credit = Credit()
        with credit.check(2, "a + a: a.grad should be 2"):
            assert ...
        with credit.check(1, "diamond graph matches torch"):
            assert_close(...)
        credit.report()   # last line of the cell

    A failed check costs its points only; its message (and the assertion's) is what the student sees.
    """

    def __init__(self):
        self.results = []  # (points, passed, message)

    def check(self, points, message):
        return _Check(self, points, message)

    def report(self):
        from IPython.display import display

        earned = sum(p for p, ok, _ in self.results if ok)
        total = sum(p for p, _, _ in self.results)
        for points, ok, message in self.results:
            print(f"[{'ok' if ok else 'FAIL'}] {points:g} point{'s' if points != 1 else ''}: {message}")
        display({CREDIT_MIME: {"nonce": CELL_NONCE, "checks": [{"points": p, "passed": ok, "message": m}
                                                               for p, ok, m in self.results]},
                 "text/plain": f"{earned:g} / {total:g} points"}, raw=True)
        if earned == 0 and total > 0:
            raise AssertionError("no check passed: " + "; ".join(m for _, _, m in self.results))


class _Check:
    def __init__(self, credit, points, message):
        self.credit, self.points, self.message = credit, points, message

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is not None and not issubclass(kind, Exception):
            return False  # KeyboardInterrupt, SystemExit: let them through
        message = self.message if kind is None else f"{self.message} ({kind.__name__}: {error})" if str(error) else f"{self.message} ({kind.__name__})"
        self.credit.results.append((self.points, kind is None, message))
        return True
