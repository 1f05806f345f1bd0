"""Input invariance (Kindermans et al. 2019) and fragility (Ghorbani, Abid and Zou 2019)
of maps.

**Input invariance.** Shift every input by a constant, ``x' = x + c``, and give the
first convolution the bias ``b' = b - sum_{i,u,v} W_{k,i,u,v} c_i``
(:func:`shift_absorbed_model`): the new network computes on ``x'`` exactly what the old
one computes on ``x``, every activation and every gradient included. A method that
depends on the input only through the network must give the same map; Kindermans et al.
show that gradient x input, integrated gradients and DeepLIFT with a zero reference do
not. :func:`input_invariance` returns the relative L1 change per image,
``||A'(x') - A(x)||_1 / ||A(x)||_1`` (0: invariant). The first convolution must have no
padding (zero padding would not see the shift) and a bias; the shift is applied in the
[0, 1] image space and mapped through whatever affine normalisation precedes the
convolution.

**Fragility.** A perturbation ``delta`` with ``||delta||_inf <= epsilon`` that keeps the
predicted class can still move the map. Ghorbani et al. search for it by gradient ascent
on a dissimilarity; :func:`fragility` uses a black-box random search (``tries`` random
sign patterns of size ``epsilon``, the same for every method) and reports the smallest
top-k intersection between the map of x and the map of a perturbed x that keeps the
prediction (1: the top-k pixels are unchanged; lower: more fragile). Being a random
search, it bounds fragility from below.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

from .similarity import top_k_intersection

__all__ = ["shift_absorbed_model", "input_invariance", "fragility"]

Explainer = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def _first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise ValueError("shift_absorbed_model: the model has no Conv2d")


def shift_absorbed_model(
    model: nn.Module, shift: float, example: torch.Tensor
) -> nn.Module:
    """A copy of ``model`` whose first convolution's bias absorbs an input shift of
    ``shift``.

    ``example`` (N, C, H, W) is used to read how the shift arrives at the convolution
    (through a normalisation, say); that arrival must be a constant per channel.

    Example:
        >>> net = nn.Sequential(
        ...     nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)
        ... )
        >>> x = torch.rand(2, 1, 6, 6)
        >>> shifted = shift_absorbed_model(net, 0.5, x)
        >>> bool(torch.allclose(shifted(x + 0.5), net(x), atol=1e-5))
        True
    """
    name, conv = _first_conv(model)
    if conv.bias is None:
        raise ValueError(
            f"shift_absorbed_model: the first convolution {name!r} has no bias to "
            "absorb the shift"
        )
    pads = conv.padding
    if (pads != "valid") if isinstance(pads, str) else any(pads):
        raise ValueError(
            f"shift_absorbed_model: the first convolution {name!r} pads its input; the "
            "shift "
            "would not be absorbed at the border"
        )
    seen: list[torch.Tensor] = []
    handle = conv.register_forward_hook(
        lambda m, inp, out: seen.append(inp[0].detach())
    )
    try:
        with torch.no_grad():
            model(example)
            model(example + shift)
    finally:
        handle.remove()
    arrival = seen[1] - seen[0]
    delta = arrival.mean(dim=(0, 2, 3))
    if not torch.allclose(
        arrival, delta[None, :, None, None].expand_as(arrival), atol=1e-5
    ):
        raise ValueError(
            "shift_absorbed_model: the shift does not reach the first convolution as a "
            "constant"
        )
    copied = copy.deepcopy(model)
    target = dict(copied.named_modules())[name]
    with torch.no_grad():
        target.bias -= (target.weight.sum(dim=(2, 3)) * delta[None, :]).sum(1)
    return copied


def input_invariance(
    explain: Explainer,
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    shift: float = 0.5,
) -> torch.Tensor:
    """Relative L1 change of the maps under an absorbed input shift, per image ((N,)
    float64; 0 = invariant)."""
    shifted = shift_absorbed_model(model, shift, x)
    a = explain(model, x, target).detach().to(torch.float64)
    b = explain(shifted, x + shift, target).detach().to(torch.float64)
    a, b = a.flatten(1), b.flatten(1)
    norm = a.abs().sum(1)
    change = (a - b).abs().sum(1)
    return torch.where(
        norm > 0, change / norm.clamp(min=1e-300), torch.where(change > 0, 1.0, 0.0)
    )


def fragility(
    explain: Explainer,
    model: nn.Module,
    x: torch.Tensor,
    *,
    epsilon: float = 8 / 255,
    tries: int = 4,
    k: int = 1000,
    seed: int = 0,
    base: torch.Tensor | None = None,
) -> torch.Tensor:
    """Smallest top-k intersection over ``tries`` sign perturbations that keep the
    predicted class.

    The target is the predicted class of the clean image; perturbed images are clamped
    to [0, 1]. An image none of whose perturbations keeps the prediction scores 1 (no
    admissible change). ``base``: the maps of ``x`` for its predicted classes, when
    already computed.

    Returns:
        The intersections, float64 (N,), each in [0, 1]; lower is more fragile.
    """
    if not isinstance(tries, int) or tries < 1:
        raise ValueError(f"fragility: tries must be a positive int, got {tries!r}")
    with torch.no_grad():
        predicted = model(x).argmax(1)
    base = explain(model, x, predicted).detach() if base is None else base
    n = x.shape[0]
    k = min(k, base[0].numel())
    g = torch.Generator().manual_seed(seed)
    worst = torch.ones(n, dtype=torch.float64)
    for _ in range(tries):
        sign = torch.randint(0, 2, x.shape, generator=g).to(x) * 2 - 1
        moved = (x + epsilon * sign).clamp(0, 1)
        with torch.no_grad():
            kept = model(moved).argmax(1) == predicted
        maps = explain(model, moved, predicted).detach()
        for i in range(n):
            if kept[i]:
                worst[i] = min(float(worst[i]), top_k_intersection(base[i], maps[i], k))
    return worst
