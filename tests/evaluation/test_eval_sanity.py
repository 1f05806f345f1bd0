"""Parameter randomisation: copies only, the right layers, and similarities that are known."""
import pytest
import torch
from torch import nn

from xaisurvey.evaluation import (
    cascading_randomization,
    independent_randomization,
    map_similarity,
    parameter_layers,
    randomize_layers,
    sanity_check,
    shuffled_labels,
    spearman,
)


def small_net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 8 * 8, 5),
    )


def same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def module_same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_parameter_layers_in_order():
    assert parameter_layers(small_net()) == ["0", "1", "3", "6"]


def test_randomize_copies_and_leaves_the_original_alone():
    net = small_net().train()
    snapshot = {k: v.clone() for k, v in net.state_dict().items()}
    copy = randomize_layers(net, ["6"], seed=1)
    assert all(torch.equal(snapshot[k], v) for k, v in net.state_dict().items())
    assert copy is not net and copy.training
    assert module_same(copy[0], net[0]) and module_same(copy[3], net[3])
    assert not torch.equal(copy[6].weight, net[6].weight)


def test_cascading_randomises_from_the_top_cumulatively():
    net = small_net()
    layers = ["0", "3", "6"]
    stages = cascading_randomization(net, layers, seed=0)
    assert [name for name, _ in stages] == ["6", "3", "0"]
    changed = [[not module_same(m[int(layer)], net[int(layer)]) for layer in layers] for _, m in stages]
    assert changed == [[False, False, True], [False, True, True], [True, True, True]]


def test_independent_randomises_one_layer_and_shares_the_seed_with_cascading():
    net = small_net()
    layers = ["0", "3", "6"]
    independent = dict(independent_randomization(net, layers, seed=5))
    cascading = dict(cascading_randomization(net, layers, seed=5))
    changed = {name: [not module_same(m[int(l)], net[int(l)]) for l in layers] for name, m in independent.items()}
    assert changed == {"6": [False, False, True], "3": [False, True, False], "0": [True, False, False]}
    # layer "3" gets the same random weights in both modes
    assert torch.equal(independent["3"][3].weight, cascading["3"][3].weight)


def test_block_names_randomise_everything_inside():
    net = nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)), nn.Flatten())
    with torch.no_grad():
        net[0][1].running_mean.fill_(3.0)
    rnd = randomize_layers(net, ["0"])
    assert not torch.equal(rnd[0][0].weight, net[0][0].weight)
    assert rnd[0][1].running_mean.abs().sum() == 0  # statistics reset too


def input_echo(model, x, target):
    """A 'method' that ignores the model: what Adebayo et al. warn about (edge detectors)."""
    return x[:, 0] * 2.0


def input_gradient(model, x, target):
    x = x.clone().requires_grad_(True)
    model(x).gather(1, target[:, None]).sum().backward()
    return x.grad


def test_a_method_that_ignores_the_model_fails_the_check():
    net = small_net()
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    r = sanity_check(net, {"echo": input_echo}, x, torch.tensor([0, 1, 2]), layers=["0", "3", "6"])
    assert r.stages == ("trained", "6", "3", "0")
    for metric in ("spearman", "spearman_abs", "ssim"):
        assert torch.allclose(r.scores["echo"][metric], torch.ones(4, 3))


def test_gradient_of_a_linear_model_matches_an_independent_computation():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([0, 2])
    r = sanity_check(net, {"gradient": input_gradient}, x, target, layers=["1"], ssim_window=3)
    # the gradient of a linear model is its weight row, so the similarity is that of the rows
    randomised = randomize_layers(net, ["1"], seed=0)
    for i, t in enumerate(target.tolist()):
        expected = spearman(net[1].weight[t].view(4, 4), randomised[1].weight[t].view(4, 4))
        assert r.scores["gradient"]["spearman"][1, i].item() == pytest.approx(expected)
    assert torch.allclose(r.maps["gradient"][0, 0], net[1].weight[0].view(4, 4).detach())


def test_sanity_check_does_not_touch_the_model():
    net = small_net().train()
    net[6].weight.requires_grad_(False)
    snapshot = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(2, 1, 8, 8)
    sanity_check(net, {"echo": input_echo}, x, torch.tensor([0, 1]), layers=["0", "6"], mode="independent")
    assert net.training and not net[6].weight.requires_grad
    assert all(torch.equal(snapshot[k], v) for k, v in net.state_dict().items())


def test_map_similarity_known_values():
    a = torch.arange(16.0).view(1, 4, 4)
    s = map_similarity(a, -a, ssim_window=3)
    assert s["spearman"].item() == pytest.approx(-1.0)
    assert s["spearman_abs"].item() == pytest.approx(1.0)


def test_shuffled_labels():
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    s = shuffled_labels(y, seed=3)
    assert torch.equal(s, shuffled_labels(y, seed=3))
    assert sorted(s.tolist()) == sorted(y.tolist())
    with pytest.raises(ValueError, match="1-D"):
        shuffled_labels(y.view(2, 4))


def test_errors():
    net = small_net()
    x = torch.rand(2, 1, 8, 8)
    t = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="no layer named"):
        randomize_layers(net, ["nope"])
    with pytest.raises(ValueError, match="no parameters"):
        randomize_layers(net, ["2"])
    with pytest.raises(ValueError, match="mode"):
        sanity_check(net, {"echo": input_echo}, x, t, layers=["0"], mode="both")
    with pytest.raises(ValueError, match="returned shape"):
        sanity_check(net, {"bad": lambda m, x, t: x[0]}, x, t, layers=["0"])
    with pytest.raises(ValueError, match="at least one layer"):
        sanity_check(net, {"echo": input_echo}, x, t, layers=[])
