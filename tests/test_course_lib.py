import math

import numpy as np
import pytest
import torch

from course_lib import budget, is_graded
from course_lib.asserts import (assert_close, assert_gradients_match_torch, assert_shape, numerical_gradient,
                               relative_error)
from course_lib.device import pick_device, seed_everything
from course_lib.train import fit


def test_grading_switch(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert not is_graded() and budget(full=1000, graded=10) == 1000
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert is_graded() and budget(full=1000, graded=10) == 10


def test_time_caps_scale_for_a_slower_cpu(monkeypatch):
    from course_lib.budget import TIME_CAP_VARIABLE, time_cap

    monkeypatch.delenv(TIME_CAP_VARIABLE, raising=False)
    assert time_cap(330) == 330
    monkeypatch.setenv(TIME_CAP_VARIABLE, "0.5")  # what `course verify LAB --time-caps 0.5` sets for the kernel
    assert time_cap(330) == 165


def test_assert_close_messages_say_what_differs():
    assert_close(1.0, 1.0 + 1e-9)
    with pytest.raises(AssertionError, match=r"a.grad: expected 138.8338, got 138.9 \(differs by 0.0662"):
        assert_close(138.9, 138.8338, name="a.grad", atol=1e-4, rtol=0)
    with pytest.raises(AssertionError, match=r"1 of 3 entries differ; worst at index \(2,\): expected 3, got 4"):
        assert_close(torch.tensor([1.0, 2.0, 4.0]), [1, 2, 3])
    with pytest.raises(AssertionError, match="expected shape"):
        assert_close(np.zeros(3), np.zeros(4))
    with pytest.raises(AssertionError, match="non-finite"):
        assert_close(float("nan"), 1.0)


def test_assert_close_reads_micrograd_like_values():
    class Value:
        def __init__(self, data):
            self.data = data

    assert_close(Value(2.5), 2.5)
    with pytest.raises(AssertionError):
        assert_close(Value(2.6), 2.5)


def test_numerical_and_torch_gradients_agree():
    f = lambda v: v[0] * v[1] + v[1] ** 3  # noqa: E731
    grads = numerical_gradient(f, [2.0, -3.0], h=1e-5)
    assert_close(grads, [-3.0, 2.0 + 27.0], atol=1e-5)
    assert_gradients_match_torch(f, [2.0, -3.0], [-3.0, 29.0])
    with pytest.raises(AssertionError, match="gradient"):
        assert_gradients_match_torch(f, [2.0, -3.0], [-3.0, 28.0])


def test_shape_and_relative_error():
    assert_shape(torch.zeros(2, 3), (2, 3))
    with pytest.raises(AssertionError, match=r"expected shape \(3, 2\), got \(2, 3\)"):
        assert_shape(torch.zeros(2, 3), (3, 2))
    assert relative_error([1.0], [1.0]) == 0 and relative_error([1.0], [3.0]) == pytest.approx(0.5)


def test_device_choice_is_printed_and_cpu_when_graded(monkeypatch, capsys):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert pick_device().type == "cpu"
    assert "using device: cpu" in capsys.readouterr().out


def test_seeding_makes_runs_repeatable():
    seed_everything(7)
    a = (torch.rand(3), np.random.rand(), __import__("random").random())
    seed_everything(7)
    b = (torch.rand(3), np.random.rand(), __import__("random").random())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


def test_fit_reduces_the_loss_of_a_linear_regression():
    seed_everything(0)
    X = torch.randn(256, 3)
    y = X @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    model = torch.nn.Linear(3, 1)

    def batches():
        idx = torch.randint(0, 256, (32,))
        return X[idx], y[idx]

    def loss(m, batch):
        return torch.nn.functional.mse_loss(m(batch[0]).squeeze(-1), batch[1])

    history = fit(model, batches, loss, torch.optim.SGD(model.parameters(), lr=0.1), steps=200,
                  evaluate=lambda: {"full": loss(model, (X, y)).item()}, eval_every=50, progress=False)
    assert len(history.losses) == 200 and history.losses[-1] < 1e-3 < history.losses[0]
    assert history.last("full") < 1e-3 and len(history.evals) == 5


def test_fit_stops_on_a_diverging_loss():
    model = torch.nn.Linear(1, 1)
    X = torch.ones(4, 1)
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        fit(model, lambda: X, lambda m, b: (m(b) * 1e30).pow(2).sum() * math.inf, torch.optim.SGD(model.parameters(), lr=1.0),
            steps=3, progress=False)


def test_plots_draw(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from course_lib.plots import plot_decision_boundary, plot_losses

    ax = plot_losses([3.0, 2.0, 1.5, 1.2, 1.1], smooth=2)
    assert len(ax.lines) == 2
    X = np.array([[0.0, 0.0], [1.0, 1.0]])
    ax = plot_decision_boundary(lambda p: p[:, 0] - 0.5, X, [0, 1])
    ax.figure.savefig(tmp_path / "b.png")
    assert (tmp_path / "b.png").stat().st_size > 1000
