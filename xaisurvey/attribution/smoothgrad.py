"""SmoothGrad (Smilkov, Thorat, Kim, Viégas and Wattenberg, 2017)."""
from __future__ import annotations

import torch
from torch import nn

from ._core import TargetLike, as_target, check_input
from .normalize import reduce_channels
from .saliency import _input_gradients

__all__ = ["smoothgrad"]


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

    Formula: ``M(x) = 1/n sum_{i=1..n} d S_c(x + e_i) / d x`` with ``e_i ~ N(0, sigma^2)`` and
    ``sigma = noise_level * (max(x) - min(x))`` per image (the paper recommends 10-20 % noise and
    n around 50). ``squared=True`` averages squared gradients (the paper's SmoothGrad-Squared
    variant, as captum's ``smoothgrad_sq``).

    Args:
        model, x, target: as in :func:`~xaisurvey.attribution.saliency`; a callable
            target is applied to the outputs of the noisy copies (in chunks of ``batch_size``
            rows), so it must score each row on its own, e.g. ``lambda out: out[:, 0]``.
        samples: number of noisy copies n per image (>= 1).
        noise_level: sigma as a fraction of each image's value range (>= 0).
        squared: average squared gradients instead of gradients.
        absolute: take ``|.|`` of the average (for display; the paper averages signed gradients).
        reduce: ``None`` keeps the channels; otherwise a ``reduce_channels`` name, giving (N, H, W).
        batch_size: noisy images per forward pass (memory versus speed; the result does not
            depend on it).
        seed: seed of the noise generator; the same seed gives the same map.

    Returns:
        (N, C, H, W), or (N, H, W) with ``reduce``; on the model's device and dtype.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        >>> smoothgrad(net, torch.rand(2, 3, 8, 8), target=0, samples=4).shape
        torch.Size([2, 3, 8, 8])
    """
    x = check_input(x, model, method="smoothgrad")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise ValueError(f"smoothgrad: samples must be a positive int, got {samples!r}")
    if not noise_level >= 0:
        raise ValueError(f"smoothgrad: noise_level must be >= 0, got {noise_level!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"smoothgrad: batch_size must be a positive int, got {batch_size!r}")
    n = x.shape[0]
    target_ = as_target(target, n, method="smoothgrad")  # validate the count before any work
    # Repeat the targets alongside the images: image-major order, sample index fastest.
    if target_.indices is not None:
        per_copy: object = target_.indices.repeat_interleave(samples)
    else:
        per_copy = target_.score_fn
    span = (x.reshape(n, -1).amax(dim=1) - x.reshape(n, -1).amin(dim=1)).view(n, 1, 1, 1, 1)
    sigma = noise_level * span
    generator = torch.Generator(device="cpu").manual_seed(seed)
    noise = torch.randn((n, samples) + tuple(x.shape[1:]), generator=generator, dtype=x.dtype).to(x.device)
    noisy = (x.unsqueeze(1) + sigma * noise).reshape((n * samples,) + tuple(x.shape[1:]))
    total = torch.zeros_like(noisy)
    for start in range(0, noisy.shape[0], batch_size):
        stop = min(start + batch_size, noisy.shape[0])
        chunk_target = per_copy[start:stop] if isinstance(per_copy, torch.Tensor) else per_copy
        grad = _input_gradients(model, noisy[start:stop], chunk_target, method="smoothgrad")
        total[start:stop] = grad * grad if squared else grad
    result = total.reshape((n, samples) + tuple(x.shape[1:])).mean(dim=1)
    if absolute:
        result = result.abs()
    return result if reduce is None else reduce_channels(result, reduce)
