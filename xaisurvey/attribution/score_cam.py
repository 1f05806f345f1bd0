"""Score-CAM (Wang, Wang, Du, Yang, Zhang, Ding, Mardziel and Hu, 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._cam import layer_pass, weighted_map
from ._cam_rules import prepare
from ._core import (
    Target,
    TargetLike,
    check_choice,
    check_positive_int,
    model_guard,
    select_scores,
    warn_zero_maps,
)

__all__ = ["score_cam", "score_cam_masks"]


def score_cam_masks(activation: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Score-CAM's masks ``H^k = s(Up(A^k))``, (M, H, W), from activations (M, h, w).

    ``Up`` is bilinear (``align_corners=False``), ``s`` min-max scales each upsampled
    map to [0, 1]; a constant map gives a zero mask.
    """
    up = F.interpolate(
        activation[:, None], size=size, mode="bilinear", align_corners=False
    )[:, 0]
    low = up.amin(dim=(1, 2), keepdim=True)
    span = up.amax(dim=(1, 2), keepdim=True) - low
    flat = span == 0
    safe = torch.where(flat, torch.ones_like(span), span)
    return torch.where(flat, torch.zeros_like(up), (up - low) / safe)


def _scores(
    model: nn.Module, inputs: torch.Tensor, target: Target, score: str, method: str
) -> torch.Tensor:
    output = model(inputs)
    if score == "softmax":
        if not isinstance(output, torch.Tensor) or output.dim() != 2:
            raise ValueError(
                f"{method}: score='softmax' needs an output of shape (N, classes); "
                "use score='logit'"
            )
        output = output.softmax(dim=1)
    return select_scores(output, target, method=method, n=inputs.shape[0])


def score_cam(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike,
    *,
    layer: nn.Module | str,
    score: str = "softmax",
    baseline: float | torch.Tensor = 0.0,
    channel_softmax: bool = False,
    batch_size: int = 32,
    relu: bool = True,
    upsample: str | None = "bilinear",
) -> torch.Tensor:
    """Score-CAM: each feature map weighted by the score's rise when it masks the image.

    Paper: H. Wang, Z. Wang, M. Du, F. Yang, Z. Zhang, S. Ding, P. Mardziel and X. Hu,
    "Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural Networks"
    (CVPR Workshops 2020).

    Formula (the paper's Definition 2, Sec. 4.1 and 4.2)::

        H^k  = s(Up(A^k))             bilinear upsampling, then min-max to [0, 1]
        C_k  = f(X o H^k) - f(X_b)    the increase of confidence (o: element-wise)
        L    = ReLU( sum_k C_k A^k )

    ``f`` is the post-softmax probability of the target class (``score="softmax"``, the
    paper's Sec. 4.2; ``"logit"`` uses the raw score) and ``X_b`` the baseline image
    (the paper's experiments: black, ``baseline=0``). ``channel_softmax=True`` adds the
    softmax over channels of the paper's Algorithm 1,
    ``alpha_k = exp(C_k) / sum_j exp(C_j)``; it makes the baseline irrelevant
    (a constant shift). pytorch-grad-cam and torch-cam use
    ``score="logit", channel_softmax=True``; the authors' code uses ``C_k = f(X o H^k)``
    (no baseline). A constant map gives a zero mask; its masked image is black, so with
    the black baseline its weight is exactly 0 and no forward pass is spent on it.

    Cost: one forward pass for the activations, then one forward pass (no gradients) per
    image and non-constant channel, in batches of ``batch_size`` masked images (plus N
    baseline rows): ``K`` passes per image for ``K`` channels (512 for ResNet-18's
    ``layer4``).

    Args:
        model: any ``nn.Module``; run in eval mode and left unchanged.
        x: float images (N, C, H, W).
        target: a class index, one index per image (list, tensor or NumPy array), or a
            callable on the output returning (N,) scores; with ``score="softmax"`` the
            callable receives the softmax of the output.
        layer: the module (or its dotted name) whose output (N, K, h, w) gives the
            masks.
        score: ``"softmax"`` (the paper) or ``"logit"``.
        baseline: the baseline image ``X_b``: a number or a tensor broadcastable to x.
        channel_softmax: apply Algorithm 1's softmax over the channel weights.
        batch_size: masked images per forward pass; it bounds the extra memory (one
            batch of masked images and the model's activations for it).
        relu: apply the final ReLU (the paper).
        upsample: how the final map is upsampled: ``"bilinear"``, ``"nearest"`` or
            ``None``. (The masks are always bilinear, as in the paper.)

    Returns:
        (N, H, W) maps (or (N, h, w)), not normalised.

    Raises:
        ValueError: an option is invalid, the layer is not spatial or runs more than
            once.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
        >>> score_cam(net, torch.rand(2, 3, 8, 8), target=[0, 1], layer="1").shape
        torch.Size([2, 8, 8])
    """
    method = "score_cam"
    x, target_, name, module = prepare(
        model, x, target, layer, relu=relu, upsample=upsample, method=method
    )
    check_choice(score, ("softmax", "logit"), "score", method)
    if not isinstance(channel_softmax, bool):
        raise ValueError(
            f"{method}: channel_softmax must be True or False, got {channel_softmax!r}"
        )
    batch_size = check_positive_int(batch_size, "batch_size", method)
    if isinstance(baseline, torch.Tensor):
        try:
            x_b = torch.broadcast_to(baseline.to(x), x.shape)
        except RuntimeError:
            raise ValueError(
                f"{method}: baseline must broadcast to x's shape {tuple(x.shape)}, "
                f"got shape {tuple(baseline.shape)}"
            ) from None
    elif (
        isinstance(baseline, (int, float))
        and not isinstance(baseline, bool)
        and baseline == baseline
    ):
        x_b = None if baseline == 0 else torch.full_like(x, float(baseline))
    else:
        raise ValueError(
            f"{method}: baseline must be a finite number or a tensor, got {baseline!r}"
        )
    n, size = x.shape[0], tuple(x.shape[-2:])

    recorded = layer_pass(
        model, x, target_, module, name, method=method, gradient=False
    )
    activation = recorded.activation
    k = activation.shape[1]
    flat = activation.flatten(2)
    # (N*K,) rows that need a pass
    live = (flat.amax(dim=2) > flat.amin(dim=2)).flatten()
    rows = torch.nonzero(live).flatten().cpu()
    increase = torch.zeros(n * k, dtype=x.dtype, device=x.device)
    with model_guard(model, needs_grad=False, method=method), torch.no_grad():
        black = torch.zeros_like(x[:1])

        # f(X_b) for every image (for the black baseline, f of a black image).
        def blacks(s: int) -> torch.Tensor:
            return black.expand(min(batch_size, n - s), -1, -1, -1)

        def rows_of(s: int) -> Target:
            return target_.rows(s, min(s + batch_size, n))

        reference = torch.cat(
            [
                _scores(
                    model,
                    x_b[s : s + batch_size] if x_b is not None else blacks(s),
                    rows_of(s),
                    score,
                    method,
                )
                for s in range(0, n, batch_size)
            ]
        )
        if x_b is not None and bool((~live).any()):
            # A constant channel's mask is zero: its masked image is black, f(black) -
            # f(X_b).
            zero = torch.cat(
                [
                    _scores(model, blacks(s), rows_of(s), score, method)
                    for s in range(0, n, batch_size)
                ]
            )
            increase = (zero - reference).repeat_interleave(k)
        for start in range(0, rows.numel(), batch_size):
            chunk = rows[start : start + batch_size]
            image = chunk // k
            # The masks are freed before the forward pass: only the masked batch stays
            # alive.
            masked = score_cam_masks(
                activation.flatten(0, 1)[chunk.to(x.device)], size
            )[:, None]
            masked = masked * x[image.to(x.device)]
            # Class indices: each row's image's class; a callable scores every row of
            # the chunk.
            chunk_target = (
                target_ if target_.indices is None else Target(target_.indices[image])
            )
            got = _scores(model, masked, chunk_target, score, method)
            increase[chunk.to(x.device)] = got - reference[image.to(x.device)]
            del masked
    weights = increase.view(n, k)
    if channel_softmax:
        weights = weights.softmax(dim=1)
    maps = weighted_map(
        activation, weights, relu=relu, size=size, upsample=upsample, method=method
    )
    return warn_zero_maps(
        maps,
        method=method,
        why="no channel's mask raised the target score above the baseline's",
    )
