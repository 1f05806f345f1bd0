"""Models: the registry, the pretrained networks and the small CNNs trained in the book."""
from .registry import LoadedModel, available, describe, load, register

__all__ = ["LoadedModel", "available", "describe", "load", "register"]
