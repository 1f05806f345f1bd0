"""Issue 12 §4: DataParallel / DistributedDataParallel wrappers are refused in one line.

DataParallel runs its replicas in other threads, where Guided Backprop's ReLU rule (a
TorchFunctionMode of the calling thread) and the layer hooks do not reach, so a wrapped model
would silently lose the guided rule on a multi-GPU machine. Every attribution entry point and
featvis refuses such a model and names the fix (``.module``). Without GPUs DataParallel just
calls its module, so the refusal is tested here on the CPU.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from xaisurvey import featvis
from xaisurvey.attribution import registry


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))


X = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def _layer(spec: registry.MethodSpec, prefix: str = "") -> str | None:
    return prefix + "1" if spec.needs_layer else None


@pytest.mark.parametrize("spec", registry.available(), ids=lambda s: s.name)
def test_every_method_refuses_a_data_parallel_model(spec: registry.MethodSpec) -> None:
    wrapped = nn.DataParallel(small_net())
    with pytest.raises(TypeError, match=r"DataParallel.*\.module") as info:
        registry.explain(spec.name, wrapped, X, 1, layer=_layer(spec, "module."), **spec.quick)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{spec.name}: the model is wrapped in DataParallel")
    # the wrapped network itself works and gives a map
    assert registry.explain(spec.name, wrapped.module, X, 1, layer=_layer(spec), **spec.quick).shape == (2, 8, 8)


@pytest.mark.parametrize("spec", registry.available(), ids=lambda s: s.name)
def test_a_data_parallel_submodule_is_named(spec: registry.MethodSpec) -> None:
    net = small_net()
    net[0] = nn.DataParallel(net[0])
    with pytest.raises(TypeError, match=r"submodule '0' is wrapped in DataParallel"):
        registry.explain(spec.name, net, X, 1, layer=_layer(spec), **spec.quick)


def test_distributed_data_parallel_is_detected_by_type() -> None:
    from xaisurvey.attribution._core import check_not_parallel

    class FakeDDP(nn.parallel.DistributedDataParallel):  # constructing a real one needs a process group
        def __init__(self, module: nn.Module) -> None:
            nn.Module.__init__(self)
            self.module = module

    with pytest.raises(TypeError, match="wrapped in FakeDDP"):
        check_not_parallel(FakeDDP(small_net()), method="saliency")


def test_featvis_refuses_a_data_parallel_model() -> None:
    wrapped = nn.DataParallel(small_net())
    with pytest.raises(TypeError, match="maximise_channel: the model is wrapped in DataParallel"):
        featvis.maximise_channel(wrapped, "module.0", 0, size=8, steps=1)
    with pytest.raises(TypeError, match="maximise_class: the model is wrapped in DataParallel"):
        featvis.maximise_class(wrapped, 0, size=8, steps=1)
