"""Tests of xaisurvey.hooks: copies not aliases, layer selection, hooks removed even on error."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from xaisurvey.hooks import capture_feature_maps, feature_maps


def _conv_relu_inplace() -> nn.Sequential:
    conv = nn.Conv2d(1, 1, kernel_size=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(-1.0)  # conv(x) = -x: negative where x > 0, so the ReLU changes it
    return nn.Sequential(conv, nn.ReLU(inplace=True))


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_copy_survives_inplace_relu():
    net = _conv_relu_inplace()
    x = torch.tensor([[[[1.0, -2.0], [3.0, 0.0]]]])
    with capture_feature_maps(net) as maps:
        net(x)
    # conv output is exactly -x; the in-place ReLU after it must not have zeroed the copy
    assert torch.equal(maps["0"], torch.tensor([[[[-1.0, 2.0], [-3.0, 0.0]]]]))
    assert torch.equal(maps["1"], torch.tensor([[[[0.0, 2.0], [0.0, 0.0]]]]))
    assert not maps["0"].requires_grad


def test_naive_hook_would_alias():
    """The failure mode the copies guard against: a stored reference is overwritten in place."""
    net = _conv_relu_inplace()
    seen = {}
    handle = net[0].register_forward_hook(lambda m, i, o: seen.setdefault("conv", o))
    net(torch.tensor([[[[1.0]]]]))
    handle.remove()
    assert seen["conv"].item() == 0.0  # the -1 the conv produced was overwritten by the ReLU


def test_selection_by_name_module_and_type():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Sequential(nn.Conv2d(4, 2, 1), nn.ReLU()))
    x = torch.randn(2, 3, 6, 6)
    with capture_feature_maps(net, types=nn.Conv2d) as maps:
        net(x)
    assert list(maps) == ["0", "2.0"]
    with capture_feature_maps(net, ["2", net[1]]) as maps:
        net(x)
    assert list(maps) == ["1", "2"]  # execution order, not the order asked for
    assert maps["2"].shape == (2, 2, 4, 4)
    assert torch.equal(maps["2"], net(x))


def test_reused_module_gets_one_entry_per_call():
    relu = nn.ReLU()
    first, second = nn.Conv2d(1, 1, 1, bias=False), nn.Conv2d(1, 1, 1, bias=False)
    with torch.no_grad():
        first.weight.fill_(1.0)
        second.weight.fill_(3.0)
    net = nn.Sequential(first, relu, second, relu)
    with capture_feature_maps(net, types=nn.ReLU) as maps:
        net(torch.ones(1, 1, 2, 2))
    assert list(maps) == ["1", "1#2"]  # the shared ReLU is registered once, under its first name
    assert torch.equal(maps["1"], torch.ones(1, 1, 2, 2))
    assert torch.equal(maps["1#2"], torch.full((1, 1, 2, 2), 3.0))


def test_hooks_removed_even_on_error():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(RuntimeError):
        with capture_feature_maps(net):
            assert _hook_count(net) == 2
            net(torch.randn(1, 5, 6, 6))  # wrong channel count: the conv raises
    assert _hook_count(net) == 0


def test_bad_layers_give_clear_errors():
    net = nn.Sequential(nn.Conv2d(3, 4, 3))
    with pytest.raises(ValueError, match="no layer named 'conv9'"):
        with capture_feature_maps(net, "conv9"):
            pass
    with pytest.raises(ValueError, match="not a module of this model"):
        with capture_feature_maps(net, nn.ReLU()):
            pass
    with pytest.raises(TypeError, match="names or modules"):
        with capture_feature_maps(net, [3]):
            pass
    with pytest.raises(TypeError, match="torch.nn.Module"):
        with capture_feature_maps("not a model"):
            pass


def test_feature_maps_does_not_change_model_and_no_hook_growth():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU()).train()
    before = [p.detach().clone() for p in net.parameters()]
    x = torch.rand(2, 1, 5, 5)
    for _ in range(200):
        maps = feature_maps(net, x)
    assert net.training and _hook_count(net) == 0
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert set(maps) == {"0", "1", "2"} and maps["2"].shape == (2, 2, 3, 3)


def test_tuple_outputs_are_copied():
    class Split(nn.Module):
        def forward(self, x):
            return x, x * 2

    net = nn.Sequential(Split())
    with capture_feature_maps(net) as maps:
        net(torch.ones(1, 1, 2, 2))
    first, second = maps[""] if "" in maps else maps["0"]
    assert torch.equal(second, torch.full((1, 1, 2, 2), 2.0))
