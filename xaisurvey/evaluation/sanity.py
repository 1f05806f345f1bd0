"""Sanity checks for saliency maps (Adebayo et al., 2018): does the map depend on what
was learnt?

*Model parameter randomisation*: re-initialise the network's layers, from the top
(the output) down, and compare each method's map on the randomised network with its map
on the trained one. A method whose maps stay the same explains the input, not the model.

* **cascading**: layers are randomised cumulatively, top first: stage i has the i top
  layers random;
* **independent**: one layer at a time, the rest trained.

*Data randomisation*: train the same architecture on permuted labels
(:func:`shuffled_labels`); a model that memorised noise should not get the same maps as
one that learnt the task (:func:`map_similarity` compares them).

Conventions: randomisation happens on deep copies (the caller's model is never modified:
its explanations run under :func:`~xaisurvey.guard.model_guard`, which restores every
module's training flag, ``requires_grad``, ``.grad`` and buffers, also after an error);
:func:`sanity_check` builds one randomised copy at a time and drops it before the next,
so its peak memory is the model plus one copy whatever the number of stages; a layer is
re-initialised with PyTorch's own initialiser (``reset_parameters``: random for
convolutions and linear layers, identity for batch normalisation, whose running
statistics are reset too), under a seed derived from ``seed`` and the layer's position,
so a layer gets the same random weights in both modes (and on every device: the draws
are made on the CPU). Maps with a channel axis are summed over it. Similarity is
Spearman's rank correlation (signed and of absolute values) and SSIM, per image.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Iterator, Literal, Mapping, Sequence

import torch
from torch import nn

from ..guard import model_guard
from .similarity import spearman, ssim

__all__ = [
    "Explainer",
    "SanityResult",
    "parameter_layers",
    "randomize_layers",
    "cascading_randomization",
    "independent_randomization",
    "map_similarity",
    "sanity_check",
    "shuffled_labels",
]

#: ``explain(model, x, target) -> maps``: an attribution method with its options bound,
#: e.g. ``functools.partial(grad_cam, layer="conv2")``; maps are (N, H, W) or
#: (N, C, H, W).
Explainer = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def parameter_layers(model: nn.Module) -> list[str]:
    """Dotted names of the modules that own parameters, in registration order
    (input to output).

    Example:
        >>> parameter_layers(
        ...     nn.Sequential(
        ...         nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3)
        ...     )
        ... )
        ['0', '3']
    """
    return [
        name
        for name, m in model.named_modules()
        if name and any(True for _ in m.parameters(recurse=False))
    ]


def _reinitialise(module: nn.Module, name: str, seed: int) -> None:
    owners = [
        m for m in module.modules() if any(True for _ in m.parameters(recurse=False))
    ]
    if not owners:
        raise ValueError(f"layer {name!r} has no parameters to randomise")
    for m in owners:
        if not hasattr(m, "reset_parameters"):
            raise ValueError(
                f"layer {name!r} contains a {type(m).__name__} without "
                "reset_parameters(); "
                "pass a different layer list"
            )
    # The draws happen on a CPU twin of each module, under a forked CPU generator: the
    # random weights are the same whatever the model's device, and no global generator
    # (CPU or CUDA) is advanced.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in owners:
            twin = copy.deepcopy(m).cpu()
            twin.reset_parameters()
            if hasattr(twin, "reset_running_stats"):
                twin.reset_running_stats()
            with torch.no_grad():
                for mine, drawn in zip(m.parameters(), twin.parameters()):
                    mine.copy_(drawn)
                for mine, drawn in zip(m.buffers(), twin.buffers()):
                    mine.copy_(drawn)


def _layer_seed(seed: int, position: int) -> int:
    # Far from the small seeds used to build models, so a re-initialisation never
    # replays the construction-time draw of an untrained network.
    return 1_000_003 * (seed + 1) + position


def randomize_layers(
    model: nn.Module,
    layers: Sequence[str],
    *,
    seed: int = 0,
    all_layers: Sequence[str] | None = None,
) -> nn.Module:
    """A deep copy of ``model`` with the named layers (modules or whole blocks)
    re-initialised.

    Args:
        model: the trained network (left untouched).
        layers: dotted module names; a block's name re-initialises every parameterised
            module in it.
        seed: base seed; layer ``L`` uses a seed derived from ``seed`` and its position
            in ``all_layers`` (default ``layers``), so its random weights do not depend
            on the other layers chosen.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
        >>> rnd = randomize_layers(net, ["1"])
        >>> (
        ...     torch.equal(rnd[0].weight, net[0].weight),
        ...     torch.equal(rnd[1].weight, net[1].weight),
        ... )
        (True, False)
    """
    order = list(all_layers) if all_layers is not None else list(layers)
    # Under the model's lock: no other thread is changing its flags while it is copied.
    with model_guard(
        model,
        eval_mode=False,
        freeze_parameters=False,
        needs_grad=False,
        method="randomize_layers",
    ):
        copied = copy.deepcopy(model)
    modules = dict(copied.named_modules())
    for name in layers:
        if name not in modules or not name:
            raise ValueError(f"randomize_layers: the model has no layer named {name!r}")
        if name not in order:
            raise ValueError(f"randomize_layers: layer {name!r} is not in all_layers")
        _reinitialise(modules[name], name, _layer_seed(seed, order.index(name)))
    return copied  # a deep copy keeps every module's own training flag


def cascading_randomization(
    model: nn.Module, layers: Sequence[str], *, seed: int = 0
) -> list[tuple[str, nn.Module]]:
    """Copies of ``model`` with the top 1, 2, ..., all of ``layers`` randomised
    (``layers`` listed input to output).

    Returns ``[(top layer randomised at this stage, model copy), ...]``, top layer
    first: all copies at once (``len(layers)`` models in memory); :func:`sanity_check`
    instead makes them one at a time.
    """
    return list(_stages(model, layers, "cascading", seed))


def independent_randomization(
    model: nn.Module, layers: Sequence[str], *, seed: int = 0
) -> list[tuple[str, nn.Module]]:
    """Copies of ``model`` with one of ``layers`` randomised each, top layer first
    (all at once)."""
    return list(_stages(model, layers, "independent", seed))


def _stages(
    model: nn.Module, layers: Sequence[str], mode: str, seed: int
) -> Iterator[tuple[str, nn.Module]]:
    """The randomised copies, top layer first, made lazily: one copy per ``next()``."""
    top_down = list(reversed(layers))
    for i, name in enumerate(top_down):
        chosen = top_down[: i + 1] if mode == "cascading" else [name]
        yield name, randomize_layers(model, chosen, seed=seed, all_layers=layers)


def _as_maps(maps: torch.Tensor, n: int, method: str) -> torch.Tensor:
    maps = maps.detach().cpu()
    if maps.dim() == 4:
        maps = maps.sum(1)
    if maps.dim() != 3 or maps.shape[0] != n:
        raise ValueError(
            f"sanity_check: method {method!r} returned shape {tuple(maps.shape)}, "
            f"expected ({n}, H, W) or ({n}, C, H, W)"
        )
    return maps


def map_similarity(
    a: torch.Tensor, b: torch.Tensor, *, ssim_window: int = 7
) -> dict[str, torch.Tensor]:
    """Per-image similarity of two stacks of maps (N, H, W): ``spearman``,
    ``spearman_abs``, ``ssim``.

    SSIM compares the absolute maps, min-max scaled (as the visualisations are).

    Example:
        >>> m = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> {k: v.tolist() for k, v in map_similarity(m, m).items()}
        {'spearman': [1.0, 1.0], 'spearman_abs': [1.0, 1.0], 'ssim': [1.0, 1.0]}
    """
    if a.shape != b.shape or a.dim() != 3:
        raise ValueError(
            "map_similarity: expected two (N, H, W) stacks of equal shape, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    return {
        "spearman": torch.tensor([spearman(p, q) for p, q in zip(a, b)]),
        "spearman_abs": torch.tensor(
            [spearman(p, q, absolute=True) for p, q in zip(a, b)]
        ),
        "ssim": torch.tensor(
            [
                round(ssim(p.abs(), q.abs(), window=ssim_window), 12)
                for p, q in zip(a, b)
            ]
        ),
    }


@dataclass(frozen=True)
class SanityResult:
    """Outcome of :func:`sanity_check`.

    Attributes:
        mode: ``"cascading"`` or ``"independent"``.
        stages: ``"trained"`` then the layer randomised at each stage (top first).
        scores: ``scores[method][metric]`` is a (stages, N) tensor; metrics are
            ``spearman``, ``spearman_abs`` and ``ssim``; row 0 compares the trained maps
            with themselves (1; 0 for a flat map).
        maps: ``maps[method]`` is (stages, N, H, W), the maps at every stage.
    """

    mode: str
    stages: tuple[str, ...]
    scores: dict[str, dict[str, torch.Tensor]]
    maps: dict[str, torch.Tensor]

    def mean(self, method: str, metric: str) -> torch.Tensor:
        """Mean over images of one metric, one value per stage."""
        return self.scores[method][metric].mean(dim=1)


def sanity_check(
    model: nn.Module,
    explainers: Mapping[str, Explainer],
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    layers: Sequence[str],
    mode: Literal["cascading", "independent"] = "cascading",
    seed: int = 0,
    ssim_window: int = 7,
) -> SanityResult:
    """Model parameter randomisation test (Adebayo et al., 2018) for several methods at
    once.

    Args:
        model: the trained network (never modified: every stage is a deep copy).
        explainers: method name -> ``explain(model, x, target)`` returning (N, H, W) or
            (N, C, H, W).
        x: (N, C, H, W) images.
        target: (N,) class indices, kept fixed across stages (the trained model's
            classes).
        layers: layers (or blocks) that can be randomised, listed from input to output.
        mode: ``"cascading"`` or ``"independent"``.
        seed: base seed of the re-initialisation.
        ssim_window: SSIM window (odd, at most the map's side).

    Returns:
        a :class:`SanityResult`.

    Example:
        >>> net = nn.Sequential(
        ...     nn.Conv2d(1, 2, 3, padding=1),
        ...     nn.ReLU(),
        ...     nn.Flatten(),
        ...     nn.Linear(2 * 8 * 8, 3),
        ... )
        >>> def grad(model, x, target):
        ...     x = x.clone().requires_grad_(True)
        ...     model(x).gather(1, target[:, None]).sum().backward()
        ...     return x.grad
        >>> r = sanity_check(
        ...     net,
        ...     {"gradient": grad},
        ...     torch.rand(2, 1, 8, 8),
        ...     torch.tensor([0, 1]),
        ...     layers=["0", "3"],
        ... )
        >>> r.stages, r.scores["gradient"]["ssim"].shape
        (('trained', '3', '0'), torch.Size([3, 2]))
    """
    if mode not in ("cascading", "independent"):
        raise ValueError(
            f"sanity_check: mode must be 'cascading' or 'independent', got {mode!r}"
        )
    if not layers:
        raise ValueError("sanity_check: give at least one layer to randomise")
    if not explainers:
        raise ValueError("sanity_check: give at least one explainer")
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"sanity_check: model must be a torch.nn.Module, got {type(model).__name__}"
        )
    n = x.shape[0]
    maps: dict[str, list[torch.Tensor]] = {name: [] for name in explainers}
    # The explainers are the caller's functions: the guard restores modes,
    # requires_grad, .grad and buffers, freezes the weights (no gradient accumulates in
    # them) and leaves the mode to the explainers (the package's methods set eval mode).
    with model_guard(model, eval_mode=False, needs_grad=False, method="sanity_check"):
        for name, explain in explainers.items():
            maps[name].append(_as_maps(explain(model, x, target), n, name))
    stage_names = ["trained"]
    for stage, stage_model in _stages(model, layers, mode, seed):
        for name, explain in explainers.items():
            maps[name].append(_as_maps(explain(stage_model, x, target), n, name))
        stage_names.append(stage)
        del stage_model  # one randomised copy alive at a time
    stacked = {name: torch.stack(m) for name, m in maps.items()}
    scores: dict[str, dict[str, torch.Tensor]] = {}
    for name, m in stacked.items():
        per_stage = [
            map_similarity(m[0], m[s], ssim_window=ssim_window)
            for s in range(len(stage_names))
        ]
        scores[name] = {
            metric: torch.stack([p[metric] for p in per_stage])
            for metric in per_stage[0]
        }
    return SanityResult(
        mode=mode, stages=tuple(stage_names), scores=scores, maps=stacked
    )


def shuffled_labels(labels: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """The data randomisation test's labels: a seeded random permutation of ``labels``.

    The label histogram is kept, the link between image and label is destroyed.

    Example:
        >>> y = torch.arange(10)
        >>> s = shuffled_labels(y, seed=0)
        >>> sorted(s.tolist()) == y.tolist(), bool((s != y).any())
        (True, True)
    """
    if labels.dim() != 1:
        raise ValueError(
            f"shuffled_labels: labels must be 1-D, got shape {tuple(labels.shape)}"
        )
    permutation = torch.randperm(
        labels.numel(), generator=torch.Generator().manual_seed(seed)
    )
    return labels[permutation].clone()
