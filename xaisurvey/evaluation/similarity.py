"""How alike are two attribution maps? Spearman rank correlation, SSIM and top-k
intersection.

These are the similarity measures of the sanity checks of Adebayo et al. (2018): a map
computed on a randomised model is compared with the map of the trained model. All
functions take two maps of the same shape (any shape; they are compared pixel by pixel)
and return a Python float.

Conventions shared by every function here:

* a *flat* map (all values equal) carries no ranking and no structure; functions that
  would divide by zero on it return ``0.0`` (never NaN), and say so in their docstring;
* NaN or infinite values are an error, not something to average away;
* maps may live on any device in any floating dtype: they are copied to the CPU in
  float64 before the statistics are computed (ranks and sums over 50,000 pixels need
  float64, which MPS does not have; the result is a Python float anyway), so a map gives
  the same number on every device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["rank", "spearman", "ssim", "top_k_intersection", "normalize_map"]


def _cpu64(t: torch.Tensor) -> torch.Tensor:
    """A detached CPU float64 copy (moved first, converted second: MPS has no
    float64)."""
    return t.detach().cpu().to(torch.float64)


def _check_pair(
    a: torch.Tensor, b: torch.Tensor, what: str
) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        raise TypeError(
            f"{what}: both maps must be torch tensors, got {type(a).__name__} and "
            f"{type(b).__name__}"
        )
    if a.shape != b.shape:
        raise ValueError(
            f"{what}: the two maps must have the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )
    if a.numel() < 2:
        raise ValueError(
            f"{what}: a map needs at least 2 values, got shape {tuple(a.shape)}"
        )
    a = _cpu64(a)
    b = _cpu64(b)
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise ValueError(f"{what}: the maps contain NaN or infinite values")
    return a, b


def rank(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n of the flattened ``values``, ties sharing their average rank
    ("fractional" ranks).

    Example:
        >>> rank(torch.tensor([10.0, 30.0, 20.0, 30.0])).tolist()
        [1.0, 3.5, 2.0, 3.5]
    """
    flat = _cpu64(values).flatten()
    order = torch.argsort(flat, stable=True)
    sorted_values = flat[order]
    n = flat.numel()
    positions = torch.arange(1, n + 1, dtype=torch.float64)
    # Average the positions inside each run of equal values.
    _, inverse, counts = torch.unique_consecutive(
        sorted_values, return_inverse=True, return_counts=True
    )
    sums = torch.zeros(counts.numel(), dtype=torch.float64).index_add_(
        0, inverse, positions
    )
    averaged = (sums / counts.to(torch.float64))[inverse]
    ranks = torch.empty(n, dtype=torch.float64)
    ranks[order] = averaged
    return ranks


def spearman(a: torch.Tensor, b: torch.Tensor, *, absolute: bool = False) -> float:
    """Spearman rank correlation of two maps: the Pearson correlation of their ranks.

    ``rho = cov(rank(a), rank(b)) / (std(rank(a)) * std(rank(b)))``, ties get average
    ranks (as ``scipy.stats.spearmanr``). With ``absolute=True`` both maps are replaced
    by their absolute values first, which ignores the sign of the evidence (Adebayo et
    al. report both).

    Args:
        a, b: maps of the same shape, any number of dimensions (flattened).
        absolute: compare ``|a|`` with ``|b|``.

    Returns:
        rho in [-1, 1]; ``0.0`` when either map is flat (its ranks carry no order).

    Example:
        >>> a = torch.tensor([[0.1, 0.5], [0.2, 0.9]])
        >>> spearman(a, a.exp())  # any increasing transform keeps the ranks
        1.0
    """
    a, b = _check_pair(a, b, "spearman")
    if absolute:
        a, b = a.abs(), b.abs()
    ra, rb = rank(a), rank(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = torch.sqrt((ra * ra).sum() * (rb * rb).sum())
    if denominator == 0:
        return 0.0
    return float(((ra * rb).sum() / denominator).clamp(-1.0, 1.0))


def normalize_map(m: torch.Tensor) -> torch.Tensor:
    """Min-max scale a map to [0, 1]; a flat map becomes all zeros (never NaN)."""
    m = _cpu64(m)
    low, high = m.min(), m.max()
    if high == low:
        return torch.zeros_like(m)
    return (m - low) / (high - low)


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    window: int = 7,
    sigma: float = 1.5,
    normalize: bool = True,
    k1: float = 0.01,
    k2: float = 0.03,
) -> float:
    """Structural similarity (Wang et al., 2004) of two 2-D maps, averaged over all
    windows.

    For each Gaussian-weighted ``window x window`` patch (valid positions only, no
    padding)::

        SSIM = ((2 mu_a mu_b + C1) (2 cov_ab + C2))
               / ((mu_a^2 + mu_b^2 + C1) (var_a + var_b + C2))

    with ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2`` and data range ``L = 1``. The result is
    the mean over patches.

    Args:
        a, b: maps of shape (H, W) (a leading channel axis of size 1 is accepted).
        window: side of the (odd) Gaussian window; at most min(H, W). 7 suits 28 x 28
            MNIST maps.
        sigma: standard deviation of the Gaussian window, in pixels.
        normalize: min-max scale each map to [0, 1] first (maps from randomised models
            have other scales; a flat map becomes zeros). With ``False`` the maps must
            already lie in [0, 1].

    Returns:
        SSIM in [-1, 1]; 1 exactly when the (normalised) maps are equal.

    Example:
        >>> m = torch.rand(16, 16, generator=torch.Generator().manual_seed(0))
        >>> round(ssim(m, m), 6)
        1.0
    """
    a, b = _check_pair(a, b, "ssim")
    if a.dim() == 3 and a.shape[0] == 1:
        a, b = a[0], b[0]
    if a.dim() != 2:
        raise ValueError(
            f"ssim: expected 2-D maps (H, W), got shape {tuple(a.shape)}; reduce the "
            "channels first"
        )
    if window < 1 or window % 2 == 0:
        raise ValueError(f"ssim: window must be a positive odd number, got {window}")
    if window > min(a.shape):
        raise ValueError(
            f"ssim: window {window} is larger than the map {tuple(a.shape)}"
        )
    if normalize:
        a, b = normalize_map(a), normalize_map(b)
    elif min(a.min(), b.min()) < 0 or max(a.max(), b.max()) > 1:
        raise ValueError("ssim: with normalize=False the maps must lie in [0, 1]")
    c1, c2 = k1**2, k2**2
    w = _gaussian_window(window, sigma)[None, None]

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t[None, None], w)[0, 0]

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    numerator = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    denominator = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float((numerator / denominator).mean().clamp(-1.0, 1.0))


def top_k_intersection(a: torch.Tensor, b: torch.Tensor, k: int) -> float:
    """Fraction of the ``k`` highest-valued pixels of ``a`` that are also among the
    ``k`` highest of ``b``.

    Ties are broken by pixel index (earlier first), so the result is deterministic.

    Example:
        >>> top_k_intersection(
        ...     torch.tensor([4.0, 3.0, 2.0, 1.0]),
        ...     torch.tensor([3.0, 4.0, 1.0, 2.0]),
        ...     k=2,
        ... )
        1.0
    """
    a, b = _check_pair(a, b, "top_k_intersection")
    n = a.numel()
    if not 1 <= k <= n:
        raise ValueError(f"top_k_intersection: k must be in 1..{n}, got {k}")
    top_a = torch.argsort(-a.flatten(), stable=True)[:k]
    top_b = torch.argsort(-b.flatten(), stable=True)[:k]
    shared = torch.isin(top_a, top_b).sum()
    return float(shared) / k
