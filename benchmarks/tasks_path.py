"""Benchmark tasks of the path family: Integrated Gradients, Gradient x Input and DeepLIFT.

Floors: ``n x forward + backward to input`` (the batch through the model and back to the input,
n times, no weight gradients) for Integrated Gradients with n steps, and the single
``forward + backward to input`` for Gradient x Input and DeepLIFT. n = 16 on full-size inputs
and 4 in the quick run. Integrated Gradients runs with ``internal_batch_size`` = the batch size,
so every pass holds one batch of interpolated images; captum's ``IntegratedGradients`` gets the
same steps, rule (Gauss-Legendre, both defaults) and ``internal_batch_size`` (it then runs one
step of the whole batch per pass): equal memory. DeepLIFT on ResNet-18 meets its max pooling
(kept as a plain gradient, with a warning, silenced here: only the time is measured). captum's
``DeepLift`` refuses a ReLU module called twice, which torchvision's ResNet blocks do, so it runs
on a copy whose blocks have a second ReLU module (same weights and operations).
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

#: Integrated Gradients with n steps: at most 1.05 x n forward-and-backward passes (issue 15);
#: Gradient x Input: one pass, like saliency. DeepLIFT has no target in the issue: its ratio is
#: reported (a reference pass of one image, and the multipliers computed in the backward pass).
TIME_TARGETS = {"integrated_gradients": 1.05, "gradient_x_input": 1.05}


def steps_for(x: torch.Tensor) -> int:
    """The n of the Integrated Gradients floor: 16 at full size (224 px), 4 in the quick run."""
    return 16 if x.shape[-1] >= 224 else 4


def _unshared_relus(model: nn.Module) -> nn.Module:
    """A copy of the model in which no ReLU module is called twice (captum's DeepLift refuses them).

    torchvision's ``BasicBlock`` calls ``self.relu`` twice; the copy gives each block a second
    ReLU module for the second call. Same weights, same operations, same cost.
    """
    import copy
    import types

    from torchvision.models.resnet import BasicBlock

    def forward(block: BasicBlock, x: torch.Tensor) -> torch.Tensor:
        identity = x if block.downsample is None else block.downsample(x)
        out = block.relu(block.bn1(block.conv1(x)))
        return block.relu_out(block.bn2(block.conv2(out)) + identity)

    twin = copy.deepcopy(model)
    for module in twin.modules():
        if isinstance(module, BasicBlock):
            module.relu_out = nn.ReLU()
            module.forward = types.MethodType(forward, module)
    return twin


def tasks(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, peers: bool) -> list:
    from attribution import FLOOR_INPUT, Task  # noqa: PLC0415 (the runner's module)

    from xaisurvey.attribution import deeplift, gradient_x_input, integrated_gradients

    n, batch = steps_for(x), x.shape[0]
    floor_name = f"{n} x forward + backward to input"
    params = list(model.parameters())

    def one_pass() -> object:
        flags = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(False)  # the floor computes no weight gradients
        try:
            xg = x.detach().requires_grad_(True)
            return torch.autograd.grad(model(xg).gather(1, target.view(-1, 1)).sum(), xg)[0]
        finally:
            for p, flag in zip(params, flags):
                p.requires_grad_(flag)
    targets = target.tolist()

    def floor_n() -> object:
        for _ in range(n):
            out = one_pass()
        return out

    def ours_deeplift() -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return deeplift(model, x, targets)

    result = [
        Task(floor_name, "floor", None, floor_n),
        Task("integrated_gradients", "ours", floor_name,
             lambda: integrated_gradients(model, x, targets, steps=n, internal_batch_size=batch)),
        Task("gradient_x_input", "ours", FLOOR_INPUT, lambda: gradient_x_input(model, x, targets)),
        Task("deeplift", "ours", FLOOR_INPUT, ours_deeplift),
    ]
    if not peers:
        return result
    from captum.attr import DeepLift, InputXGradient, IntegratedGradients

    unshared = _unshared_relus(model)

    def captum_deeplift() -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return DeepLift(unshared).attribute(x, target=target)

    result += [
        Task("captum IntegratedGradients", "captum", floor_name,
             lambda: IntegratedGradients(model).attribute(x, target=target, n_steps=n, internal_batch_size=batch)),
        Task("captum InputXGradient", "captum", FLOOR_INPUT, lambda: InputXGradient(model).attribute(x, target=target)),
        Task("captum DeepLift", "captum", FLOOR_INPUT, captum_deeplift),
    ]
    return result
