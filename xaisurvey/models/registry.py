"""The model registry: ``load(name)`` returns a ready model, ``available()`` lists the
names.

Every entry is a factory that returns a :class:`LoadedModel`: the network in eval mode
(taking images in [0, 1]; any normalisation lives inside the network), the class names,
a preprocessing function from a PIL image to the input tensor, and facts about it
(source, measured accuracy, the layer Grad-CAM uses by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

__all__ = [
    "LoadedModel",
    "register",
    "register_family",
    "load",
    "available",
    "describe",
]


@dataclass
class LoadedModel:
    """A model ready to explain.

    Attributes:
        name: the registry name.
        model: the network, in eval mode, on the CPU; it takes float images in [0, 1],
            shape (N, C, H, W), and normalises them itself.
        classes: the class names, index-aligned with the model's outputs (``None`` for
            regression).
        preprocess: maps a PIL image (or a (C, H, W) tensor in [0, 1]) to the (C, H, W)
            input tensor.
        target_layer: dotted name of the layer Grad-CAM uses by default (the last
            convolutional block).
        info: facts: source, licence, training configuration, measured accuracy, ...
    """

    name: str
    model: nn.Module
    classes: list[str] | None
    preprocess: Callable[[Any], torch.Tensor]
    target_layer: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, tuple[Callable[..., LoadedModel], str]] = {}
# Families of names with a common prefix, e.g. "torchvision:" + any torchvision
# classifier.
_FAMILIES: dict[str, tuple[Callable[..., LoadedModel], str]] = {}


def register(
    name: str, description: str
) -> Callable[[Callable[..., LoadedModel]], Callable[..., LoadedModel]]:
    """Decorator: register ``factory(**kwargs) -> LoadedModel`` under ``name``."""

    def decorator(factory: Callable[..., LoadedModel]) -> Callable[..., LoadedModel]:
        if name in _REGISTRY and _REGISTRY[name][0] is not factory:
            raise ValueError(f"a model named {name!r} is already registered")
        _REGISTRY[name] = (factory, description)
        return factory

    return decorator


def register_family(
    prefix: str, description: str
) -> Callable[[Callable[..., LoadedModel]], Callable[..., LoadedModel]]:
    """Decorator: ``load(prefix + rest, **kw)`` calls ``factory(rest, **kw)`` (e.g.
    ``"torchvision:"``)."""

    def decorator(factory: Callable[..., LoadedModel]) -> Callable[..., LoadedModel]:
        if prefix in _FAMILIES and _FAMILIES[prefix][0] is not factory:
            raise ValueError(
                f"a model family with prefix {prefix!r} is already registered"
            )
        _FAMILIES[prefix] = (factory, description)
        return factory

    return decorator


def available() -> list[str]:
    """The registered model names, sorted."""
    return sorted(_REGISTRY)


def describe() -> dict[str, str]:
    """Each registered name with its one-line description."""
    described = {name: _REGISTRY[name][1] for name in available()}
    described.update(
        {f"{prefix}<name>": text for prefix, (_, text) in sorted(_FAMILIES.items())}
    )
    return described


def load(name: str, **kwargs: Any) -> LoadedModel:
    """Load the model registered as ``name`` (in eval mode), passing ``kwargs`` to its
    factory.

    Example:
        >>> import xaisurvey.models as zoo
        >>> "mobilenet_v1_025_imagenet" in zoo.available()  # doctest: +SKIP
        True
    """
    if not isinstance(name, str):
        raise TypeError(
            f"load: the model name must be a str, got {type(name).__name__}; see"
            " available()"
        )
    family = next((prefix for prefix in _FAMILIES if name.startswith(prefix)), None)
    if name in _REGISTRY:
        loaded = _REGISTRY[name][0](**kwargs)
    elif family is not None:
        loaded = _FAMILIES[family][0](name[len(family) :], **kwargs)
    else:
        families = "".join(f", {prefix}<name>" for prefix in _FAMILIES)
        raise KeyError(
            f"unknown model {name!r}; available models:"
            f" {', '.join(available()) or '(none)'}{families}"
        )
    loaded.model.eval()
    return loaded
