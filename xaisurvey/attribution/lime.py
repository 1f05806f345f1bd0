"""LIME on superpixels (Ribeiro, Singh and Guestrin, 2016)."""

from __future__ import annotations

import torch
from torch import nn

from ._core import (
    TargetLike,
    as_target,
    check_input,
    check_positive_int,
    warn_zero_maps,
)
from ._perturb import (
    check_fraction,
    check_seed,
    coalition_scores,
    paint,
    prepare_superpixels,
)

__all__ = ["lime", "lime_samples", "lime_kernel", "weighted_ridge"]


def lime_samples(superpixels: int, samples: int, seed: int = 0) -> torch.Tensor:
    """LIME's coalitions for one image, (samples, M) of 0/1 (float32 on the CPU).

    Row 0 keeps every superpixel (the image itself, as the lime package's
    ``data[0, :] = 1``); the other rows switch each superpixel on with probability 1/2,
    independently, drawn from a ``torch.Generator`` seeded with ``seed``.
    """
    generator = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randint(0, 2, (samples, superpixels), generator=generator).float()
    z[0] = 1.0
    return z


def lime_kernel(z: torch.Tensor, width: float = 0.25) -> torch.Tensor:
    """LIME's sample weights: ``exp(-d^2 / (2 width^2))`` with ``d`` the cosine distance
    of each row of ``z`` (S, M) to the all-ones row, ``d = 1 - sqrt(|z| / M)``
    (``d = 1`` for the empty coalition, as scikit-learn's ``cosine_distances``). This is
    the lime package's ``sqrt(exp(-d^2 / width^2))`` and captum's
    ``exp(-d^2 / (2 width^2))``."""
    d = 1.0 - torch.sqrt(z.sum(dim=1) / z.shape[1])
    return torch.exp(-(d**2) / (2 * width**2))


def weighted_ridge(
    z: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``argmin_{b, c} sum_j w_j (y_j - c - z_j . b)^2 + alpha |b|^2`` (the intercept c
    is not penalised), as scikit-learn's ``Ridge(alpha).fit(z, y, sample_weight=w)``; in
    float64.

    Returns ``(coefficients (M,), intercept ())``. With ``alpha = 0`` the minimum-norm
    least squares solution. A constant ``y`` gives zero coefficients.
    """
    z, y, w = z.double(), y.double(), weights.double()
    w = w / w.sum()
    z_mean, y_mean = w @ z, w @ y
    zc, yc = z - z_mean, y - y_mean
    gram = zc.T @ (w[:, None] * zc)
    rhs = zc.T @ (w * yc)
    # sklearn solves with the unnormalised weights; scale alpha to the normalised ones.
    a = alpha / float(weights.double().sum())
    if a > 0:
        coef = torch.linalg.solve(
            gram + a * torch.eye(z.shape[1], dtype=z.dtype, device=z.device), rhs
        )
    else:
        coef = torch.linalg.pinv(gram) @ rhs
    return coef, y_mean - z_mean @ coef


def lime(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    samples: int = 1000,
    segments: str | torch.Tensor = "slic",
    n_segments: int = 50,
    compactness: float = 10.0,
    baseline: str | float | torch.Tensor = "mean",
    kernel_width: float = 0.25,
    alpha: float = 1.0,
    batch_size: int = 64,
    seed: int = 0,
) -> torch.Tensor:
    """LIME: a weighted linear model of the score fitted on random superpixel
    coalitions.

    Paper: M. T. Ribeiro, S. Singh and C. Guestrin, "'Why should I trust you?':
    Explaining the predictions of any classifier", KDD 2016 (section 3; images:
    superpixels as interpretable features, section 3.1).

    Algorithm: the image is cut into M superpixels; ``samples`` coalitions ``z`` in {0,
    1}^M are drawn (:func:`~xaisurvey.attribution.lime.lime_samples`: the first keeps
    everything, the others keep each superpixel with probability 1/2); each is scored as
    the image with the switched-off superpixels set to the baseline; the samples are
    weighted by the proximity kernel ``pi(z) = exp(-d(z, 1)^2 / (2 width^2))`` on the
    cosine distance (:func:`~xaisurvey.attribution.lime.lime_kernel`), and a ridge
    regression ``S(z) ~ c + z . b`` is fitted with these weights
    (:func:`~xaisurvey.attribution.lime.weighted_ridge`). The attribution of a pixel is
    the coefficient ``b_m`` of its superpixel.

    Conventions (the lime package's ``LimeImageExplainer`` defaults, except the
    segmenter): kernel width 0.25, ridge ``alpha = 1`` with an unpenalised intercept,
    the image itself as the first sample, an "off" superpixel replaced by its mean
    colour (``baseline="mean"``, the package's ``hide_color=None``). lime segments with
    quickshift; we use SLIC (Achanta et al. 2012) from scikit-image with ``n_segments``
    and ``compactness``. The lime package keeps at most ``num_features`` superpixels by
    a feature selection first; we fit all of them (its default ``num_features=100000``
    does the same). captum's ``Lime`` defaults differ (a Lasso with ``alpha=0.01`` and
    an exponential kernel of width 1 on the cosine distance of the *images*); given our
    samples, kernel and ridge it gives our numbers (tested).

    Args:
        model, x, target: as in :func:`~xaisurvey.attribution.occlusion`.
        samples: coalitions per image (>= 2), the forward passes per image.
        segments: ``"slic"``, ``"grid"`` (a k x k grid, k = round(sqrt(n_segments))), or
            an integer tensor (H, W) for every image or (N, H, W), e.g. your own
            segmentation.
        n_segments: the target number of superpixels for ``"slic"`` and ``"grid"``.
        compactness: SLIC's colour/space trade-off (higher: squarer superpixels).
        baseline: ``"mean"`` (each superpixel's mean colour), a number, or a tensor
            broadcasting to (N, C, H, W).
        kernel_width: the width of the proximity kernel (> 0).
        alpha: the ridge penalty (>= 0).
        batch_size: perturbed images per forward pass; bounds the extra memory.
        seed: seed of the sampler; every image uses the same seed, so an image's map
            does not depend on the rest of the batch.

    Returns:
        (N, H, W) maps, piecewise constant on the superpixels, on the model's device and
        dtype.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(
        ...     nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        ... )
        >>> lime(
        ...     net,
        ...     torch.rand(2, 3, 16, 16),
        ...     0,
        ...     samples=20,
        ...     segments="grid",
        ...     n_segments=16,
        ... ).shape
        torch.Size([2, 16, 16])
    """
    method = "lime"
    x = check_input(x, model, method=method)
    samples = check_positive_int(samples, "samples", method, minimum=2)
    batch_size = check_positive_int(batch_size, "batch_size", method)
    kernel_width = check_fraction(
        kernel_width, "kernel_width", method, high=float("inf"), open_high=True
    )
    alpha = check_fraction(
        alpha, "alpha", method, high=float("inf"), open_low=False, open_high=True
    )
    seed = check_seed(seed, method)
    target_ = as_target(target, x.shape[0], method=method)
    segs, base, counts = prepare_superpixels(
        x, segments, n_segments, compactness, baseline, method
    )
    coalitions = [lime_samples(m, samples, seed) for m in counts]
    scores = coalition_scores(
        model, x, base, target_, segs, coalitions, batch_size=batch_size, method=method
    )
    coefficients = []
    for z, y in zip(coalitions, scores):
        z = z.to(y.device)
        coefficients.append(
            weighted_ridge(z, y, lime_kernel(z, kernel_width), alpha)[0]
        )
    return warn_zero_maps(
        paint(coefficients, segs, x.dtype),
        method=method,
        why="the target score did not change when superpixels were removed",
    )
