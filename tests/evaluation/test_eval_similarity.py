"""Similarity measures: known answers, invariances and a cross-check against SciPy."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from xaisurvey.evaluation import normalize_map, rank, spearman, ssim, top_k_intersection


def test_rank_averages_ties():
    assert rank(torch.tensor([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_spearman_hand_computed():
    # ranks a = [1, 2, 3, 4], ranks b = [2, 1, 4, 3]; d = [1, 1, 1, 1];
    # rho = 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 24 / 60 = 0.6
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    b = torch.tensor([20.0, 10.0, 40.0, 30.0])
    assert spearman(a, b) == pytest.approx(0.6)


def test_spearman_reversal_is_minus_one():
    a = torch.arange(10.0)
    assert spearman(a, -a) == pytest.approx(-1.0)


def test_spearman_abs_ignores_sign():
    a = torch.tensor([[-3.0, 1.0], [2.0, -0.5]])
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, -a, absolute=True) == pytest.approx(1.0)


def test_spearman_flat_map_is_zero_not_nan():
    flat = torch.zeros(4, 4)
    assert spearman(flat, torch.rand(4, 4)) == 0.0
    assert spearman(flat, flat) == 0.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-1000, 1000), min_size=3, max_size=30), st.integers(0, 2**31 - 1))
def test_spearman_matches_scipy_and_is_invariant_to_monotone_maps(values, seed):
    scipy_stats = pytest.importorskip("scipy.stats")
    a = torch.tensor(values, dtype=torch.float64)
    b = torch.rand(len(values), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    ours = spearman(a, b)
    if a.unique().numel() > 1:
        assert ours == pytest.approx(scipy_stats.spearmanr(a.numpy(), b.numpy()).statistic, abs=1e-9)
    # strictly increasing transforms keep the ranks, hence rho
    assert spearman(torch.exp(a / 500), b) == pytest.approx(ours, abs=1e-9)
    assert spearman(a * 3 + 7, b**3) == pytest.approx(ours, abs=1e-9)


def test_spearman_errors():
    with pytest.raises(ValueError, match="same shape"):
        spearman(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        spearman(torch.tensor([1.0, float("nan")]), torch.tensor([1.0, 2.0]))
    with pytest.raises(TypeError):
        spearman(np.zeros(3), torch.zeros(3))


def test_ssim_identical_is_one_and_symmetric():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(20, 20, generator=g), torch.rand(20, 20, generator=g)
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, b) == pytest.approx(ssim(b, a))
    assert ssim(a, b) < 0.5


def test_ssim_flat_maps_do_not_give_nan():
    assert ssim(torch.zeros(8, 8), torch.zeros(8, 8)) == pytest.approx(1.0)
    value = ssim(torch.zeros(8, 8), torch.rand(8, 8, generator=torch.Generator().manual_seed(1)))
    assert np.isfinite(value)


def test_ssim_single_window_matches_global_formula():
    # With a window as large as the map and a huge sigma the Gaussian window is uniform over
    # the whole map, so SSIM is the textbook global formula computed here by hand with NumPy.
    g = torch.Generator().manual_seed(2)
    a, b = torch.rand(9, 9, generator=g, dtype=torch.float64), torch.rand(9, 9, generator=g, dtype=torch.float64)
    x, y = a.numpy(), b.numpy()
    c1, c2 = 0.01**2, 0.03**2
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(), y.var()
    cov = ((x - mx) * (y - my)).mean()
    expected = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    assert ssim(a, b, window=9, sigma=1e6, normalize=False) == pytest.approx(expected, rel=1e-9)


def test_ssim_is_scale_invariant_when_normalised():
    a = torch.rand(12, 12, generator=torch.Generator().manual_seed(3))
    b = torch.rand(12, 12, generator=torch.Generator().manual_seed(4))
    assert ssim(a * 1000, b) == pytest.approx(ssim(a, b))


def test_ssim_errors():
    with pytest.raises(ValueError, match="larger than"):
        ssim(torch.zeros(5, 5), torch.zeros(5, 5), window=7)
    with pytest.raises(ValueError, match="odd"):
        ssim(torch.zeros(8, 8), torch.zeros(8, 8), window=4)
    with pytest.raises(ValueError, match="2-D"):
        ssim(torch.zeros(2, 8, 8), torch.zeros(2, 8, 8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ssim(torch.full((8, 8), 2.0), torch.zeros(8, 8), normalize=False)


def test_normalize_map_flat_is_zero():
    assert normalize_map(torch.full((3, 3), 5.0)).abs().sum() == 0
    assert normalize_map(torch.tensor([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]


def test_top_k_intersection():
    a = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0])
    b = torch.tensor([1.0, 4.0, 3.0, 2.0, 5.0])
    assert top_k_intersection(a, b, 2) == 0.5  # {0, 1} vs {4, 1}
    assert top_k_intersection(a, a, 3) == 1.0
    assert top_k_intersection(torch.zeros(4), torch.zeros(4), 2) == 1.0  # ties by index
    with pytest.raises(ValueError, match="k must be"):
        top_k_intersection(a, b, 0)
