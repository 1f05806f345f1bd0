"""Deletion and insertion curves (Petsiuk et al., 2018): does removing the top pixels
hurt the score?

An attribution map ranks the pixels. *Deletion* replaces the pixels of the image with a
substrate, most important first, and records the model's score after each step: a
faithful map makes the score fall fast (small area under the curve). *Insertion* starts
from the substrate and puts the image's pixels back, most important first: a faithful
map makes the score rise fast (large area).

Conventions (the same for every method compared):

* **score**: the softmax probability of the target class (``score="probability"``), or
  its raw logit (``score="logit"``);
* **substrate**: what a removed pixel becomes: ``"zeros"`` (black), ``"mean"`` (the
  image's per-channel mean) or ``"blur"`` (a Gaussian blur of the image, sigma 5 px as
  in RISE), or a tensor of the image's shape;
* **steps**: ``steps + 1`` points, at pixel fractions 0, 1/steps, ..., 1; at step i the
  first ``round(i * H * W / steps)`` pixels of the ordering are changed (all channels of
  a pixel together);
* **ordering**: pixels sorted by attribution, highest first; ties broken by pixel index
  in row-major order (earlier first), so the curve is deterministic;
* **area**: the trapezoid rule over the pixel fraction in [0, 1].

Devices and dtypes: the image is moved to the model's device and dtype (as the
attribution methods move their input); the substrate, the blur kernel and the masks are
made on that device in that dtype, so the curves run on a GPU (or MPS, which has no
float64) without a copy to the CPU. The returned curve (a summary of ``steps + 1``
numbers) is a CPU float64 tensor. The model runs under
:func:`~xaisurvey.guard.model_guard`: eval mode inside the call, and every module's
training flag, ``requires_grad`` and buffer exactly as before afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..attribution._core import check_positive_int
from ..guard import model_guard

__all__ = [
    "Curve",
    "pixel_order",
    "make_substrate",
    "deletion_curve",
    "insertion_curve",
    "area_under_curve",
    "random_attribution",
    "centre_attribution",
    "step_counts",
    "pixel_ranks",
    "blend_ranked",
]

Substrate = Literal["zeros", "mean", "blur"] | torch.Tensor


@dataclass(frozen=True)
class Curve:
    """A deletion or insertion curve: ``scores[i]`` after changing ``fractions[i]`` of
    the pixels."""

    fractions: torch.Tensor
    scores: torch.Tensor

    @property
    def area(self) -> float:
        """Area under the curve (trapezoid rule over the fraction in [0, 1])."""
        return area_under_curve(self.fractions, self.scores)


def area_under_curve(fractions: torch.Tensor, scores: torch.Tensor) -> float:
    """Trapezoid-rule area under ``scores`` as a function of ``fractions``.

    Example:
        >>> area_under_curve(
        ...     torch.tensor([0.0, 0.5, 1.0]), torch.tensor([1.0, 1.0, 0.0])
        ... )
        0.75
    """
    if not isinstance(fractions, torch.Tensor) or not isinstance(scores, torch.Tensor):
        raise TypeError("area_under_curve: fractions and scores must be torch tensors")
    if fractions.dim() != 1 or fractions.shape != scores.shape:
        raise ValueError(
            "area_under_curve: fractions and scores must be 1-D of the same length, "
            "got shapes "
            f"{tuple(fractions.shape)} and {tuple(scores.shape)}"
        )
    return float(torch.trapezoid(scores.to(torch.float64), fractions.to(torch.float64)))


def pixel_order(attribution: torch.Tensor) -> torch.Tensor:
    """Indices of the H*W pixels, highest attribution first, ties by row-major index.

    Args:
        attribution: (H, W) map, or (1, H, W) / (C, H, W), in which case channels are
            summed.

    Example:
        >>> pixel_order(torch.tensor([[0.0, 2.0], [2.0, 1.0]])).tolist()
        [1, 2, 3, 0]
    """
    a = _as_2d(attribution, "pixel_order").flatten()
    # A stable sort of the negated values keeps equal pixels in index order; the sort
    # runs on the map's device in its own dtype (a float32 map needs no float64 copy:
    # the order is the same).
    a = a if a.is_floating_point() else a.long()
    return torch.argsort(-a, stable=True)


def step_counts(n_pixels: int, steps: int) -> list[int]:
    """Pixels changed at each of the ``steps + 1`` points of a curve (0 first, all
    last)."""
    return [round(i * n_pixels / steps) for i in range(steps + 1)]


def pixel_ranks(attribution: torch.Tensor) -> torch.Tensor:
    """``rank[p]``: the position of pixel p in :func:`pixel_order`
    (0: changed first)."""
    order = pixel_order(attribution)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=order.device)
    return rank


def blend_ranked(
    start: torch.Tensor, finish: torch.Tensor, rank: torch.Tensor, counts: list[int]
) -> torch.Tensor:
    """The images of a curve, (len(counts), C, H, W): ``start`` with its first
    ``count`` pixels (by ``rank``, from :func:`pixel_ranks`) taken from ``finish``,
    all channels."""
    c, h, w = start.shape
    chunk = torch.tensor(counts, device=start.device)
    changed = (rank[None, :] < chunk[:, None]).view(-1, 1, h, w).to(start.dtype)
    return start[None] * (1 - changed) + finish[None] * changed


def _as_2d(attribution: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(attribution, torch.Tensor):
        raise TypeError(
            f"{what}: attribution must be a torch tensor, got "
            f"{type(attribution).__name__}"
        )
    a = attribution.detach()
    if a.dim() == 3:
        a = a.sum(0)
    if a.dim() != 2:
        raise ValueError(
            f"{what}: attribution must have shape (H, W) or (C, H, W), got "
            f"{tuple(attribution.shape)}"
        )
    if not torch.isfinite(a).all():
        raise ValueError(f"{what}: attribution contains NaN or infinite values")
    return a


def _check_image(image: torch.Tensor) -> torch.Tensor:
    if not isinstance(image, torch.Tensor) or not image.is_floating_point():
        raise TypeError(
            "the image must be a float tensor (C, H, W), got "
            f"{getattr(image, 'dtype', type(image).__name__)}"
        )
    if image.dim() != 3:
        raise ValueError(
            f"the image must have shape (C, H, W), got {tuple(image.shape)}; pass one "
            "image, not a batch"
        )
    return image.detach()


def _on_model(model: nn.Module, image: torch.Tensor, what: str) -> torch.Tensor:
    """The image on the model's device and in its dtype (unchanged for a model without
    tensors)."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"{what}: model must be a torch.nn.Module, got {type(model).__name__}"
        )
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point():
            return image.to(device=tensor.device, dtype=tensor.dtype)
    return image


def _gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = int(3 * sigma)
    coords = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = image.shape[0]
    padded = F.pad(image[None], (radius, radius, radius, radius), mode="replicate")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)[0]


def make_substrate(
    image: torch.Tensor, substrate: Substrate = "blur", *, sigma: float = 5.0
) -> torch.Tensor:
    """The image that removed pixels are replaced by (see the module's conventions).

    Example:
        >>> make_substrate(torch.ones(3, 4, 4), "mean").unique().tolist()
        [1.0]
    """
    if isinstance(substrate, torch.Tensor):
        if substrate.shape != image.shape:
            raise ValueError(
                f"substrate tensor has shape {tuple(substrate.shape)}, the image "
                f"{tuple(image.shape)}"
            )
        return substrate.detach().to(device=image.device, dtype=image.dtype)
    if substrate == "zeros":
        return torch.zeros_like(image)
    if substrate == "mean":
        return image.mean(dim=(1, 2), keepdim=True).expand_as(image).clone()
    if substrate == "blur":
        return _gaussian_blur(image, sigma)
    raise ValueError(
        f"unknown substrate {substrate!r}; use 'zeros', 'mean', 'blur' or a tensor"
    )


def _curve(
    model: nn.Module,
    start: torch.Tensor,
    finish: torch.Tensor,
    target: int,
    attribution: torch.Tensor,
    steps: int,
    score: str,
    batch_size: int,
    what: str,
) -> Curve:
    if start.dim() != 3:
        raise ValueError(
            f"the image must have shape (C, H, W), got {tuple(start.shape)}"
        )
    c, h, w = start.shape
    a = _as_2d(attribution, what)
    if a.shape != (h, w):
        raise ValueError(
            f"attribution has shape {tuple(a.shape)} but the image is {h} x {w}"
        )
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"{what}: steps must be a positive int, got {steps!r}")
    batch_size = check_positive_int(batch_size, "batch_size", what)
    if isinstance(target, bool) or not isinstance(target, int):
        raise TypeError(f"{what}: target must be an int class index, got {target!r}")
    if score not in ("probability", "logit"):
        raise ValueError(
            f"{what}: score must be 'probability' or 'logit', got {score!r}"
        )
    n_pixels = h * w
    counts = step_counts(n_pixels, steps)
    rank_of = pixel_ranks(a.to(start.device))
    scores: list[torch.Tensor] = []
    with model_guard(model, needs_grad=False, method=what), torch.no_grad():
        for first in range(0, len(counts), batch_size):
            chunk = counts[first : first + batch_size]
            batch = blend_ranked(start, finish, rank_of, chunk)
            out = model(batch)
            classes = (
                out.shape[1] if isinstance(out, torch.Tensor) and out.dim() == 2 else 0
            )
            if not 0 <= target < classes:
                shape = (
                    tuple(out.shape)
                    if isinstance(out, torch.Tensor)
                    else type(out).__name__
                )
                raise ValueError(
                    f"{what}: target {target} is not a class of the model's output of "
                    f"shape {shape}"
                )
            values = out.softmax(dim=1) if score == "probability" else out
            scores.append(values[:, target].detach().cpu().to(torch.float64))
    fractions = torch.tensor(counts, dtype=torch.float64) / n_pixels
    return Curve(fractions=fractions, scores=torch.cat(scores))


def deletion_curve(
    model: nn.Module,
    image: torch.Tensor,
    target: int,
    attribution: torch.Tensor,
    *,
    substrate: Substrate = "blur",
    steps: int = 50,
    score: Literal["probability", "logit"] = "probability",
    batch_size: int = 64,
) -> Curve:
    """Deletion curve: the score as the most important pixels are replaced by the
    substrate.

    Args:
        model: a classifier returning (N, classes) logits; left in the training mode it
            had.
        image: (C, H, W) input in the model's input range.
        target: the class whose score is followed.
        attribution: (H, W) map (or (C, H, W), channels summed) ranking the pixels.
        substrate: what removed pixels become (``"zeros"``, ``"mean"``, ``"blur"`` or a
            tensor).
        steps: number of steps; the curve has ``steps + 1`` points.
        score: ``"probability"`` (softmax of the target class) or ``"logit"``.
        batch_size: perturbed images per forward pass.

    Returns:
        a :class:`Curve`; ``curve.area`` is the deletion AUC (lower is better).

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> curve = deletion_curve(
        ...     model, torch.rand(1, 2, 2), 0, torch.rand(2, 2), steps=4
        ... )
        >>> curve.fractions.tolist()
        [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    image = _on_model(model, _check_image(image), "deletion_curve")
    base = make_substrate(image, substrate)
    return _curve(
        model,
        image,
        base,
        target,
        attribution,
        steps,
        score,
        batch_size,
        "deletion_curve",
    )


def insertion_curve(
    model: nn.Module,
    image: torch.Tensor,
    target: int,
    attribution: torch.Tensor,
    *,
    substrate: Substrate = "blur",
    steps: int = 50,
    score: Literal["probability", "logit"] = "probability",
    batch_size: int = 64,
) -> Curve:
    """Insertion curve: the score as the most important pixels are put back onto the
    substrate.

    Same arguments as :func:`deletion_curve`; ``curve.area`` is the insertion AUC
    (higher is better).

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> curve = insertion_curve(
        ...     model, torch.rand(1, 2, 2), 1, torch.rand(2, 2), steps=2
        ... )
        >>> len(curve.scores)
        3
    """
    image = _on_model(model, _check_image(image), "insertion_curve")
    base = make_substrate(image, substrate)
    return _curve(
        model,
        base,
        image,
        target,
        attribution,
        steps,
        score,
        batch_size,
        "insertion_curve",
    )


def _check_size(height: object, width: object, what: str) -> None:
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{what}: {name} must be a positive int, got {value!r}")


def random_attribution(
    height: int,
    width: int,
    *,
    seed: int = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """A baseline map: independent uniform noise (a random pixel ordering), seeded.

    The noise is drawn on the CPU (so the same seed gives the same map on every device)
    and returned on ``device`` (default: the CPU) in ``dtype``.

    Example:
        >>> random_attribution(2, 3, seed=1).shape
        torch.Size([2, 3])
    """
    _check_size(height, width, "random_attribution")
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(height, width, generator=generator, dtype=torch.float32)
    return noise.to(device=device, dtype=dtype)


def centre_attribution(
    height: int,
    width: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """A baseline map: minus the distance to the image centre (photographers centre the
    object).

    Made on ``device`` (default: the CPU) in ``dtype``.

    Example:
        >>> # the centre pixel comes first
        >>> int(pixel_order(centre_attribution(3, 3))[0])
        4
    """
    ys = torch.arange(height, dtype=dtype, device=device) - (height - 1) / 2
    xs = torch.arange(width, dtype=dtype, device=device) - (width - 1) / 2
    return -torch.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
