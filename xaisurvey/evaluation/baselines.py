"""Baseline maps that know nothing about the model: random, centre and edges (Adebayo et
al. 2018).

Every test of the battery scores these three next to the methods. They share the
signature of an explainer, ``f(model, x, target) -> (N, H, W)``, but ignore ``model``
and ``target``:

* :func:`random_map`: uniform noise, seeded by the image's position in the batch and
  ``seed`` (the same image gets the same map on every model, so it *fails* randomisation
  tests);
* :func:`centre_map`: an isotropic Gaussian at the image centre, sigma a quarter of the
  shorter side (photographers centre the object);
* :func:`sobel_map`: the gradient magnitude of the image by the Sobel operator, summed
  over the channels (the edge detector Adebayo et al. compare saliency maps with).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["random_map", "centre_map", "sobel_map", "BASELINES"]


def _check(x: torch.Tensor, what: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        raise ValueError(
            f"{what}: x must be a float (N, C, H, W) tensor, got "
            f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
        )


def random_map(
    model: nn.Module | None, x: torch.Tensor, target: object = None, *, seed: int = 0
) -> torch.Tensor:
    """Uniform noise in [0, 1), (N, H, W), the same for the same batch position and
    ``seed``.

    Example:
        >>> m = random_map(None, torch.zeros(2, 3, 4, 4))
        >>> m.shape, bool(torch.equal(m, random_map(None, torch.ones(2, 3, 4, 4))))
        (torch.Size([2, 4, 4]), True)
    """
    _check(x, "random_map")
    n, _, h, w = x.shape
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, h, w, generator=g).to(device=x.device, dtype=x.dtype)


def centre_map(
    model: nn.Module | None, x: torch.Tensor, target: object = None
) -> torch.Tensor:
    """``exp(-d^2 / (2 sigma^2))`` with d the distance to the centre, sigma = min(H, W)
    / 4.

    Example:
        >>> m = centre_map(None, torch.zeros(1, 1, 5, 5))
        >>> int(m[0].flatten().argmax()), float(m[0, 2, 2])
        (12, 1.0)
    """
    _check(x, "centre_map")
    n, _, h, w = x.shape
    sigma = min(h, w) / 4
    ys = torch.arange(h, dtype=x.dtype, device=x.device) - (h - 1) / 2
    xs = torch.arange(w, dtype=x.dtype, device=x.device) - (w - 1) / 2
    gauss = torch.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2 * sigma**2))
    return gauss.expand(n, h, w).clone()


def sobel_map(
    model: nn.Module | None, x: torch.Tensor, target: object = None
) -> torch.Tensor:
    """``sum_c sqrt(Gx_c^2 + Gy_c^2)``: Sobel gradient magnitude of the image (replicate
    padding).

    Example:
        >>> x = torch.zeros(1, 1, 4, 4); x[..., 2:] = 1.0  # a vertical edge
        >>> sobel_map(None, x)[0, 1].tolist()
        [0.0, 4.0, 4.0, 0.0]
    """
    _check(x, "sobel_map")
    c = x.shape[1]
    kx = torch.tensor(
        [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]],
        dtype=x.dtype,
        device=x.device,
    )
    kernels = torch.stack([kx, kx.t()])[:, None].repeat(c, 1, 1, 1)  # (2C, 1, 3, 3)
    padded = F.pad(x.detach(), (1, 1, 1, 1), mode="replicate")
    grads = F.conv2d(padded, kernels, groups=c).view(x.shape[0], c, 2, *x.shape[2:])
    return grads.pow(2).sum(2).sqrt().sum(1)


#: The baselines every test of the battery scores, by the name the tables use.
BASELINES = {"random": random_map, "centre": centre_map, "sobel": sobel_map}
