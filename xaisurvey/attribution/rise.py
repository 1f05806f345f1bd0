"""RISE: randomized input sampling for explanation (Petsiuk, Das and Saenko, 2018)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._core import (
    TargetLike,
    as_target,
    check_input,
    check_positive_int,
    warn_zero_maps,
)
from ._perturb import check_baseline, check_fraction, check_seed, masked_scores

__all__ = ["rise", "rise_masks"]


class _MaskSource:
    """The N masks of one call, drawn once (grid cells and shifts) and rendered on
    demand."""

    def __init__(
        self,
        samples: int,
        grid: int,
        probability: float,
        size: tuple[int, int],
        seed: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        h, w = size
        self.cell = (math.ceil(h / grid), math.ceil(w / grid))
        self.up = ((grid + 1) * self.cell[0], (grid + 1) * self.cell[1])
        self.size = size
        self.grids = (
            torch.rand((samples, 1, grid, grid), generator=generator) < probability
        ).to(dtype)
        self.shift_y = torch.randint(0, self.cell[0], (samples,), generator=generator)
        self.shift_x = torch.randint(0, self.cell[1], (samples,), generator=generator)
        self.grids = self.grids.to(device)

    def render(self, index: torch.Tensor) -> torch.Tensor:
        """Masks ``index`` (B,), shape (B, 1, H, W) in [0, 1]."""
        index = index.cpu()
        up = F.interpolate(
            self.grids[index.to(self.grids.device)],
            size=self.up,
            mode="bilinear",
            align_corners=False,
        )
        h, w = self.size
        dy, dx = self.shift_y[index], self.shift_x[index]
        if bool((dy == dy[0]).all()) and bool((dx == dx[0]).all()):
            return up[:, :, int(dy[0]) : int(dy[0]) + h, int(dx[0]) : int(dx[0]) + w]
        rows = (dy[:, None] + torch.arange(h)[None, :]).to(up.device)  # (B, H)
        cols = (dx[:, None] + torch.arange(w)[None, :]).to(up.device)  # (B, W)
        b = torch.arange(len(index), device=up.device)[:, None, None]
        return up[b, 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


def _check(
    samples: object, grid: object, probability: object, seed: object, method: str
) -> tuple[int, int, float, int]:
    return (
        check_positive_int(samples, "samples", method),
        check_positive_int(grid, "grid", method),
        check_fraction(probability, "probability", method),
        check_seed(seed, method),
    )


def rise_masks(
    samples: int,
    size: tuple[int, int],
    *,
    grid: int = 7,
    probability: float = 0.5,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The ``samples`` RISE masks :func:`rise` uses with the same options,
    (samples, H, W).

    For inspection and tests; :func:`rise` renders them chunk by chunk instead of
    holding them.
    """
    samples, grid, probability, seed = _check(
        samples, grid, probability, seed, "rise_masks"
    )
    source = _MaskSource(
        samples, grid, probability, tuple(size), seed, dtype, torch.device(device)
    )
    return source.render(torch.arange(samples))[:, 0]


def rise(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    samples: int = 4000,
    grid: int = 7,
    probability: float = 0.5,
    baseline: float | torch.Tensor = 0.0,
    batch_size: int = 64,
    seed: int = 0,
) -> torch.Tensor:
    """RISE: the score-weighted average of random masks.

    Paper: V. Petsiuk, A. Das and K. Saenko, "RISE: Randomized input sampling for
    explanation of black-box models", BMVC 2018.

    Masks (the paper's section 3.2): ``samples`` binary grids of ``grid x grid`` cells,
    each cell 1 with probability ``p``; each grid is upsampled bilinearly to
    ``(grid + 1) * cell`` pixels with ``cell = ceil(H / grid)`` (and likewise for W) and
    cropped to H x W at a random shift in ``[0, cell)`` on each axis, giving smooth
    masks ``M_i`` in [0, 1]. The masked image is ``b + M_i * (x - b)`` (the paper's
    ``x * M_i``: baseline 0).

    Formula: ``S(p) = 1 / (N * p) * sum_i S_c(b + M_i * (x - b)) *
    M_i(p)``, the Monte Carlo estimate of ``E[S_c(x * M) | M(p) = 1]`` (the paper's
    equation 6).

    Conventions: bilinear upsampling is ``F.interpolate(mode="bilinear",
    align_corners=False)`` (pixel centres, edge values repeated); the paper's code uses
    scikit-image's ``resize(order=1, mode="reflect")``, which differs only in the
    outermost half cell of the upsampled grid, i.e. inside the cropped-away margin for
    most shifts. The same masks are used for every image of the batch (a fixed ``seed``
    gives the same masks whatever N and ``batch_size``).

    Args:
        model, x, target: as in :func:`~xaisurvey.attribution.occlusion`.
        samples: number of masks N (the paper uses 4000 for ResNet-50, 8000 for VGG16).
        grid: cells per side s of the low-resolution grid (the paper: 7).
        probability: probability p that a cell is kept (the paper: 0.5).
        baseline: what a masked pixel becomes (0, black, in the paper), a number or a
            tensor broadcasting to (N, C, H, W).
        batch_size: masked copies per forward pass; it bounds the extra memory (the
            masks of one chunk are rendered when needed, never all N).
        seed: seed of the ``torch.Generator`` that draws the grids and shifts.

    Returns:
        The maps, (N, H, W), on the model's device and dtype; they cost ``samples``
        forward passes per image.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(
        ...     nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        ... )
        >>> rise(net, torch.rand(2, 3, 16, 16), target=0, samples=8, grid=4).shape
        torch.Size([2, 16, 16])
    """
    method = "rise"
    x = check_input(x, model, method=method)
    samples, grid, probability, seed = _check(samples, grid, probability, seed, method)
    batch_size = check_positive_int(batch_size, "batch_size", method)
    n, _, h, w = x.shape
    if grid > min(h, w):
        raise ValueError(
            f"{method}: grid must be at most the image's smaller side {min(h, w)}, got"
            f" {grid}"
        )
    base = check_baseline(baseline, x, method)
    target_ = as_target(target, n, method=method)
    source = _MaskSource(samples, grid, probability, (h, w), seed, x.dtype, x.device)
    total = torch.zeros((n, h * w), dtype=x.dtype, device=x.device)

    def accumulate(
        images: torch.Tensor,
        _copies: torch.Tensor,
        masks: torch.Tensor,
        scores: torch.Tensor,
    ) -> None:
        total.index_add_(0, images, scores[:, None] * masks.reshape(len(images), -1))

    masked_scores(
        model,
        x,
        base,
        target_,
        samples,
        lambda _images, copies: source.render(copies),
        batch_size=batch_size,
        method=method,
        on_chunk=accumulate,
    )
    return warn_zero_maps(
        (total / (samples * probability)).view(n, h, w),
        method=method,
        why="the target score was zero under every mask",
    )
