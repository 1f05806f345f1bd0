"""Expected gradients (Erion, Janizek, Sturmfels, Lundberg and Lee, 2021)."""

from __future__ import annotations

import torch
from torch import nn

from ._core import TargetLike, as_target, check_input, check_positive_int
from .integrated_gradients import completeness_gap, path_integral
from .normalize import reduce_channels

__all__ = ["expected_gradients"]


def expected_gradients(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    baselines: torch.Tensor | None = None,
    samples: int = 50,
    internal_batch_size: int = 64,
    seed: int = 0,
    return_gap: bool = False,
    reduce: str | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Expected gradients: Integrated Gradients averaged over baselines drawn from a
    set.

    Paper: G. Erion, J. D. Janizek, P. Sturmfels, S. M. Lundberg and S.-I. Lee,
    "Improving performance of deep learning models with axiomatic attribution priors and
    expected gradients" (Nature Machine Intelligence 3, 2021).

    Formula: ``EG_i(x) = E_{x' ~ D, a ~ U(0, 1)} [(x_i - x'_i) dF(x' + a (x - x')) /
    dx_i]``, estimated with ``samples`` draws ``(x'_k, a_k)``: ``x'_k`` uniformly from
    ``baselines`` (with replacement), ``a_k`` uniform in [0, 1). It is Integrated
    Gradients averaged over the baseline distribution D, with the path integral and the
    expectation estimated by the same Monte Carlo samples. Completeness holds in
    expectation: ``E[sum_i EG_i] = F(x) - E_D[F(x')]``; ``return_gap=True`` returns
    ``sum_i EG_i - (F(x) - mean_D F(x'))`` over the set.

    Conventions: the draws come from a generator seeded with ``seed`` and are the same
    for every image of the batch (an image's result does not depend on the others). The
    paper draws the references from the training data; without ``baselines`` a set of
    ``samples`` uniform-noise images (seeded) is used, which is a different modelling
    choice (pass real images).

    Args:
        model: any ``nn.Module``; run in eval mode and left unchanged.
        x: float images (N, C, H, W).
        target: class index, one per image, or a callable ``output -> (N,)`` scores.
        baselines: the reference set, (M, C, H, W) with x's image shape; ``None``:
            uniform noise.
        samples: number of draws per image (>= 1): the number of forward-and-backward
            passes of the batch.
        internal_batch_size: interpolated images per forward and backward pass
            (bounds memory).
        seed: seed of the draws (and of the default noise set).
        return_gap: also return the completeness gap per image, (N,).
        reduce: ``None`` keeps (N, C, H, W); a ``reduce_channels`` name gives (N, H, W).

    Returns:
        Attributions (N, C, H, W) (or (N, H, W)); with ``return_gap`` a tuple
        ``(attributions, gap)``.

    Raises:
        ValueError: a bad option (one line naming it).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
        >>> refs = torch.rand(5, 3, 2, 2)
        >>> expected_gradients(
        ...     net, torch.rand(2, 3, 2, 2), 0, baselines=refs, samples=8
        ... ).shape
        torch.Size([2, 3, 2, 2])
    """
    method = "expected_gradients"
    x = check_input(x, model, method=method)
    samples = check_positive_int(samples, "samples", method)
    internal_batch_size = check_positive_int(
        internal_batch_size, "internal_batch_size", method
    )
    if not isinstance(return_gap, bool):
        raise ValueError(
            f"{method}: return_gap must be True or False, got {return_gap!r}"
        )
    target_ = as_target(target, x.shape[0], method=method)
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    if baselines is None:
        refs = torch.rand(
            (samples,) + tuple(x.shape[1:]), generator=generator, dtype=torch.float64
        )
        refs = refs.to(device=x.device, dtype=x.dtype)
    else:
        if (
            not isinstance(baselines, torch.Tensor)
            or baselines.dim() != 4
            or tuple(baselines.shape[1:]) != tuple(x.shape[1:])
            or baselines.shape[0] == 0
        ):
            shape = (
                tuple(baselines.shape)
                if isinstance(baselines, torch.Tensor)
                else type(baselines).__name__
            )
            raise ValueError(
                f"{method}: baselines must be a tensor (M, C, H, W) with M >= 1 and (C,"
                f" H, W) = {tuple(x.shape[1:])}, got {shape}"
            )
        if not bool(torch.isfinite(baselines).all()):
            raise ValueError(f"{method}: baselines contain NaN or infinite values")
        refs = baselines.detach().to(device=x.device, dtype=x.dtype)
    index = torch.randint(0, refs.shape[0], (samples,), generator=generator)
    alphas = torch.rand(samples, generator=generator, dtype=torch.float64).to(
        device=x.device, dtype=x.dtype
    )
    weights = torch.full((samples,), 1.0 / samples, dtype=x.dtype, device=x.device)
    attributions = path_integral(
        model,
        x,
        target_,
        refs[index.to(refs.device)],
        alphas,
        weights,
        per_point=True,
        internal_batch_size=internal_batch_size,
        method=method,
    )
    result = attributions if reduce is None else reduce_channels(attributions, reduce)
    if not return_gap:
        return result
    n = x.shape[0]
    # F(x) - mean over the set of F(x'): the set's mean score, the same for every image.
    gaps = torch.stack(
        [
            completeness_gap(
                model,
                x,
                target_,
                attributions,
                refs[m].expand_as(x),
                batch_size=internal_batch_size,
                method=method,
            )
            for m in range(refs.shape[0])
        ]
    )
    return result, gaps.mean(dim=0).reshape(n)
