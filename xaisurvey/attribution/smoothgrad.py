"""SmoothGrad (Smilkov, Thorat, Kim, Viégas and Wattenberg, 2017)."""

from __future__ import annotations

import torch
from torch import nn

from ._core import (
    TargetLike,
    as_target,
    check_bool,
    check_input,
    check_positive_int,
    input_gradient,
)
from .normalize import reduce_channels

__all__ = ["smoothgrad"]


def _draw(shape: torch.Size, seed: int, index: int) -> torch.Tensor:
    """The ``index``-th standard normal draw of ``shape`` for ``seed``, in float32 on
    the CPU."""
    generator = torch.Generator(device="cpu").manual_seed(seed * 1_000_003 + index)
    return torch.randn(shape, generator=generator, dtype=torch.float32)


def smoothgrad(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    samples: int = 50,
    noise_level: float = 0.15,
    squared: bool = False,
    absolute: bool = False,
    reduce: str | None = None,
    batch_size: int = 64,
    seed: int = 0,
) -> torch.Tensor:
    """SmoothGrad: the gradient averaged over noisy copies of the image.

    Paper: D. Smilkov et al., "SmoothGrad: removing noise by adding noise" (2017).

    Formula: ``M(x) = 1/n sum_{i=1..n} d S_c(x + e_i) / d x`` with ``e_i ~
    N(0, sigma^2)`` and ``sigma = noise_level * (max(x) - min(x))`` per image (the paper
    recommends 10-20 % noise and n around 50). ``squared=True`` averages squared
    gradients (the paper's SmoothGrad-Squared variant, as captum's ``smoothgrad_sq``).

    Args:
        model, x, target: as in :func:`~xaisurvey.attribution.saliency`; a callable
            target is applied to the outputs of the noisy copies (in chunks of
            ``batch_size`` rows), so it must score each row on its own, e.g.
            ``lambda out: out[:, 0]``.
        samples: number of noisy copies n per image (>= 1).
        noise_level: sigma as a fraction of each image's value range (>= 0).
        squared: average squared gradients instead of gradients.
        absolute: take ``|.|`` of the average (for display; the paper averages signed
            gradients).
        reduce: ``None`` keeps the channels; otherwise a ``reduce_channels`` name,
            giving (N, H, W).
        batch_size: noisy images per forward pass. It bounds the extra memory: only one
            batch of noisy copies and its gradients exist at a time, and the per-image
            sums are accumulated as they come. The result does not depend on it: copy i
            of every image uses the same standard normal draw (scaled by the image's
            sigma), whatever the batch size, the batch's other images or the dtype.
        seed: seed of the noise generator; the same seed gives the same map.

    Returns:
        (N, C, H, W), or (N, H, W) with ``reduce``; on the model's device and dtype.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 2, 3),
        ...     torch.nn.AdaptiveAvgPool2d(1),
        ...     torch.nn.Flatten(),
        ... )
        >>> smoothgrad(net, torch.rand(2, 3, 8, 8), target=0, samples=4).shape
        torch.Size([2, 3, 8, 8])
    """
    x = check_input(x, model, method="smoothgrad")
    check_bool(squared, "squared", "smoothgrad")
    check_bool(absolute, "absolute", "smoothgrad")
    samples = check_positive_int(samples, "samples", "smoothgrad")
    batch_size = check_positive_int(batch_size, "batch_size", "smoothgrad")
    seed = check_positive_int(seed, "seed", "smoothgrad", minimum=0)
    if (
        not isinstance(noise_level, (int, float))
        or isinstance(noise_level, bool)
        or not noise_level >= 0
        or noise_level == float("inf")
    ):
        raise ValueError(
            f"smoothgrad: noise_level must be a finite number >= 0, got {noise_level!r}"
        )
    n = x.shape[0]
    # image-major, sample fastest
    target_ = as_target(target, n, method="smoothgrad").repeat(samples)
    span = x.reshape(n, -1).amax(dim=1) - x.reshape(n, -1).amin(dim=1)
    sigma = noise_level * span
    total = torch.zeros_like(x)
    for start in range(0, n * samples, batch_size):
        stop = min(start + batch_size, n * samples)
        rows = torch.arange(start, stop) // samples  # the image of each noisy copy
        # Copy s of every image uses the same draw e_s (float32, from its own seeded
        # generator), scaled by that image's sigma: an image's map does not depend on
        # the rest of the batch, on the batch size or on the dtype.
        noise = torch.stack(
            [_draw(x.shape[1:], seed, copy % samples) for copy in range(start, stop)]
        ).to(x)
        noisy = x[rows] + sigma[rows].view(-1, 1, 1, 1) * noise.to(x.device)
        grad = input_gradient(
            model, noisy, target_.rows(start, stop), method="smoothgrad"
        )
        total.index_add_(0, rows.to(x.device), grad * grad if squared else grad)
        del noise, noisy, grad
    result = total / samples
    if absolute:
        result = result.abs()
    return result if reduce is None else reduce_channels(result, reduce)
