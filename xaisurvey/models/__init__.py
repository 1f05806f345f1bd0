"""Models: the registry, the pretrained networks and the small CNNs trained in the
book."""

from .registry import LoadedModel, available, describe, load, register, register_family
from . import pretrained  # registers the pretrained models
from . import trained  # registers the models trained in the book

__all__ = [
    "LoadedModel",
    "available",
    "describe",
    "load",
    "register",
    "register_family",
]
