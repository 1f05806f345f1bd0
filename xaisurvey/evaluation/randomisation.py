"""Repairs and critique of the model parameter randomisation test (MPRT, Adebayo et al.
2018).

* :func:`smooth_mprt`, Smooth-MPRT (Hedström et al. 2023): the maps of the trained and
  of the randomised network are each averaged over ``samples`` noisy copies of the input
  (Gaussian noise, standard deviation ``noise`` times the input's range, as SmoothGrad
  does) before they are compared, so that the shattered-gradient noise of a randomised
  network does not by itself make the maps differ. Returned: the Spearman correlation of
  the absolute averaged maps per image (lower: the method passes).
* :func:`efficient_mprt`, eMPRT (Hedström et al. 2023): instead of comparing the maps
  layer by layer, it compares their *complexity* before and after randomising every
  layer: per image ``(H(e_random) - H(e_trained)) / H(e_trained)`` with ``H`` the
  discrete entropy of the map's histogram
  (:func:`~xaisurvey.evaluation.discrete_entropy`). A map of a trained model should be
  more structured (lower entropy) than that of a random one: higher scores pass.
* :func:`parameter_noise_map`, Binder et al. (2023)'s point on a constructed example: a
  map of pure noise whose seed is a hash of the model's parameters. It says nothing
  about the image, yet every randomisation changes it completely, so it passes the
  top-down randomisation test with a similarity of about zero: passing the test is
  necessary, not sufficient.
"""

from __future__ import annotations

import hashlib
from typing import Callable

import torch
from torch import nn

from .complexity import discrete_entropy
from .sanity import parameter_layers, randomize_layers
from .similarity import spearman

__all__ = ["smooth_mprt", "efficient_mprt", "parameter_noise_map", "fully_randomized"]

Explainer = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def fully_randomized(
    model: nn.Module, *, seed: int = 0, layers: list[str] | None = None
) -> nn.Module:
    """A deep copy of ``model`` with every parameterised layer (or the given ``layers``)
    re-initialised."""
    layers = parameter_layers(model) if layers is None else layers
    return randomize_layers(model, layers, seed=seed)


def _maps(
    explain: Explainer, model: nn.Module, x: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    maps = explain(model, x, target).detach()
    return maps.sum(1) if maps.dim() == 4 else maps


def smooth_mprt(
    explain: Explainer,
    model: nn.Module,
    randomized: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    samples: int = 8,
    noise: float = 0.1,
    seed: int = 0,
) -> torch.Tensor:
    """Smooth-MPRT: Spearman correlation (of absolute values) between noise-averaged
    maps, per image.

    Args:
        explain: ``explain(model, x, target) -> (N, H, W)``.
        model, randomized: the trained network and its randomised copy.
        x: (N, C, H, W) images; target: (N,) classes (kept for both networks).
        samples: noisy copies per image (the same noise for both networks).
        noise: noise standard deviation as a fraction of ``x.max() - x.min()``.
        seed: seeds the noise.

    Returns:
        (N,) float64 correlations.
    """
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(
            f"smooth_mprt: samples must be a positive int, got {samples!r}"
        )
    g = torch.Generator().manual_seed(seed)
    sigma = noise * float(x.max() - x.min())
    sums = [torch.zeros(0), torch.zeros(0)]
    for _ in range(samples):
        noisy = x + sigma * torch.randn(x.shape, generator=g).to(x)
        for i, net in enumerate((model, randomized)):
            m = _maps(explain, net, noisy, target)
            sums[i] = m if sums[i].numel() == 0 else sums[i] + m
    return torch.tensor(
        [spearman(a, b, absolute=True) for a, b in zip(*sums)], dtype=torch.float64
    )


def efficient_mprt(
    explain: Explainer,
    model: nn.Module,
    randomized: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    bins: int = 100,
) -> torch.Tensor:
    """eMPRT: relative rise of the maps' discrete entropy from the trained to the
    randomised network.

    Returns:
        (N,) float64 ``(H_random - H_trained) / H_trained`` (0 where the trained map is
        flat).

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> explain = lambda m, x, t: x[:, 0]  # ignores the model: no rise at all
        >>> efficient_mprt(
        ...     explain,
        ...     net,
        ...     fully_randomized(net),
        ...     torch.rand(2, 1, 2, 2),
        ...     torch.tensor([0, 1]),
        ... ).tolist()
        [0.0, 0.0]
    """
    before = _maps(explain, model, x, target)
    after = _maps(explain, randomized, x, target)
    scores = []
    for a, b in zip(before, after):
        h_a, h_b = discrete_entropy(a, bins=bins), discrete_entropy(b, bins=bins)
        scores.append(0.0 if h_a == 0 else (h_b - h_a) / h_a)
    return torch.tensor(scores, dtype=torch.float64)


def parameter_noise_map(
    model: nn.Module, x: torch.Tensor, target: object = None
) -> torch.Tensor:
    """Binder et al.'s uninformative map: uniform noise seeded by a hash of the model's
    parameters.

    It ignores the image and the class, yet any change of a parameter draws a new map.

    Example:
        >>> net = nn.Linear(2, 2)
        >>> a = parameter_noise_map(net, torch.zeros(1, 1, 3, 3))
        >>> bool(torch.equal(a, parameter_noise_map(net, torch.ones(1, 1, 3, 3))))
        True
        >>> with torch.no_grad():
        ...     net.weight[0, 0] += 1
        >>> bool(torch.equal(a, parameter_noise_map(net, torch.zeros(1, 1, 3, 3))))
        False
    """
    digest = hashlib.sha256()
    for p in model.parameters():
        digest.update(p.detach().cpu().to(torch.float64).numpy().tobytes())
    g = torch.Generator().manual_seed(int(digest.hexdigest()[:15], 16))
    n, _, h, w = x.shape
    return torch.rand(n, h, w, generator=g).to(device=x.device, dtype=x.dtype)
