"""Complexity of a map: how few pixels carry its mass (sparseness, Chalasani et al.
2020) and its entropy.

* :func:`gini`: the Gini index of the absolute values (Hurley and Rickard 2009, used as
  "sparseness" by Chalasani et al. 2020): with ``a`` sorted ascending,
  ``a_1 <= ... <= a_n``, ``G = sum_k (2k - n - 1) a_k / (n sum_k a_k)``. 0 for a flat
  map (every pixel the same), ``1 - 1/n`` for a map with one non-zero pixel; a map of
  zeros scores 0 (no mass to concentrate).
* :func:`discrete_entropy`: the Shannon entropy (nats) of the histogram of a map's
  values in ``bins`` equal bins between its minimum and maximum (the complexity Hedström
  et al. 2023 use in eMPRT); 0 for a flat map.
"""

from __future__ import annotations

import math

import torch

__all__ = ["gini", "discrete_entropy"]


def gini(attribution: torch.Tensor) -> float:
    """Gini index of ``|attribution|`` (any shape, flattened); in [0, 1 - 1/n].

    Example:
        >>> gini(torch.ones(4)), gini(torch.tensor([0.0, 0.0, 0.0, 5.0]))
        (0.0, 0.75)
    """
    if not isinstance(attribution, torch.Tensor):
        raise TypeError(
            "gini: attribution must be a torch tensor, got "
            f"{type(attribution).__name__}"
        )
    a = attribution.detach().flatten().abs().to(torch.float64)
    if not torch.isfinite(a).all():
        raise ValueError("gini: attribution contains NaN or infinite values")
    n = a.numel()
    total = float(a.sum())
    if n < 2 or total == 0.0:
        return 0.0
    a, _ = torch.sort(a)
    k = torch.arange(1, n + 1, dtype=torch.float64)
    return float(((2 * k - n - 1) * a).sum() / (n * total))


def discrete_entropy(attribution: torch.Tensor, *, bins: int = 100) -> float:
    """Entropy (nats) of the histogram of the map's values in ``bins`` equal bins over
    [min, max].

    Example:
        >>> round(discrete_entropy(torch.tensor([0.0, 1.0]), bins=2), 4) == round(
        ...     math.log(2), 4
        ... )
        True
    """
    if not isinstance(bins, int) or bins < 2:
        raise ValueError(f"discrete_entropy: bins must be an int >= 2, got {bins!r}")
    a = attribution.detach().flatten().to(torch.float64)
    if not torch.isfinite(a).all():
        raise ValueError(
            "discrete_entropy: attribution contains NaN or infinite values"
        )
    low, high = float(a.min()), float(a.max())
    if high == low:
        return 0.0
    counts = torch.histc(a, bins=bins, min=low, max=high)
    p = counts[counts > 0] / a.numel()
    return float(-(p * p.log()).sum())
