"""The pointing game (Zhang et al., 2016): does the map's maximum fall on the object?

For each image, take the location of the attribution map's maximum; it is a *hit* when
it lies inside the ground-truth mask (or within ``tolerance`` pixels of it, Zhang et al.
use 15 px at 224 x 224), a *miss* otherwise. The score is hits / (hits + misses).

Conventions, chosen so that a lazy map can never score:

* an **empty mask** has no object to point at: the image is *excluded* (``None``), never
  a hit;
* **ties**: when several pixels share the maximum, it is a hit only if *all* of them are
  hits;
* a **flat map** (all pixels equal, e.g. all zeros) points nowhere: always a miss.

Maps and masks may live on any device (they need not share one): they are compared on
the CPU, the distances in float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

__all__ = ["PointingResult", "pointing_hit", "pointing_game"]


@dataclass(frozen=True)
class PointingResult:
    """Outcome of the pointing game over a set of images.

    Attributes:
        hits: per image, ``True`` (hit), ``False`` (miss) or ``None`` (excluded: empty
            mask).
        accuracy: hits / (hits + misses), over the images not excluded.
        n_scored: number of images scored (not excluded).
        n_excluded: number of images excluded because their mask is empty.
    """

    hits: tuple[bool | None, ...]
    accuracy: float
    n_scored: int
    n_excluded: int


def pointing_hit(
    attribution: torch.Tensor, mask: torch.Tensor, *, tolerance: float = 0.0
) -> bool | None:
    """One round of the pointing game.

    Args:
        attribution: (H, W) map (or (C, H, W), channels summed).
        mask: (H, W) boolean (or 0/1) ground-truth mask of the object.
        tolerance: a maximum within this Euclidean distance (pixels) of the mask counts
            as a hit.

    Returns:
        ``True`` / ``False``, or ``None`` when the mask is empty (the image is
        excluded).

    Example:
        >>> m = torch.zeros(3, 3, dtype=torch.bool); m[0, 0] = True
        >>> a = torch.zeros(3, 3); a[0, 1] = 1.0
        >>> (
        ...     pointing_hit(a, m),
        ...     pointing_hit(a, m, tolerance=1),
        ...     pointing_hit(a, torch.zeros_like(m)),
        ... )
        (False, True, None)
    """
    if not isinstance(attribution, torch.Tensor) or not isinstance(mask, torch.Tensor):
        raise TypeError("pointing_hit: attribution and mask must be torch tensors")
    a = attribution.detach().cpu()
    if a.dim() == 3:
        a = a.sum(0)
    if a.dim() != 2:
        raise ValueError(
            "pointing_hit: attribution must be (H, W) or (C, H, W), got "
            f"{tuple(attribution.shape)}"
        )
    if mask.shape != a.shape:
        raise ValueError(
            f"pointing_hit: mask shape {tuple(mask.shape)} differs from the map's "
            f"{tuple(a.shape)}"
        )
    if not torch.isfinite(a).all():
        raise ValueError(
            "pointing_hit: the attribution map contains NaN or infinite values"
        )
    if tolerance < 0:
        raise ValueError(f"pointing_hit: tolerance must be >= 0, got {tolerance}")
    m = mask.detach().cpu().bool()
    if not m.any():
        return None
    if a.max() == a.min():
        return False
    peaks = (a == a.max()).nonzero().to(torch.float64)
    inside = m.nonzero().to(torch.float64)
    # Distance of every peak to its nearest mask pixel; 0 for peaks on the mask.
    nearest = torch.cdist(peaks, inside).min(dim=1).values
    return bool((nearest <= tolerance).all())


def pointing_game(
    attributions: Sequence[torch.Tensor] | torch.Tensor,
    masks: Sequence[torch.Tensor] | torch.Tensor,
    *,
    tolerance: float = 0.0,
) -> PointingResult:
    """Pointing game accuracy over images; empty masks are excluded and counted
    separately.

    Args:
        attributions: N maps of shape (H, W) (a list, or a tensor (N, H, W) /
            (N, C, H, W)).
        masks: N masks of shape (H, W).
        tolerance: see :func:`pointing_hit`.

    Raises:
        ValueError: when the counts differ, or when every mask is empty
            (nothing to score).

    Example:
        >>> masks = torch.zeros(2, 2, 2, dtype=torch.bool); masks[0, 0, 0] = True
        >>> maps = torch.zeros(2, 2, 2); maps[0, 0, 0] = 1.0; maps[1, 1, 1] = 1.0
        >>> r = pointing_game(maps, masks)
        >>> r.hits, r.accuracy, r.n_excluded
        ((True, None), 1.0, 1)
    """
    if len(attributions) != len(masks):
        raise ValueError(
            f"pointing_game: {len(attributions)} maps but {len(masks)} masks"
        )
    hits = tuple(
        pointing_hit(a, m, tolerance=tolerance) for a, m in zip(attributions, masks)
    )
    scored = [h for h in hits if h is not None]
    if not scored:
        raise ValueError(
            "pointing_game: every mask is empty, there is nothing to point at"
        )
    return PointingResult(
        hits=hits,
        accuracy=sum(scored) / len(scored),
        n_scored=len(scored),
        n_excluded=len(hits) - len(scored),
    )
