"""Benchmark tasks of the relevance family (issue 15): LRP against its floor and against zennit.

Floor: one forward and one backward pass to the input (``FLOOR_INPUT`` of ``attribution.py``);
LRP with the default composite (``epsilon_gamma_box``) is the registry's task ``lrp``; this
module adds LRP with ``epsilon_plus_flat`` and zennit's ``Gradient`` attributor with the same two
composites and the canonizers a ResNet needs (``ResNetCanonizer``: BatchNorm merged into the
convolutions, a ``Sum`` module for the residual additions), the output relevance being the
target score (``output * one_hot``), as ours.
"""
from __future__ import annotations

import torch
from torch import nn

#: The issue's target: LRP costs at most 1.5x one forward and backward pass.
TIME_TARGETS = {"lrp": 1.5, "lrp epsilon_plus_flat": 1.5}
#: Peak memory: the rules keep each layer's input and output, as a backward pass does, plus the
#: temporaries of one rule at a time.
MEMORY_TARGETS = {"lrp": 1.5, "lrp epsilon_plus_flat": 1.5}


def tasks(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, peers: bool = True) -> list:
    from attribution import FLOOR_INPUT, Task

    from xaisurvey.attribution import lrp

    targets = target.tolist()
    out = [Task("lrp epsilon_plus_flat", "ours", FLOOR_INPUT,
                lambda: lrp(model, x, targets, composite="epsilon_plus_flat"))]
    if not peers:
        return out
    from zennit.attribution import Gradient
    from zennit.composites import EpsilonGammaBox, EpsilonPlusFlat
    from zennit.torchvision import ResNetCanonizer

    def zennit_run(make_composite) -> object:  # noqa: ANN001
        def run() -> object:
            with Gradient(model, make_composite()) as attributor:
                _, relevance = attributor(x, lambda output: output * nn.functional.one_hot(
                    target, output.shape[1]).to(output))
            return relevance
        return run

    out += [
        Task("zennit Gradient EpsilonGammaBox", "zennit", FLOOR_INPUT,
             zennit_run(lambda: EpsilonGammaBox(low=0.0, high=1.0,
                                                canonizers=[ResNetCanonizer()]))),
        Task("zennit Gradient EpsilonPlusFlat", "zennit", FLOOR_INPUT,
             zennit_run(lambda: EpsilonPlusFlat(canonizers=[ResNetCanonizer()]))),
    ]
    return out
