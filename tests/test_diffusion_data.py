"""course_lib.diffusion_data: lab 6's toy data and distances."""
import numpy as np
import pytest
import torch

from course_lib.diffusion_data import (chamfer_distance, gaussian_mixture, gaussian_mixture_pdf, swiss_roll, two_moons,
                                       wasserstein_1d)


def test_gaussian_mixture_weights_modes_and_seed():
    x = gaussian_mixture(50_000, seed=0)
    assert x.shape == (50_000, 1) and x.dtype == torch.float32
    assert abs((x < 0).float().mean().item() - 0.3) < 0.01  # 30% of the mass around -0.5
    assert abs(x.mean().item() - 0.2) < 0.01 and abs(x.std().item() - 0.5) < 0.01  # 0.3(-0.5) + 0.7(0.5); var 0.04 + 0.21
    assert torch.equal(x, gaussian_mixture(50_000, seed=0)) and not torch.equal(x, gaussian_mixture(50_000, seed=1))


def test_mixture_pdf_integrates_to_one():
    grid = np.linspace(-3, 3, 6001)
    assert abs(np.trapezoid(gaussian_mixture_pdf(grid), grid) - 1) < 1e-6


def test_swiss_roll_is_normalised_like_the_kaist_assignment():
    x = swiss_roll(4000, seed=0)
    assert x.shape == (4000, 2) and x.dtype == torch.float32
    assert abs(x.mean().item()) < 1e-5 and abs(x.double().std(unbiased=False).item() - 2.0) < 1e-3  # one mean, one std, ×2
    assert torch.equal(x, swiss_roll(4000, seed=0))
    assert two_moons(100).shape == (100, 2)


def test_wasserstein_1d_matches_known_values():
    assert wasserstein_1d([0.0, 1.0], [0.0, 1.0]) == 0.0
    assert wasserstein_1d([0.0], [2.5]) == pytest.approx(2.5)
    a = torch.randn(1000, 1, generator=torch.Generator().manual_seed(0))
    assert wasserstein_1d(a, a + 0.3) == pytest.approx(0.3)  # a shift moves all the mass by 0.3
    assert wasserstein_1d([0.0, 1.0, 2.0], [1.0]) == pytest.approx(2 / 3)  # unequal sizes
    scipy_stats = pytest.importorskip("scipy.stats")
    b = np.random.default_rng(1).normal(size=700)
    assert wasserstein_1d(a, b) == pytest.approx(scipy_stats.wasserstein_distance(a.ravel().numpy(), b))


def test_chamfer_distance_sums_squared_nearest_distances_both_ways():
    a = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[0.0, 0.5]])
    # a -> b: 0.25 + 1.25; b -> a: 0.25
    assert chamfer_distance(a, b) == pytest.approx(1.75)
    assert chamfer_distance(a, a) == 0.0
    x = swiss_roll(3000, seed=2)
    assert chamfer_distance(x, x.flip(0), chunk=700) == 0.0  # chunking changes nothing
    with pytest.raises(ValueError):
        chamfer_distance(torch.zeros(3, 2), torch.zeros(3, 3))
