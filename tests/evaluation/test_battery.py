"""The battery end to end on tiny untrained models (seconds), and its cache."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from xaisurvey.evaluation import battery as B
from xaisurvey.models.small import GapCNN, MnistCNN


class TinyImageNet(nn.Module):
    """A 3x32x32 classifier with named blocks (like MobileNet's stage1..stage3, avg, fc)."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.stage3 = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        return self.fc(self.avg(self.stage3(self.stage1(x))).flatten(1))


def tiny_data(config: B.BatteryConfig) -> B.BatteryData:
    g = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        mnist, memoriser, img, world = MnistCNN().eval(), MnistCNN().eval(), TinyImageNet().eval(), GapCNN(3).eval()
    x_img = torch.rand(config.n_faithfulness, 3, 32, 32, generator=g)
    with torch.no_grad():
        y_img = img(x_img).argmax(1)
    masks = torch.zeros(config.n_localisation, 64, 64, dtype=torch.bool)
    masks[:, 10:20, 30:40] = True
    return B.BatteryData(
        mnist=mnist, memoriser=memoriser, mnist_layer="features.conv2",
        mnist_x=torch.rand(config.n_small, 1, 28, 28, generator=g), mnist_y=torch.arange(config.n_small) % 10,
        imagenet=img, imagenet_layer="stage3", imagenet_x=x_img, imagenet_y=y_img, imagenet_other=(y_img + 1) % 5,
        world=world, world_layer="features.block4", world_x=torch.rand(config.n_localisation, 3, 64, 64, generator=g),
        world_y=torch.arange(config.n_localisation) % 3, world_masks=masks, forward_seconds=1e-3,
        spec={"tiny": 1}, info={})


CONFIG = B.BatteryConfig(n_small=4, n_faithfulness=6, n_localisation=4, deletion_steps=4, road_fractions=(0.5,),
                         smooth_samples=2, fragility_tries=1, fragility_k=20)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XAISURVEY_CACHE", str(tmp_path))
    return tmp_path


def test_battery_end_to_end_and_cache(cache):
    data = tiny_data(CONFIG)
    battery = B.run_battery(["saliency", "grad_cam", "cam"], config=CONFIG, data=data)
    assert battery.methods == ["saliency", "grad_cam", "cam"]
    assert battery.baselines == ["random", "centre", "sobel"]
    for name in battery.methods + battery.baselines:
        result = battery.results[name]
        for metric, (key, _, _) in B.METRICS.items():
            if name == "cam" and key in ("mprt_mnist_final", "smooth_mprt", "data_randomisation", "invariance"):
                continue  # CAM needs global average pooling: the MNIST CNN has none
            mean, low, high = battery.interval(name, metric)
            assert np.isfinite(mean) and low <= mean <= high, (name, metric)
    # CAM on the MNIST CNN (no GAP) is recorded as an error, not a crash
    assert "mprt_mnist" in battery.results["cam"].errors
    assert battery.cell("cam", "randomisation (MNIST)") == "n/a"
    # the baselines ignore the model: identical maps after randomisation and on the memoriser
    for name in ("centre", "sobel", "random"):
        assert battery.interval(name, "randomisation")[0] == pytest.approx(1.0)
        assert battery.interval(name, "data randomisation")[0] == pytest.approx(1.0)
        assert battery.interval(name, "invariance")[0] == pytest.approx(0.0, abs=1e-6)
    # the centre map puts no mass outside... it scores its known pointing result: the peak is at (31.5, 31.5)
    assert battery.interval("centre", "pointing game")[0] == 0.0
    # Grad-CAM's gradients are invariant to an absorbed shift (the function is unchanged)
    assert battery.interval("grad_cam", "invariance")[0] < 1e-4
    # Binder et al.'s parameter noise passes the randomisation test
    assert abs(float(battery.binder["mprt_mnist_final"].mean())) < 0.2
    assert sorted(battery.ranking("deletion")) == sorted(battery.methods)

    # second run: everything from the cache, same values
    again = B.run_battery(["saliency", "grad_cam", "cam"], config=CONFIG, data=data)
    assert all(r.from_cache for r in again.results.values())
    assert torch.equal(again.results["saliency"].values["deletion"], battery.results["saliency"].values["deletion"])
    # another configuration is another key
    other = B.run_battery(["saliency"], config=B.BatteryConfig(**{**CONFIG.__dict__, "seed": 1}), data=data,
                          baselines=False)
    assert not other.results["saliency"].from_cache


def test_a_changed_method_is_recomputed_alone(cache, monkeypatch):
    data = tiny_data(CONFIG)
    B.run_battery(["saliency", "grad_cam"], config=CONFIG, data=data, baselines=False)
    from xaisurvey.attribution import registry
    spec = registry.get("saliency")
    monkeypatch.setitem(registry.METHODS, "saliency",
                        type(spec)(**{**spec.__dict__, "evaluation": {"absolute": False}}))
    again = B.run_battery(["saliency", "grad_cam"], config=CONFIG, data=data, baselines=False)
    assert not again.results["saliency"].from_cache
    assert again.results["grad_cam"].from_cache


def test_shared_faithfulness_equals_the_public_curves():
    """The battery scores each map in one pass with the curves' ends shared by every method:
    the same numbers as deletion_curve, insertion_curve and road_curves one by one."""
    from xaisurvey.evaluation import faithfulness as F
    from xaisurvey.evaluation import road as R

    data = tiny_data(CONFIG)
    g = torch.Generator().manual_seed(1)
    maps = torch.rand(CONFIG.n_faithfulness, 32, 32, generator=g)
    maps[0] = 0.0  # a flat map: every pixel ties, row-major order
    got = B._faithfulness_scores(data, CONFIG, maps)
    for i, (image, target, m) in enumerate(zip(data.imagenet_x, data.imagenet_y.tolist(), maps)):
        d = F.deletion_curve(data.imagenet, image, target, m, substrate="zeros",
                             steps=CONFIG.deletion_steps)
        c = F.insertion_curve(data.imagenet, image, target, m, substrate="blur",
                              steps=CONFIG.deletion_steps)
        r = R.road_curves(data.imagenet, image, target, m, fractions=CONFIG.road_fractions,
                          seed=CONFIG.seed + i)
        assert torch.allclose(got["deletion_curves"][i], d.scores, atol=1e-6)
        assert torch.allclose(got["insertion_curves"][i], c.scores, atol=1e-6)
        assert float(got["deletion"][i]) == pytest.approx(d.area, abs=1e-6)
        assert float(got["insertion"][i]) == pytest.approx(c.area, abs=1e-6)
        assert torch.allclose(got["road_morf_curves"][i], r.morf, atol=1e-6)
        assert torch.allclose(got["road_lerf_curves"][i], r.lerf, atol=1e-6)
    # the deletion-only form (the constructed example) gives the same deletion areas
    alone = B._faithfulness_scores(data, CONFIG, maps, road=False)
    assert torch.allclose(alone["deletion"], got["deletion"], atol=1e-12)


def test_randomisation_stages_match_the_sanity_module():
    """The first stage of both modes is computed once; every stage's map is the one the
    sanity module's randomised copies give."""
    from xaisurvey.evaluation import sanity as S

    data = tiny_data(CONFIG)
    from xaisurvey.attribution import registry

    entry = B._method_entry(registry.get("saliency"))
    ex = entry.make("mnist", data.mnist_layer, data.shared)
    counted = []

    def counting(model, x, target):
        counted.append(1)
        return ex(model, x, target)

    layers = S.parameter_layers(data.mnist)
    out = B._mprt(counting, data.mnist, data.mnist_x, data.mnist_y, layers, seed=0)
    assert len(counted) == 2 * len(layers)  # 1 trained + 2 * layers - 1 shared first stage
    for mode, build in (("cascading", S.cascading_randomization),
                        ("independent", S.independent_randomization)):
        for j, (name, model) in enumerate(build(data.mnist, layers, seed=0), start=1):
            assert out[mode]["stages"][j] == name
            direct = B._maps(ex, model, data.mnist_x, data.mnist_y)
            expect = S.map_similarity(out["trained"], direct)["spearman_abs"]
            assert torch.allclose(out[mode]["spearman_abs"][j], expect, atol=1e-6)


def test_superpixels_once_per_image_give_the_same_maps():
    data = tiny_data(CONFIG)
    from xaisurvey.attribution import registry

    options = {"samples": 8, "segments": "slic", "n_segments": 4}
    spec = registry.get("lime")
    spec = type(spec)(**{**spec.__dict__, "evaluation": options})
    ex = B._method_entry(spec).make("imagenet", data.imagenet_layer, data.shared)
    x, y = data.imagenet_x[:3], data.imagenet_y[:3]
    first = ex(data.imagenet, x, y)
    assert len(data.shared["superpixels"]) == 3
    again = ex(data.imagenet, x, y)  # from the memo
    assert len(data.shared["superpixels"]) == 3
    direct = registry.explain("lime", data.imagenet, x, y, **options)
    assert torch.equal(first, direct) and torch.equal(again, direct)


def test_evaluation_layers_replace_the_default_layer(cache, monkeypatch):
    data = tiny_data(CONFIG)
    from xaisurvey.attribution import registry

    spec = registry.get("grad_cam")
    moved = type(spec)(**{**spec.__dict__, "evaluation_layers": {"imagenet": "stage1"}})
    ex = B._method_entry(moved).make("imagenet", data.imagenet_layer, data.shared)
    x, y = data.imagenet_x[:2], data.imagenet_y[:2]
    assert torch.allclose(ex(data.imagenet, x, y),
                          registry.explain("grad_cam", data.imagenet, x, y, layer="stage1"))
    assert B._key(B._method_entry(moved), CONFIG, data) != B._key(B._method_entry(spec), CONFIG,
                                                                   data)


def test_claimed_entries_are_left_to_the_process_that_claimed_them(cache, tmp_path):
    data = tiny_data(CONFIG)
    claims = tmp_path / "claims"
    claims.mkdir()
    from xaisurvey.attribution import registry

    entry = B._method_entry(registry.get("grad_cam"))
    (claims / f"grad_cam-{B._key(entry, CONFIG, data)}.pt").touch()  # another process has it
    mine = B.run_battery(["saliency", "grad_cam"], config=CONFIG, data=data, baselines=False,
                         claims=claims)
    assert mine.methods == ["saliency"]
    whole = B.run_battery(["saliency", "grad_cam"], config=CONFIG, data=data, baselines=False)
    assert whole.results["saliency"].from_cache and not whole.results["grad_cam"].from_cache


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_two_runs_give_the_same_numbers(cache):
    """Every value of the battery (except the timings) is the same in a second cold run, for
    the perturbation methods (seeded samples, superpixels shared) and a gradient method."""
    names = ["rise", "lime", "kernel_shap", "score_cam", "ablation_cam", "saliency"]
    from xaisurvey.attribution import registry

    options = {"rise": {"samples": 8, "grid": 2}, "lime": {"samples": 8},
               "kernel_shap": {"samples": 8}}
    runs = []
    for _ in range(2):
        data = tiny_data(CONFIG)  # fresh: nothing shared between the two runs
        with pytest.MonkeyPatch.context() as patch:
            for name, extra in options.items():
                spec = registry.get(name)
                patch.setitem(registry.METHODS, name, type(spec)(**{
                    **spec.__dict__, "evaluation": {**spec.evaluation, **extra},
                    "evaluation_layers": {}}))
            for name in ("score_cam", "ablation_cam"):
                spec = registry.get(name)
                patch.setitem(registry.METHODS, name, type(spec)(**{
                    **spec.__dict__, "evaluation_layers": {"imagenet": "stage1"}}))
            runs.append(B.run_battery(names, config=CONFIG, data=data, use_cache=False))
    for name in names + runs[0].baselines:
        a, b = runs[0].results[name].values, runs[1].results[name].values
        timing = {"seconds", "cpu", "total_seconds", "cpu_seconds", "cost", "cost_seconds",
                  "forward_seconds"}
        assert not a["errors"], (name, a["errors"])
        for key in a:
            if key not in timing:
                assert _same(a[key], b[key]), (name, key)
