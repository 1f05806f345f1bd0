"""Tests of VisualBackProp: hand-computed micro-models, the variants, errors and model safety."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xaisurvey.attribution import visual_backprop
from xaisurvey.attribution.visual_backprop import _Op, _unpool, visual_backprop_trace


def _set(conv: nn.Conv2d, weight) -> nn.Conv2d:
    with torch.no_grad():
        conv.weight.copy_(torch.as_tensor(weight, dtype=torch.float32).view_as(conv.weight))
    return conv


def _strided_model(inplace: bool = False) -> nn.Sequential:
    """conv 1x1 (weights +1, -1) -> ReLU -> conv 3x3 stride 2 pad 1 (all ones) -> ReLU -> head."""
    return nn.Sequential(
        _set(nn.Conv2d(1, 2, 1, bias=False), [1.0, -1.0]),
        nn.ReLU(inplace=inplace),
        _set(nn.Conv2d(2, 1, 3, stride=2, padding=1, bias=False), torch.ones(1, 2, 3, 3)),
        nn.ReLU(inplace=inplace),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(1, 2),
    )


X = torch.tensor([[1.0, -2.0, 0.0, 1.0], [0.0, 3.0, -1.0, 2.0], [2.0, 0.0, 1.0, -1.0], [-1.0, 1.0, 0.0, 2.0]]).view(1, 1, 4, 4)
ABS_X = X.abs()[0, 0]
# Level 1: the two channels are relu(x) and relu(-x), so their average is |x| / 2.
A1 = ABS_X / 2
# Level 2 (2x2): each cell sums |x| over its 3x3 window (stride 2, padding 1):
#   (0,0): rows 0-1, cols 0-1: 1+2+0+3 = 6          (0,1): rows 0-1, cols 1-3: 2+0+1 + 3+1+2 = 9
#   (1,0): rows 1-3, cols 0-1: 0+3+2+0+1+1 = 7      (1,1): rows 1-3, cols 1-3: 3+1+2 + 0+1+1 + 1+0+2 = 11
A2 = torch.tensor([[6.0, 9.0], [7.0, 11.0]])
# All-ones 3x3 transposed conv, stride 2, padding 1, output padding 1 (2x2 -> 4x4): output row r
# is covered by input rows i with 2i-1 <= r <= 2i+1: r=0 {0}, r=1 {0,1}, r=2 {1}, r=3 {1}; the
# same for columns. So U[r, c] sums A2 over those rows and columns, e.g. U[1,1] = 6+9+7+11 = 33.
U = torch.tensor([[6.0, 15.0, 9.0, 9.0], [13.0, 33.0, 20.0, 20.0], [7.0, 18.0, 11.0, 11.0], [7.0, 18.0, 11.0, 11.0]])
# Level-1 mask = A1 * U, e.g. [0,1]: 2/2 * 15 = 15; [1,1]: 3/2 * 33 = 49.5. The 1x1 conv's
# transpose (kernel 1, stride 1) is the identity, so this is the un-normalised result.
RESULT = torch.tensor([[3.0, 15.0, 0.0, 4.5], [0.0, 49.5, 10.0, 20.0], [7.0, 0.0, 5.5, 5.5], [3.5, 9.0, 0.0, 11.0]])


def test_hand_computed_deconv_paper_variant():
    trace = visual_backprop_trace(_strided_model(), X)
    assert trace.layers == ["1", "3"] and trace.steps == [["0"], ["2"]]
    assert torch.equal(trace.averages[0][0], A1)
    assert torch.equal(trace.averages[1][0], A2)
    assert torch.equal(trace.masks[1][0], A2)
    assert torch.equal(trace.masks[0][0], RESULT)
    assert torch.equal(trace.result[0], RESULT)
    # normalised: the minimum is 0, so the map is RESULT / 49.5
    assert torch.allclose(visual_backprop(_strided_model(), X)[0], RESULT / 49.5, atol=1e-7)


def test_hand_computed_overlap_normalised_variant():
    # Overlap counts: rows covered by (1, 2, 1, 1) kernel copies, columns the same, so the
    # count at (r, c) is row_count[r] * col_count[c]; dividing U by it gives the average.
    counts = torch.tensor([1.0, 2.0, 1.0, 1.0])
    u_norm = torch.tensor([[6.0, 7.5, 9.0, 9.0], [6.5, 8.25, 10.0, 10.0], [7.0, 9.0, 11.0, 11.0], [7.0, 9.0, 11.0, 11.0]])
    assert torch.equal(U / counts[:, None] / counts[None, :], u_norm)
    trace = visual_backprop_trace(_strided_model(), X, upsample="deconv_normalized")
    assert torch.allclose(trace.result[0], A1 * u_norm, atol=1e-6)


def test_hand_computed_bilinear_variant():
    # align_corners=False, 2 -> 4: sample points -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped
    # to 1), i.e. weights (1, 0), (3/4, 1/4), (1/4, 3/4), (0, 1). Rows [6, 9] -> [6, 6.75, 8.25, 9],
    # [7, 11] -> [7, 8, 10, 11]; then the same across rows, e.g. row 1 = 3/4 [6, 6.75, ...] + 1/4 [7, 8, ...].
    up = torch.tensor(
        [[6.0, 6.75, 8.25, 9.0], [6.25, 7.0625, 8.6875, 9.5], [6.75, 7.6875, 9.5625, 10.5], [7.0, 8.0, 10.0, 11.0]]
    )
    trace = visual_backprop_trace(_strided_model(), X, upsample="bilinear")
    assert torch.allclose(trace.result[0], A1 * up, atol=1e-6)


def _maxpool_model(weights1=(1.0,), weights2=(2.0,)) -> nn.Sequential:
    c = len(weights1)
    return nn.Sequential(
        _set(nn.Conv2d(1, c, 1, bias=False), list(weights1)),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        _set(nn.Conv2d(c, 1, 1, bias=False), list(weights2)),
        nn.ReLU(),
        nn.Flatten(),
    )


def test_hand_computed_maxpool_unpooling():
    x = torch.tensor([[1.0, 4.0, 0.0, -1.0], [2.0, 3.0, 5.0, 2.0], [-3.0, 0.0, 1.0, 1.0], [6.0, 2.0, 0.0, 7.0]]).view(1, 1, 4, 4)
    # relu(x); the 2x2 maxima are 4 at (0,1), 5 at (1,2), 6 at (3,0), 7 at (3,3); level 2 = 2 * max
    # = [[8, 10], [12, 14]]. Unpooling puts each value back at its argmax, zeros elsewhere, and
    # the product with relu(x) gives 4*8 = 32, 5*10 = 50, 6*12 = 72, 7*14 = 98 there.
    expected = torch.zeros(4, 4)
    expected[0, 1], expected[1, 2], expected[3, 0], expected[3, 3] = 32.0, 50.0, 72.0, 98.0
    trace = visual_backprop_trace(_maxpool_model(), x)
    assert trace.steps == [["0"], ["2", "3"]]
    assert torch.equal(trace.averages[1][0], torch.tensor([[8.0, 10.0], [12.0, 14.0]]))
    assert torch.equal(trace.result[0], expected)
    # maxpool="upsample": a 2x2 all-ones deconvolution copies each value into its whole block
    block = torch.tensor([[8.0, 8, 10, 10], [8, 8, 10, 10], [12, 12, 14, 14], [12, 12, 14, 14]])
    trace = visual_backprop_trace(_maxpool_model(), x, maxpool="upsample")
    assert torch.equal(trace.result[0], F.relu(x[0, 0]) * block)


def test_hand_computed_unpooling_averages_channels():
    x = torch.tensor([[1.0, -2.0], [3.0, -4.0]]).view(1, 1, 2, 2)
    # channels relu(x) = [[1,0],[3,0]] and relu(-x) = [[0,2],[0,4]]: average [[.5,1],[1.5,2]].
    # Their maxima: 3 at (1,0) and 4 at (1,1); level 2 = 3 + 4 = 7. Channel 0 sends 7 to (1,0),
    # channel 1 to (1,1); averaged over the 2 channels: 3.5 at each. Times the level-1 average:
    # (1,0): 1.5 * 3.5 = 5.25, (1,1): 2 * 3.5 = 7.
    trace = visual_backprop_trace(_maxpool_model((1.0, -1.0), (1.0, 1.0)), x)
    assert torch.equal(trace.result[0], torch.tensor([[0.0, 0.0], [5.25, 7.0]]))


def test_unpool_equals_maxunpool2d_for_disjoint_windows():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 5, 8, 6, generator=g)
    pooled, indices = F.max_pool2d(features, 2, 2, return_indices=True)
    mask = torch.rand(2, 1, 4, 3, generator=g)
    op = _Op("pool", nn.MaxPool2d(2), (8, 6), (4, 3), indices)
    reference = nn.MaxUnpool2d(2, 2)(mask.expand(2, 5, 4, 3), indices, output_size=(8, 6)).mean(dim=1, keepdim=True)
    assert torch.allclose(_unpool(mask, op), reference, atol=1e-7)


def test_inplace_relu_gives_the_same_map():
    assert torch.equal(visual_backprop(_strided_model(True), X), visual_backprop(_strided_model(False), X))


def test_odd_sizes_and_resnet_shapes():
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=3).eval()
    x = torch.rand(2, 3, 67, 45)
    maps = visual_backprop(net, x)
    assert maps.shape == (2, 67, 45) and not torch.isnan(maps).any()
    assert float(maps.amin()) == 0.0 and float(maps.amax()) == 1.0
    assert torch.equal(maps, visual_backprop(net, x))  # deterministic
    trace = visual_backprop_trace(net, x)
    assert trace.steps[1] == ["maxpool", "layer1.0.conv1"]  # the shortcut convs are not on the path
    assert all("downsample" not in name for step in trace.steps for name in step)


def test_target_is_ignored_but_checked():
    net = _strided_model()
    x = torch.cat([X, -X])
    base = visual_backprop(net, x)
    assert torch.equal(base, visual_backprop(net, x, target=0))
    assert torch.equal(base, visual_backprop(net, x, target=[1, 0]))
    with pytest.raises(ValueError, match="3 targets for 2 images"):
        visual_backprop(net, x, target=[0, 1, 1])


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="no nn.ReLU"):
        visual_backprop(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh()), torch.rand(1, 1, 5, 5))

    class FunctionalRelu(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return F.relu(self.conv(x))

    with pytest.raises(ValueError, match="F.relu"):
        visual_backprop(FunctionalRelu(), torch.rand(1, 1, 5, 5))
    upsampling = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.Upsample(scale_factor=2), nn.Conv2d(2, 2, 1), nn.ReLU())
    with pytest.raises(ValueError, match="no transposed form"):
        visual_backprop(upsampling, torch.rand(1, 1, 4, 4))
    with pytest.raises(ValueError, match="upsample must be"):
        visual_backprop(_strided_model(), X, upsample="nearest")
    with pytest.raises(ValueError, match="maxpool must be"):
        visual_backprop(_strided_model(), X, maxpool="max")
    with pytest.raises(TypeError, match="floating-point"):
        visual_backprop(_strided_model(), X.long())
    with pytest.raises(ValueError, match="4 dimensions"):
        visual_backprop(_strided_model(), X[0])
    with pytest.raises(ValueError, match="empty batch"):
        visual_backprop(_strided_model(), X[:0])
    with pytest.raises(ValueError, match="channels"):
        visual_backprop(_strided_model(), torch.rand(1, 3, 4, 4))


def test_flat_input_gives_zeros_not_nan():
    maps = visual_backprop(_strided_model(), torch.zeros(1, 1, 4, 4))
    assert torch.equal(maps, torch.zeros(1, 4, 4))


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_model_left_untouched_and_no_hook_growth():
    net = nn.Sequential(nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.BatchNorm2d(3), nn.ReLU(inplace=True), nn.Flatten()).train()
    net[0].weight.requires_grad_(False)
    net[0].bias.grad = torch.ones(3)
    grad_obj = net[0].bias.grad
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(2, 1, 7, 7, requires_grad=True)
    x_before = x.detach().clone()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread avoids thread-pool contention on a busy machine
    try:
        for _ in range(1000):
            visual_backprop(net, x)
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        maps = visual_backprop(net, x)
    assert maps.shape == (2, 7, 7)
    assert net.training and all(m.training for m in net.modules())
    assert net[0].weight.requires_grad is False and net[0].bias.requires_grad is True
    assert net[0].bias.grad is grad_obj and net[2].inplace
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())  # BN stats too
    assert torch.equal(x.detach(), x_before) and x.grad is None
    assert _hook_count(net) == 0


def test_hooks_removed_when_forward_raises():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.relu = nn.Conv2d(1, 1, 1), nn.ReLU()

        def forward(self, x):
            self.relu(self.conv(x))
            raise RuntimeError("boom")

    net = Broken()
    with pytest.raises(RuntimeError, match="boom"):
        visual_backprop(net, torch.rand(1, 1, 3, 3))
    assert _hook_count(net) == 0 and net.training


def test_follows_dtype():
    net = _strided_model().double()
    maps = visual_backprop(net, X)  # float32 input is moved to the model's float64
    assert maps.dtype == torch.float64
    assert torch.allclose(maps[0], (RESULT / 49.5).double())


def test_functional_pooling_is_reported():
    class FunctionalPool(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.relu1 = nn.Conv2d(1, 2, 3, padding=1), nn.ReLU()
            self.conv2, self.relu2 = nn.Conv2d(2, 2, 3, padding=1), nn.ReLU()

        def forward(self, x):
            return self.relu2(self.conv2(F.max_pool2d(self.relu1(self.conv1(x)), 2)))

    with pytest.raises(ValueError, match="invisible to hooks"):
        visual_backprop(FunctionalPool(), torch.rand(1, 1, 8, 8))


def test_pool_indices_come_from_the_models_own_pooling_call():
    """The argmax positions are read from the model's F.max_pool2d call, not recomputed; a max pool
    whose forward bypasses F.max_pool2d is reported, and maxpool="upsample" still works on it."""
    class DirectPool(nn.MaxPool2d):
        def forward(self, x):
            return torch.max_pool2d(x, self.kernel_size, self.stride)

    calls = []

    class CountingPool(nn.MaxPool2d):
        def forward(self, x):
            calls.append(1)
            return super().forward(x)

    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    model = _maxpool_model()
    counted = _maxpool_model()
    counted[2] = CountingPool(2, 2)
    assert torch.equal(visual_backprop_trace(counted, x).result, visual_backprop_trace(model, x).result)
    assert len(calls) == 1  # one pooling per forward pass
    direct = _maxpool_model()
    direct[2] = DirectPool(2, 2)
    with pytest.raises(ValueError, match="did not call F.max_pool2d"):
        visual_backprop(direct, x)
    assert visual_backprop(direct, x, maxpool="upsample").shape == (2, 4, 4)


@pytest.mark.parametrize(
    "kernel, stride, padding, output_padding, dilation",
    [((3, 3), (2, 2), (1, 1), (1, 1), (1, 1)), ((7, 7), (2, 2), (3, 3), (1, 1), (1, 1)),
     ((1, 1), (1, 1), (0, 0), (0, 0), (1, 1)), ((5, 3), (3, 2), (2, 0), (2, 1), (1, 1)),
     ((3, 3), (1, 1), (2, 2), (0, 0), (2, 2)), ((2, 4), (2, 1), (0, 1), (0, 0), (1, 2))],
)
def test_separable_transpose_equals_the_full_all_ones_kernel(kernel, stride, padding, output_padding, dilation):
    from xaisurvey.attribution.visual_backprop import _separable_ones_transpose

    mask = torch.rand(3, 1, 6, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    full = F.conv_transpose2d(mask, torch.ones(1, 1, *kernel, dtype=torch.float64), stride=stride, padding=padding,
                              output_padding=output_padding, dilation=dilation)
    separable = _separable_ones_transpose(mask, kernel, stride, padding, output_padding, dilation)
    assert separable.shape == full.shape
    assert torch.allclose(separable, full, rtol=0, atol=1e-12)


def test_pooling_mode_is_left_when_the_forward_raises():
    class Fails(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.relu, self.pool = nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)

        def forward(self, x):
            self.pool(self.relu(self.conv(x)))
            raise RuntimeError("model failure")

    from torch.overrides import _get_current_function_mode_stack

    before = len(_get_current_function_mode_stack())
    with pytest.raises(RuntimeError, match="model failure"):
        visual_backprop(Fails(), torch.rand(1, 1, 8, 8))
    assert len(_get_current_function_mode_stack()) == before
    # a pool called twice per forward pass (a reused module) gets its indices each time
    class Reused(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2, self.relu, self.pool = nn.Conv2d(1, 2, 1), nn.Conv2d(2, 2, 1), nn.ReLU(), nn.MaxPool2d(2)

        def forward(self, x):
            return self.pool(self.relu(self.conv2(self.pool(self.relu(self.conv1(x))))))

    assert visual_backprop(Reused(), torch.rand(2, 1, 8, 8)).shape == (2, 8, 8)
    assert len(_get_current_function_mode_stack()) == before


# --- activations, branches and range (issue 12) ---------------------------------------------

def _two_level(act1: nn.Module, act2: nn.Module) -> nn.Sequential:
    g = torch.Generator().manual_seed(5)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), act1, nn.Conv2d(3, 2, 3, stride=2, padding=1), act2)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return net.eval()


def _by_hand(net: nn.Sequential, x: torch.Tensor, positive) -> torch.Tensor:
    """The formula written out for conv -> act -> conv (3x3, stride 2, pad 1) -> act."""
    with torch.no_grad():
        a1 = net[1](net[0](x))
        a2 = net[3](net[2](a1))
    m2 = positive(a2).mean(dim=1, keepdim=True)
    up = F.conv_transpose2d(m2, torch.ones(1, 1, 3, 3), stride=2, padding=1, output_padding=1)
    m1 = positive(a1).mean(dim=1, keepdim=True) * up
    return F.conv_transpose2d(m1, torch.ones(1, 1, 3, 3), padding=1)[:, 0]


def test_relu6_maps_are_used_as_they_are():
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 8
    net = _two_level(nn.ReLU6(), nn.ReLU6(inplace=True))
    with torch.no_grad():
        assert bool((net[1](net[0](x)) == 6).any())  # the clipping at 6 is exercised
    trace = visual_backprop_trace(net, x)
    assert trace.layers == ["1", "3"]
    assert torch.allclose(trace.result, _by_hand(net, x, lambda a: a), atol=1e-5)
    # ReLU6 is Hardtanh(0, 6): the same module type with min_val 0 is a level too
    same = _two_level(nn.Hardtanh(0.0, 6.0), nn.Hardtanh(0.0, 6.0))
    assert torch.allclose(visual_backprop_trace(same, x).result, trace.result, atol=1e-5)


def test_leaky_relu_levels_are_their_positive_part():
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1)) - 0.5
    net = _two_level(nn.LeakyReLU(0.2), nn.LeakyReLU(0.2, inplace=True))
    trace = visual_backprop_trace(net, x)
    assert torch.allclose(trace.result, _by_hand(net, x, lambda a: a.clamp(min=0)), atol=1e-5)
    # not the map of the raw leaky outputs (which have negative parts)
    assert not torch.allclose(trace.result, _by_hand(net, x, lambda a: a), atol=1e-3)
    # slope 0 is a ReLU
    relu, leaky0 = _two_level(nn.ReLU(), nn.ReLU()), _two_level(nn.LeakyReLU(0.0), nn.LeakyReLU(0.0))
    assert torch.equal(visual_backprop(relu, x), visual_backprop(leaky0, x))


@pytest.mark.parametrize("activation", [nn.Hardswish, nn.SiLU, nn.GELU, nn.ELU, nn.Sigmoid])
def test_other_activations_raise_naming_them(activation):
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1), activation())
    with pytest.raises(ValueError, match=rf"does not average \({activation.__name__} '3'\)"):
        visual_backprop(net, torch.rand(1, 1, 6, 6))
    only = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), activation())
    with pytest.raises(ValueError, match=rf"no nn.ReLU.*{activation.__name__} '1'"):
        visual_backprop(only, torch.rand(1, 1, 6, 6))


class _Fire(nn.Module):
    """SqueezeNet's Fire module: squeeze, then two parallel expand branches, concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.squeeze, self.squeeze_act = nn.Conv2d(1, 2, 1), nn.ReLU()
        self.e1, self.e1_act = nn.Conv2d(2, 2, 1), nn.ReLU()
        self.e3, self.e3_act = nn.Conv2d(2, 2, 3, padding=1), nn.ReLU()

    def forward(self, x):
        s = self.squeeze_act(self.squeeze(x))
        return torch.cat([self.e1_act(self.e1(s)), self.e3_act(self.e3(s))], 1)


def test_parallel_branches_raise_naming_the_layers():
    with pytest.raises(ValueError, match="layer 'e3' reads the output of 'squeeze_act', a parallel branch"):
        visual_backprop(_Fire(), torch.rand(1, 1, 6, 6))


def test_two_paths_of_equal_length_raise():
    class TwoPaths(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.relu = nn.Conv2d(1, 2, 1), nn.ReLU()
            self.a, self.b, self.out = nn.Conv2d(2, 2, 3, stride=2, padding=1), nn.Conv2d(2, 2, 1, stride=2), nn.ReLU()

        def forward(self, x):
            y = self.relu(self.conv(x)) + 0  # a functional op: neither branch reads the ReLU itself
            return self.out(self.a(y) + self.b(y))

    with pytest.raises(ValueError, match=r"2 different paths through the layers \['a', 'b'\]"):
        visual_backprop(TwoPaths(), torch.rand(1, 1, 6, 6))


def test_regnet_follows_the_main_path_and_skips_the_gates():
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.regnet_y_400mf().eval()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    trace = visual_backprop_trace(net, x)
    steps = [name for step in trace.steps for name in step]
    assert not any(".proj" in name or ".se." in name for name in steps)  # shortcuts and gates
    assert trace.skipped and all(name.endswith("se.activation") for name in trace.skipped)
    assert all(len(step) >= 1 for step in trace.steps)
    maps = visual_backprop(net, x)
    assert torch.isfinite(maps).all() and bool((maps.amax(dim=(1, 2)) == 1).all())


def test_deep_products_stay_in_range():
    # 40 levels, each averaging to about 0.05: the product (1e-52) is below float32's range.
    layers = []
    for _ in range(40):
        conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        nn.init.constant_(conv.weight, 1 / 9)
        layers += [conv, nn.ReLU()]
    net = nn.Sequential(*layers)
    x = 0.05 + 0.01 * torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    trace = visual_backprop_trace(net, x)
    assert bool((trace.log_scale < -60).all())
    maps = visual_backprop(net, x)
    assert bool((maps.amax(dim=(1, 2)) == 1).all())  # not an all-zero map
    # float64 (rescaled too, with its own factors) gives the same normalised map
    reference = visual_backprop(net.double(), x.double())
    assert torch.allclose(maps.double(), reference, atol=1e-5)
    with pytest.raises(ValueError, match="outside the torch.float32 range"):
        visual_backprop(net.float(), x, normalize=False)
    # float64 can hold the product (about 1e-58): the rescaling is undone
    trace64 = visual_backprop_trace(net.double(), x.double())
    raw = visual_backprop(net.double(), x.double(), normalize=False)
    assert bool((raw.amax(dim=(1, 2)) < 1e-50).all())
    assert torch.allclose(raw, trace64.result * trace64.log_scale.exp().view(-1, 1, 1), rtol=1e-12, atol=0)


def test_a_size_change_and_back_without_a_transposed_form_raises():
    # Two maps of equal size with an upsampling and a strided convolution between them: the
    # path exists but cannot be transposed, so it must not be taken as "no op in between".
    net = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2),
                        nn.Conv2d(2, 2, 3, stride=2, padding=1), nn.ReLU())
    with pytest.raises(ValueError, match=r"layer '2' changes the map size from \(4, 4\) to \(8, 8\) and has no transposed form"):
        visual_backprop(net, torch.rand(1, 1, 8, 8))
    # The same maps with a size-keeping convolution between them are followed as before.
    plain = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1), nn.ReLU())
    assert torch.isfinite(visual_backprop(plain, torch.rand(1, 1, 8, 8))).all()
