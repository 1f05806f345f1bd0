"""Localisation against ground-truth masks: relevance mass and relevance rank accuracy
(Arras et al. 2022).

The pointing game (:func:`~xaisurvey.evaluation.pointing_game`) looks at one pixel;
CLEVR-XAI (Arras, Osman and Samek 2022) scores the whole map:

* **relevance mass accuracy**: the share of the positive relevance that falls inside the
  mask, ``sum_{p in GT} R+_p / sum_p R+_p`` (R+ = max(R, 0)); 0 for a map without
  positive relevance;
* **relevance rank accuracy**: with K the number of mask pixels, the fraction of the K
  highest-relevance pixels that lie inside the mask (ties broken by row-major index).

A uniformly random map scores about |GT| / (H W) on both.
"""

from __future__ import annotations

import torch

__all__ = ["relevance_mass_accuracy", "relevance_rank_accuracy"]


def _pair(
    attribution: torch.Tensor, mask: torch.Tensor, what: str
) -> tuple[torch.Tensor, torch.Tensor]:
    a = attribution.detach()
    if a.dim() == 3:
        a = a.sum(0)
    if a.dim() != 2 or mask.shape != a.shape:
        raise ValueError(
            f"{what}: expected an (H, W) map and mask of the same shape, got "
            f"{tuple(attribution.shape)} and {tuple(mask.shape)}"
        )
    if not torch.isfinite(a).all():
        raise ValueError(f"{what}: the map contains NaN or infinite values")
    m = mask.bool()
    if not m.any():
        raise ValueError(f"{what}: the mask is empty")
    return a.to(torch.float64), m


def relevance_mass_accuracy(attribution: torch.Tensor, mask: torch.Tensor) -> float:
    """Share of the positive relevance inside ``mask``.

    Example:
        >>> m = torch.tensor([[True, False], [False, False]])
        >>> relevance_mass_accuracy(torch.tensor([[3.0, 1.0], [-5.0, 0.0]]), m)
        0.75
    """
    a, m = _pair(attribution, mask, "relevance_mass_accuracy")
    positive = a.clamp(min=0)
    total = float(positive.sum())
    return 0.0 if total == 0 else float(positive[m].sum()) / total


def relevance_rank_accuracy(attribution: torch.Tensor, mask: torch.Tensor) -> float:
    """Fraction of the top-ranked pixels, as many as ``mask`` has pixels, that lie
    inside ``mask``.

    Example:
        >>> m = torch.tensor([[True, True], [False, False]])
        >>> relevance_rank_accuracy(torch.tensor([[3.0, 0.0], [2.0, 1.0]]), m)
        0.5
    """
    a, m = _pair(attribution, mask, "relevance_rank_accuracy")
    k = int(m.sum())
    top = torch.argsort(-a.flatten(), stable=True)[:k]
    return float(m.flatten()[top].sum()) / k
