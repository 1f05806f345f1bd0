"""The evaluation battery: every registered attribution method through every test, on
the same data.

:func:`run_battery` takes the methods of :mod:`xaisurvey.attribution.registry` (all of
them by default, so a method joins by registering) plus three baselines that know
nothing about the model (``xaisurvey.evaluation.BASELINES``: random, centre, Sobel
edges) and runs each through six families of tests, with the method's ``evaluation``
options (its ``defaults`` when empty):

1. **model randomisation** (``xaisurvey.evaluation.sanity``, Adebayo et al. 2018),
   cascading and independent, on the MNIST CNN (its four parameterised layers) and on
   the pretrained MobileNet (blocks ``fc``, ``stage3``, ``stage2``, ``stage1``):
   Spearman correlation of the absolute maps and SSIM with the trained network's map,
   per stage and image; Smooth-MPRT on MNIST and eMPRT on both
   (``xaisurvey.evaluation.randomisation``, Hedström et al. 2023);
2. **data randomisation**: the MNIST CNN against the same architecture memorising
   shuffled labels (``models.load("mnist_memoriser")``);
3. **faithfulness** on Imagenette (``xaisurvey.evaluation.faithfulness``): deletion with
   a black (zero) substrate and insertion onto a blurred image (Gaussian, sigma 5 px),
   the conventions of the RISE paper (Petsiuk et al. 2018); ROAD MoRF and LeRF with
   noisy linear imputation (``xaisurvey.evaluation.road``, Rong et al. 2022); the
   predicted class's softmax probability is followed;
4. **localisation** on the look-alikes world (distractors as salient as the target):
   pointing game (tolerance :attr:`BatteryConfig.pointing_tolerance`), relevance mass
   and rank accuracy (``xaisurvey.evaluation.localisation``, Arras et al. 2022);
5. **input invariance** (Kindermans et al. 2019) on the MNIST CNN, **fragility**
   (Ghorbani et al. 2019) on MobileNet (``xaisurvey.evaluation.robustness``);
6. **class sensitivity** (maps for the predicted class and for another, random class),
   **sparseness** (Gini index, Chalasani et al. 2020) and **cost** (seconds of one call
   on a fixed batch of ImageNet images, relative to one forward pass of that batch
   without gradients).

Every per-image value is kept, so intervals are bootstrap intervals over images
(:func:`xaisurvey.claims.bootstrap_interval`). The same images, seeds and models serve
every method, whatever else is registered.

**Shared work.** What does not depend on the method is done once per process
(``BatteryData.shared``): the scores at the ends of every deletion and insertion curve
(the image, the black image, the blurred image) and the blurred images; the superpixels
of LIME and KernelSHAP (one segmentation per image, although the randomisation tests
explain each image on nine networks); and the randomisation stage both modes share (the
top block alone). Each map's remaining curve points and ROAD images are scored in one
forward pass. Methods whose cost grows with the channels of the layer (Score-CAM,
Ablation-CAM) may name a layer of their own (``MethodSpec.evaluation_layers``).

**Cache and jobs.** Each method's results are stored under
``$XAISURVEY_CACHE/battery/<name>-<key>.pt``; the key hashes the method's module source,
the shared attribution code it runs on (``_core``, ``_cam``, ``normalize``, ``guard``),
its spec and options, the battery's own code and configuration, and the models and data
it uses. Changing a method recomputes that method only; changing a metric recomputes
all. Chapters call :func:`run_battery` and only read the results. ``python -m
xaisurvey.evaluation.battery --jobs N`` fills the cache in N one-thread processes that
take the next entry nobody has claimed yet (the most expensive first), so they finish
together.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from ..claims import bootstrap_interval
from ..guard import model_guard
from . import baselines as _baselines
from . import complexity as _complexity
from . import faithfulness as _faithfulness
from . import localisation as _localisation
from . import pointing as _pointing
from . import randomisation as _randomisation
from . import road as _road
from . import robustness as _robustness
from . import sanity as _sanity
from . import similarity as _similarity

__all__ = [
    "BatteryConfig",
    "BatteryData",
    "MethodResult",
    "Battery",
    "run_battery",
    "load_data",
    "glue_sanity",
    "benchmark_memory",
    "PASS_THRESHOLD",
    "METRICS",
    "battery_dir",
]

Explainer = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class BatteryConfig:
    """Sizes and settings of the battery (the book's values fit its time budget).

    Attributes:
        n_small: images of the randomisation, data-randomisation, invariance, fragility,
            class sensitivity and cost tests (MNIST and ImageNet, at least 16).
        n_faithfulness: Imagenette images of deletion, insertion, ROAD and sparseness.
        n_localisation: look-alikes images of the localisation test.
        deletion_steps: steps of the deletion and insertion curves (``steps + 1``
            points).
        road_fractions: fractions of pixels ROAD removes.
        smooth_samples, smooth_noise: Smooth-MPRT's noisy copies and noise level.
        fragility_epsilon, fragility_tries, fragility_k: the L_inf budget, the random
            sign patterns tried and the top-k of the intersection (1000 of 224 x 224, as
            Ghorbani et al.).
        pointing_tolerance: pixels (Zhang et al.'s 15 px at 224 scaled to the 64 px
            world).
        invariance_shift: the constant added to the MNIST images.
        seed: seeds every random choice of the battery.
    """

    n_small: int = 16
    n_faithfulness: int = 50
    n_localisation: int = 60
    deletion_steps: int = 8
    road_fractions: tuple[float, ...] = (0.2, 0.5)
    smooth_samples: int = 4
    smooth_noise: float = 0.1
    fragility_epsilon: float = 8 / 255
    fragility_tries: int = 2
    fragility_k: int = 1000
    pointing_tolerance: float = 4.0
    invariance_shift: float = 0.5
    seed: int = 0


#: The headline metric of each property, as (result key, higher is better, what it
#: measures).
METRICS: dict[str, tuple[str, bool, str]] = {
    "class sensitivity": (
        "class_similarity",
        False,
        "Spearman |map| between the predicted and a random other class",
    ),
    "randomisation": (
        "mprt_imagenet_final",
        False,
        "Spearman |map| after randomising every block (ImageNet)",
    ),
    "randomisation (MNIST)": (
        "mprt_mnist_final",
        False,
        "Spearman |map| after randomising every layer (MNIST)",
    ),
    "Smooth-MPRT": (
        "smooth_mprt",
        False,
        "Spearman |noise-averaged map| after full randomisation (MNIST)",
    ),
    "eMPRT": (
        "emprt_imagenet",
        True,
        "relative rise of the map's entropy after full randomisation (ImageNet)",
    ),
    "data randomisation": (
        "data_randomisation",
        False,
        "Spearman |map| between the MNIST CNN and the memoriser",
    ),
    "deletion": ("deletion", False, "deletion AUC (black substrate)"),
    "insertion": ("insertion", True, "insertion AUC (blurred canvas)"),
    "ROAD MoRF": ("road_morf", False, "mean probability, most relevant removed first"),
    "ROAD LeRF": ("road_lerf", True, "mean probability, least relevant removed first"),
    "ROAD gap": ("road_gap", True, "LeRF - MoRF"),
    "pointing game": ("pointing", True, "hits on the look-alikes target"),
    "relevance mass": ("mass", True, "share of positive relevance on the target"),
    "relevance rank": ("rank", True, "share of the |target| top pixels on the target"),
    "invariance": (
        "invariance",
        False,
        "relative L1 change under an absorbed input shift",
    ),
    "fragility": (
        "fragility",
        True,
        "top-k intersection after a prediction-keeping perturbation",
    ),
    "sparseness": ("gini", True, "Gini index of |map|"),
    "cost": (
        "cost",
        False,
        "CPU seconds of one call / CPU seconds of one forward pass (one thread)",
    ),
}


def battery_dir() -> Path:
    """``$XAISURVEY_CACHE/battery`` (default ``~/.cache/xaisurvey/battery``)."""
    root = os.environ.get("XAISURVEY_CACHE") or str(
        Path.home() / ".cache" / "xaisurvey"
    )
    return Path(root).expanduser() / "battery"


@dataclass
class BatteryData:
    """The models and images every method is evaluated on (see :func:`load_data`)."""

    mnist: nn.Module
    memoriser: nn.Module
    mnist_layer: str
    mnist_x: torch.Tensor
    mnist_y: torch.Tensor
    imagenet: nn.Module
    imagenet_layer: str
    imagenet_x: torch.Tensor
    imagenet_y: torch.Tensor
    imagenet_other: torch.Tensor
    world: nn.Module
    world_layer: str
    world_x: torch.Tensor
    world_y: torch.Tensor
    world_masks: torch.Tensor
    forward_seconds: float
    spec: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)
    #: method-independent work, computed once per process and shared by every method
    #: (the faithfulness tests' reference scores, superpixels): see ``_reference``.
    shared: dict[str, Any] = field(default_factory=dict, repr=False)


def load_data(config: BatteryConfig = BatteryConfig()) -> BatteryData:
    """Load the battery's models (training the small ones on first use) and images."""
    from .. import data as _data
    from .. import models as _models
    from ..data.worlds import lookalikes

    if config.n_small > config.n_faithfulness:
        raise ValueError(
            "BatteryConfig: n_small must not exceed n_faithfulness (the small set is "
            "its head)"
        )
    mnist = _models.load("mnist_cnn", progress=False)
    memoriser = _models.load("mnist_memoriser", progress=False)
    test = _data.mnist("test")
    imagenet = _models.load("mobilenet_v1_025_imagenet")
    images = _data.imagenette(limit=config.n_faithfulness)
    world_model = _models.load("lookalikes_gap_cnn", progress=False)
    # seeds 1 and 2 are the training and held-out sets
    world = lookalikes(config.n_localisation, seed=3)
    x_img = images.images
    # The same network with its weights stored channels-last: oneDNN's depthwise
    # convolutions run it about 2.5 times faster on a CPU (the maps agree with the plain
    # layout's to 1e-6).
    fast = copy.deepcopy(imagenet.model).to(memory_format=torch.channels_last)
    with torch.no_grad():
        logits = fast(x_img)
    predicted = logits.argmax(1)
    g = torch.Generator().manual_seed(config.seed)
    other = (
        predicted + torch.randint(1, logits.shape[1], predicted.shape, generator=g)
    ) % logits.shape[1]
    small = x_img[: config.n_small]
    with torch.no_grad():
        fast(small)
        forward = min(_timed(lambda: fast(small), cpu=True)[1] for _ in range(3))
    spec = {
        "mnist": Path(mnist.info["cache_file"]).name,
        "memoriser": Path(memoriser.info["cache_file"]).name,
        "imagenet": imagenet.info["source"],
        "imagenet_layout": "channels_last",
        "imagenette": [len(images), images.name],
        "world": Path(world_model.info["cache_file"]).name,
        "world_seed": 3,
        "torch": torch.__version__.split("+")[0],
    }
    info = {
        "mnist_accuracy": mnist.info["heldout_accuracy"],
        "memoriser_fit": memoriser.info["fit_accuracy"],
        "memoriser_heldout": memoriser.info["heldout_accuracy"],
        "memoriser_size": memoriser.info["fit_size"],
        "imagenet_accuracy": float((predicted == images.labels).float().mean()),
        "world_accuracy": world_model.info["heldout_accuracy"],
        "world_batch_accuracy": _accuracy(
            world_model.model, world.images, world.targets
        ),
        "target_share": float(world.mask_of("target").float().mean()),
        "imagenette_labels": images.labels,
    }
    return BatteryData(
        mnist=mnist.model,
        memoriser=memoriser.model,
        mnist_layer=mnist.target_layer,
        mnist_x=test.images[: config.n_small],
        mnist_y=test.labels[: config.n_small],
        imagenet=fast,
        imagenet_layer=imagenet.target_layer,
        imagenet_x=x_img,
        imagenet_y=predicted,
        imagenet_other=other,
        world=world_model.model,
        world_layer=world_model.target_layer,
        world_x=world.images,
        world_y=world.targets,
        world_masks=world.mask_of("target"),
        forward_seconds=forward,
        spec=spec,
        info=info,
    )


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def _timed(fn: Callable[[], Any], cpu: bool = False) -> tuple[Any, float]:
    clock = time.process_time if cpu else time.perf_counter
    start = clock()
    out = fn()
    return out, clock() - start


# --------------------------------------------------------------------------------------
# What a method is to the battery: an explainer per model, and a cache key


@dataclass(frozen=True)
class _Entry:
    name: str
    kind: str  # "method" or "baseline"
    # (model role "mnist" / "imagenet" / "world", its default layer, data.shared) ->
    # explainer
    make: Callable[[str, str | None, dict[str, Any]], Explainer]
    sources: tuple[str, ...]
    description: dict[str, Any]


def _source_files(objects: Iterable[Any]) -> tuple[str, ...]:
    files = set()
    for obj in objects:
        path = inspect.getsourcefile(obj)
        if path is None:
            raise ValueError(f"battery: no source file for {obj!r}")
        files.add(str(Path(path).resolve()))
    return tuple(sorted(files))


def _method_entry(spec: Any) -> _Entry:
    from ..attribution import _core, _perturb, normalize, registry
    from .. import guard

    options = (
        {**spec.defaults, **spec.evaluation} if spec.evaluation else dict(spec.defaults)
    )
    layers = dict(getattr(spec, "evaluation_layers", {}) or {})
    slic = options.get("segments") == "slic"
    if slic:
        compactness = options.get(
            "compactness",
            inspect.signature(spec.function).parameters["compactness"].default,
        )

    def make(role: str, layer: str | None, shared: dict[str, Any]) -> Explainer:
        chosen = layers.get(role, layer) if spec.needs_layer else None

        def explain(
            model: nn.Module, x: torch.Tensor, target: torch.Tensor
        ) -> torch.Tensor:
            kwargs = dict(options)
            # the superpixels depend on the image only: segmented once per image
            if slic:
                kwargs["segments"] = _superpixels(
                    x, int(options["n_segments"]), compactness, spec.name, shared
                )
            return registry.explain(spec.name, model, x, target, layer=chosen, **kwargs)

        return explain

    shared: list[Any] = [
        inspect.getmodule(spec.function),
        _core,
        normalize,
        guard,
        _perturb,
    ]
    try:
        from ..attribution import _cam

        shared.append(_cam)
    except ImportError:  # pragma: no cover
        pass
    description = {
        "name": spec.name,
        "family": spec.family,
        "output": spec.output,
        "to_map": spec.to_map,
        "needs_layer": spec.needs_layer,
        "options": options,
        "layers": layers,
    }
    return _Entry(spec.name, "method", make, _source_files(shared), description)


def _superpixels(
    x: torch.Tensor,
    n_segments: int,
    compactness: float,
    method: str,
    shared: dict[str, Any],
) -> torch.Tensor:
    """SLIC superpixels of each image of ``x``, (N, H, W), each image segmented once per
    process (the randomisation tests explain the same images on many networks)."""
    from ..attribution import _perturb

    memo = shared.setdefault("superpixels", {})
    out = []
    for image in x:
        data = image.detach().cpu().contiguous()
        digest = hashlib.blake2b(data.numpy().tobytes(), digest_size=16)
        digest.update(repr((tuple(data.shape), str(data.dtype))).encode())
        key = (digest.hexdigest(), n_segments, float(compactness))
        if key not in memo:
            if len(memo) >= 512:
                memo.pop(next(iter(memo)))
            labels = _perturb.superpixels(
                data[None], "slic", n_segments, compactness, method
            )[0]
            memo[key] = labels.to(torch.int32)
        out.append(memo[key].to(device=x.device, dtype=torch.long))
    return torch.stack(out)


def _baseline_entry(name: str) -> _Entry:
    fn = _baselines.BASELINES[name]
    return _Entry(
        name,
        "baseline",
        lambda role, layer, shared: fn,
        _source_files([_baselines]),
        {"baseline": name},
    )


def _key(entry: _Entry, config: BatteryConfig, data: BatteryData) -> str:
    digest = hashlib.sha256()
    battery_modules = [
        sys.modules[__name__],
        _complexity,
        _faithfulness,
        _localisation,
        _pointing,
        _randomisation,
        _road,
        _robustness,
        _sanity,
        _similarity,
        _baselines,
    ]
    for path in sorted(set(entry.sources) | set(_source_files(battery_modules))):
        digest.update(Path(path).name.encode())
        digest.update(Path(path).read_bytes())
    digest.update(
        json.dumps(
            {"entry": entry.description, "config": asdict(config), "data": data.spec},
            sort_keys=True,
            default=str,
        ).encode()
    )
    return digest.hexdigest()[:20]


# --------------------------------------------------------------------------------------
# The tests


def _maps(
    explain: Explainer, model: nn.Module, x: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    maps = explain(model, x, target).detach()
    if maps.dim() == 4:
        maps = maps.sum(1)
    return maps.to(torch.float32)


def _mprt(
    explain: Explainer,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    layers: Sequence[str],
    seed: int,
) -> dict[str, Any]:
    """Cascading and independent randomisation, the trained map computed once for
    both."""
    trained = _maps(explain, model, x, y)
    out: dict[str, Any] = {"trained": trained}
    # The first stage of both modes randomises the top layer alone, with the same
    # weights (a layer's seed depends on its position only): its maps are computed once.
    done: dict[frozenset[str], torch.Tensor] = {}
    top_down = list(reversed(layers))
    for mode in ("cascading", "independent"):
        stages, maps = ["trained"], [trained]
        for i, name in enumerate(top_down):
            chosen = top_down[: i + 1] if mode == "cascading" else [name]
            if frozenset(chosen) not in done:
                randomized = _sanity.randomize_layers(
                    model, chosen, seed=seed, all_layers=layers
                )
                done[frozenset(chosen)] = _maps(explain, randomized, x, y)
            stages.append(name)
            maps.append(done[frozenset(chosen)])
        scores = [_sanity.map_similarity(trained, m) for m in maps]
        out[mode] = {
            "stages": stages,
            "spearman_abs": torch.stack([s["spearman_abs"] for s in scores]),
            "ssim": torch.stack([s["ssim"] for s in scores]),
        }
        if mode == "cascading":
            final = maps[-1]
            h0 = [_complexity.discrete_entropy(a) for a in trained]
            h1 = [_complexity.discrete_entropy(b) for b in final]
            out["emprt"] = torch.tensor(
                [0.0 if a == 0 else (b - a) / a for a, b in zip(h0, h1)],
                dtype=torch.float64,
            )
            out["examples"] = torch.stack(maps)[:, :4].to(torch.float16)
    return out


def _reference(data: BatteryData, config: BatteryConfig) -> dict[str, torch.Tensor]:
    """The faithfulness tests' method-independent work, done once per process.

    Every deletion curve starts at the image and ends at the black image, every
    insertion curve starts at the blurred image and ends at the image, whatever the map:
    their scores (the predicted class's probability) and the blurred images are computed
    once here, not once per method.
    """
    key = ("faithfulness", config.n_small)
    if key not in data.shared:
        model, x, y = data.imagenet, data.imagenet_x, data.imagenet_y
        blurred = torch.stack(
            [_faithfulness.make_substrate(image, "blur") for image in x]
        )
        rows = torch.arange(len(x))
        with model_guard(model, needs_grad=False, method="battery"), torch.no_grad():

            def probability(images: torch.Tensor) -> torch.Tensor:
                out = torch.cat(
                    [
                        model(images[i : i + config.n_small]).softmax(1)
                        for i in range(0, len(images), config.n_small)
                    ]
                )
                return out.to(torch.float64)

            black = probability(torch.zeros_like(x[:1]))[0, y]
            data.shared[key] = {
                "blurred": blurred,
                "image": probability(x)[rows, y],
                "black": black,
                "blur": probability(blurred)[rows, y],
            }
    return data.shared[key]


def _faithfulness_scores(
    data: BatteryData, config: BatteryConfig, maps: torch.Tensor, *, road: bool = True
) -> dict[str, torch.Tensor]:
    """Deletion (black), insertion (blur) and ROAD of each Imagenette image's map.

    The same curves as :func:`~xaisurvey.evaluation.faithfulness.deletion_curve`,
    :func:`~xaisurvey.evaluation.faithfulness.insertion_curve` and
    :func:`~xaisurvey.evaluation.road.road_curves` give, with the ends of the curves
    from :func:`_reference` and every other image of one map scored in one forward pass.
    """
    ref = _reference(data, config)
    model, steps = data.imagenet, config.deletion_steps
    _, _, h, w = data.imagenet_x.shape
    counts = _faithfulness.step_counts(h * w, steps)
    fractions = torch.tensor(counts, dtype=torch.float64) / (h * w)
    inner = counts[1:-1]
    k = len(inner)
    d_curves, i_curves, morf, lerf = [], [], [], []
    with model_guard(model, needs_grad=False, method="battery"), torch.no_grad():
        for i, (image, target, m) in enumerate(
            zip(data.imagenet_x, data.imagenet_y.tolist(), maps)
        ):
            rank = _faithfulness.pixel_ranks(m)
            black = torch.zeros_like(image)
            rows = [_faithfulness.blend_ranked(image, black, rank, inner)]
            if road:
                rows += [
                    _faithfulness.blend_ranked(ref["blurred"][i], image, rank, inner),
                    _road.road_inputs(
                        image, m, fractions=config.road_fractions, seed=config.seed + i
                    ),
                ]
            p = model(torch.cat(rows)).softmax(1)[:, target].to(torch.float64)
            d_curves.append(
                torch.cat([ref["image"][i, None], p[:k], ref["black"][i, None]])
            )
            if road:
                i_curves.append(
                    torch.cat(
                        [ref["blur"][i, None], p[k : 2 * k], ref["image"][i, None]]
                    )
                )
                half = len(config.road_fractions)
                morf.append(p[2 * k : 2 * k + half])
                lerf.append(p[2 * k + half :])
    out = {"deletion_curves": torch.stack(d_curves)}
    out["deletion"] = torch.trapezoid(out["deletion_curves"], fractions)
    if road:
        out["insertion_curves"] = torch.stack(i_curves)
        out["insertion"] = torch.trapezoid(out["insertion_curves"], fractions)
        out["road_morf_curves"] = torch.stack(morf)
        out["road_lerf_curves"] = torch.stack(lerf)
        out["road_morf"] = out["road_morf_curves"].mean(1)
        out["road_lerf"] = out["road_lerf_curves"].mean(1)
        out["road_gap"] = out["road_lerf"] - out["road_morf"]
    return out


def _evaluate(
    entry: _Entry, data: BatteryData, config: BatteryConfig
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "name": entry.name,
        "kind": entry.kind,
        "errors": {},
        "seconds": {},
        "cpu": {},
    }
    ex_mnist = entry.make("mnist", data.mnist_layer, data.shared)
    ex_img = entry.make("imagenet", data.imagenet_layer, data.shared)
    ex_world = entry.make("world", data.world_layer, data.shared)
    n = config.n_small
    x_small, y_small = data.imagenet_x[:n], data.imagenet_y[:n]
    # the trained ImageNet maps of the small set, computed once
    shared: dict[str, torch.Tensor] = {}

    def attempt(test: str, fn: Callable[[], None]) -> None:
        start, cpu = time.perf_counter(), time.process_time()
        try:
            fn()
        except (ValueError, TypeError, NotImplementedError, RuntimeError) as error:
            res["errors"][test] = f"{type(error).__name__}: {error}".splitlines()[0][
                :300
            ]
        res["seconds"][test] = time.perf_counter() - start
        res["cpu"][test] = time.process_time() - cpu  # the measure on a shared machine

    def mprt_mnist() -> None:
        layers = _sanity.parameter_layers(data.mnist)
        r = _mprt(ex_mnist, data.mnist, data.mnist_x, data.mnist_y, layers, config.seed)
        r.pop("trained")
        res["mprt_mnist"] = r
        res["mprt_mnist_final"] = r["cascading"]["spearman_abs"][-1]
        res["emprt_mnist"] = r["emprt"]
        randomized = _randomisation.fully_randomized(
            data.mnist, seed=config.seed, layers=layers
        )
        res["smooth_mprt"] = _randomisation.smooth_mprt(
            ex_mnist,
            data.mnist,
            randomized,
            data.mnist_x,
            data.mnist_y,
            samples=config.smooth_samples,
            noise=config.smooth_noise,
            seed=config.seed,
        )

    def mprt_imagenet() -> None:
        blocks = [
            name
            for name, m in data.imagenet.named_children()
            if any(True for _ in m.parameters())
        ]
        r = _mprt(ex_img, data.imagenet, x_small, y_small, blocks, config.seed)
        shared["trained"] = r.pop("trained")
        res["mprt_imagenet"] = r
        res["mprt_imagenet_final"] = r["cascading"]["spearman_abs"][-1]
        res["emprt_imagenet"] = r["emprt"]

    def data_randomisation() -> None:
        a = _maps(ex_mnist, data.mnist, data.mnist_x, data.mnist_y)
        b = _maps(ex_mnist, data.memoriser, data.mnist_x, data.mnist_y)
        sim = _sanity.map_similarity(a, b)
        res["data_randomisation"] = sim["spearman_abs"].to(torch.float64)
        res["data_randomisation_ssim"] = sim["ssim"].to(torch.float64)
        res["data_examples"] = torch.stack([a[:4], b[:4]]).to(torch.float16)

    def faithfulness() -> None:
        first = (
            shared["trained"]
            if "trained" in shared
            else _maps(ex_img, data.imagenet, x_small, y_small)
        )
        maps = torch.cat(
            [first]
            + [
                _maps(
                    ex_img,
                    data.imagenet,
                    data.imagenet_x[i : i + n],
                    data.imagenet_y[i : i + n],
                )
                for i in range(n, len(data.imagenet_x), n)
            ]
        )
        res["imagenet_examples"] = maps[:4].to(torch.float16)
        res["gini"] = torch.tensor(
            [_complexity.gini(m) for m in maps], dtype=torch.float64
        )
        res.update(_faithfulness_scores(data, config, maps))

    def localisation() -> None:
        maps = _maps(ex_world, data.world, data.world_x, data.world_y)
        res["world_examples"] = maps[:4].to(torch.float16)
        hits = [
            _pointing.pointing_hit(m, g, tolerance=config.pointing_tolerance)
            for m, g in zip(maps, data.world_masks)
        ]
        res["pointing"] = torch.tensor([float(h) for h in hits], dtype=torch.float64)
        res["mass"] = torch.tensor(
            [
                _localisation.relevance_mass_accuracy(m, g)
                for m, g in zip(maps, data.world_masks)
            ],
            dtype=torch.float64,
        )
        res["rank"] = torch.tensor(
            [
                _localisation.relevance_rank_accuracy(m, g)
                for m, g in zip(maps, data.world_masks)
            ],
            dtype=torch.float64,
        )

    def invariance() -> None:
        res["invariance"] = _robustness.input_invariance(
            ex_mnist,
            data.mnist,
            data.mnist_x,
            data.mnist_y,
            shift=config.invariance_shift,
        )

    def fragility() -> None:
        res["fragility"] = _robustness.fragility(
            ex_img,
            data.imagenet,
            x_small,
            epsilon=config.fragility_epsilon,
            tries=config.fragility_tries,
            k=config.fragility_k,
            seed=config.seed,
            base=shared.get("trained"),
        )

    def class_sensitivity() -> None:
        # the call on the other class is the timed call of the cost (warm: the method
        # ran before) CPU time of one thread, for the call and for a forward pass
        # measured just before it: on a shared machine wall time measures the neighbours
        # too.
        a = (
            shared["trained"]
            if "trained" in shared
            else _maps(ex_img, data.imagenet, x_small, y_small)
        )
        with torch.no_grad():
            forward = min(
                _timed(lambda: data.imagenet(x_small), cpu=True)[1] for _ in range(2)
            )
        b, seconds = _timed(
            lambda: _maps(ex_img, data.imagenet, x_small, data.imagenet_other[:n]),
            cpu=True,
        )
        res["class_similarity"] = _sanity.map_similarity(a, b)["spearman_abs"].to(
            torch.float64
        )
        res["cost_seconds"] = seconds
        res["forward_seconds"] = forward
        res["cost"] = torch.tensor([seconds / forward], dtype=torch.float64)

    for test, fn in (
        ("mprt_imagenet", mprt_imagenet),
        ("mprt_mnist", mprt_mnist),
        ("data_randomisation", data_randomisation),
        ("faithfulness", faithfulness),
        ("localisation", localisation),
        ("invariance", invariance),
        ("fragility", fragility),
        ("class_sensitivity", class_sensitivity),
    ):
        attempt(test, fn)
    return res


def _binder(data: BatteryData, config: BatteryConfig) -> dict[str, Any]:
    """Binder et al.'s constructed example: parameter-seeded noise through the
    randomisation tests."""
    ex = _randomisation.parameter_noise_map
    layers = _sanity.parameter_layers(data.mnist)
    blocks = [
        name
        for name, m in data.imagenet.named_children()
        if any(True for _ in m.parameters())
    ]
    mnist = _mprt(ex, data.mnist, data.mnist_x, data.mnist_y, layers, config.seed)
    imagenet = _mprt(
        ex,
        data.imagenet,
        data.imagenet_x[: config.n_small],
        data.imagenet_y[: config.n_small],
        blocks,
        config.seed,
    )
    maps = _maps(ex, data.imagenet, data.imagenet_x, data.imagenet_y)
    deletion = _faithfulness_scores(data, config, maps, road=False)["deletion"]
    return {
        "name": "parameter_noise",
        "kind": "constructed",
        "mprt_mnist": mnist,
        "mprt_imagenet": imagenet,
        "mprt_mnist_final": mnist["cascading"]["spearman_abs"][-1],
        "mprt_imagenet_final": imagenet["cascading"]["spearman_abs"][-1],
        "deletion": deletion,
        "errors": {},
        "seconds": {},
    }


# --------------------------------------------------------------------------------------
# Results


@dataclass
class MethodResult:
    """One method's (or baseline's) battery results: per-image tensors by key, errors by
    test."""

    name: str
    kind: str
    values: dict[str, Any]
    seconds: float
    from_cache: bool
    path: Path | None

    @property
    def errors(self) -> dict[str, str]:
        """Tests the method could not run (e.g. CAM on a network without global average
        pooling)."""
        return dict(self.values.get("errors", {}))

    def has(self, key: str) -> bool:
        return key in self.values

    def samples(self, key: str) -> np.ndarray:
        """The per-image values of ``key`` as a float array."""
        value = self.values[key]
        return np.asarray(
            value.detach().cpu().numpy() if hasattr(value, "detach") else value,
            dtype=float,
        ).reshape(-1)

    def interval(self, key: str) -> tuple[float, float, float]:
        """``(mean, low, high)``: the mean over images with its 95 % bootstrap interval
        (NaNs if absent)."""
        if key not in self.values:
            return (float("nan"),) * 3
        s = self.samples(key)
        if s.size == 1:
            return float(s[0]), float(s[0]), float(s[0])
        return bootstrap_interval(s)


@dataclass
class Battery:
    """The battery's results for every method and baseline (:func:`run_battery`)."""

    config: BatteryConfig
    results: dict[str, MethodResult]
    data_info: dict[str, Any]
    forward_seconds: float
    seconds: float
    binder: dict[str, Any]

    @property
    def methods(self) -> list[str]:
        return [n for n, r in self.results.items() if r.kind == "method"]

    @property
    def baselines(self) -> list[str]:
        return [n for n, r in self.results.items() if r.kind == "baseline"]

    def interval(self, name: str, metric: str) -> tuple[float, float, float]:
        """Mean and 95 % bootstrap interval of a :data:`METRICS` property
        (or a result key) for ``name``."""
        key = METRICS[metric][0] if metric in METRICS else metric
        return self.results[name].interval(key)

    def ranking(self, metric: str, names: Sequence[str] | None = None) -> list[str]:
        """``names`` (default: the methods) from best to worst by the mean of
        ``metric``; missing ones last."""
        key, higher, _ = METRICS[metric]
        names = list(self.methods if names is None else names)
        means = {n: self.results[n].interval(key)[0] for n in names}
        finite = [n for n in names if np.isfinite(means[n])]
        ordered = sorted(finite, key=lambda n: -means[n] if higher else means[n])
        return ordered + [n for n in names if n not in finite]

    def best(self, metric: str, names: Sequence[str] | None = None) -> str:
        """The best of ``names`` (default: the methods) by the mean of ``metric``."""
        return self.ranking(metric, names)[0]

    def table(
        self,
        metrics: Sequence[str],
        names: Sequence[str] | None = None,
        *,
        digits: int = 2,
        label: Callable[[str], str] | None = None,
    ) -> str:
        """A Markdown table: one row per method (then baseline), one column per metric,
        cells from :meth:`cell`."""
        names = list(self.methods + self.baselines if names is None else names)
        label = label or (lambda n: n.replace("_", " "))
        arrows = {
            m: ("↑" if METRICS[m][1] else "↓") if m in METRICS else "" for m in metrics
        }
        rows = [
            "| method | "
            + " | ".join(f"{m} {arrows[m]}".strip() for m in metrics)
            + " |",
            "|---|" + "---|" * len(metrics),
        ]
        for n in names:
            rows.append(
                f"| {label(n)} | "
                + " | ".join(self.cell(n, m, digits) for m in metrics)
                + " |"
            )
        return "\n".join(rows)

    def flat_after_randomisation(self, name: str) -> bool:
        """Whether ``name``'s maps on the fully randomised MobileNet are flat on every
        image.

        A flat map has no ranking, so its rank correlation with the trained map is 0 and
        it "passes" the randomisation test vacuously; its entropy is 0, so its eMPRT
        score is -1.
        """
        if "emprt_imagenet" not in self.results[name].values:
            return False
        return bool(np.all(self.results[name].samples("emprt_imagenet") == -1.0))

    def passes_randomisation(self, name: str, threshold: float | None = None) -> bool:
        """The book's rule: the upper end of the 95 % interval below ``threshold``
        (default :data:`PASS_THRESHOLD`), and the randomised maps not flat."""
        high = self.interval(name, "randomisation")[2]
        limit = PASS_THRESHOLD if threshold is None else threshold
        return bool(
            np.isfinite(high)
            and high < limit
            and not self.flat_after_randomisation(name)
        )

    def cell(self, name: str, metric: str, digits: int = 2) -> str:
        """``"mean [low, high]"`` for a table cell ("n/a" when the test could not
        run)."""
        mean, low, high = self.interval(name, metric)
        if not np.isfinite(mean):
            return "n/a"
        if low == high:
            return f"{mean:.{digits}f}"
        return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def run_battery(
    methods: Sequence[str] | None = None,
    *,
    config: BatteryConfig = BatteryConfig(),
    baselines: bool = True,
    use_cache: bool = True,
    data: BatteryData | None = None,
    progress: bool = False,
    claims: str | os.PathLike | None = None,
) -> Battery:
    """Run (or read from the cache) the battery for ``methods`` (default: every
    registered method).

    Args:
        methods: registry names; ``None`` takes every method of
            :func:`xaisurvey.attribution.available` whose spec has ``evaluated=True``.
        config: the :class:`BatteryConfig` (part of the cache key).
        baselines: also score the random, centre and Sobel maps.
        use_cache: read and write ``battery_dir()``; ``False`` recomputes everything and
            writes nothing.
        data: preloaded :class:`BatteryData` (tests pass tiny ones); default
            :func:`load_data`.
        progress: print one line per method with its time.
        claims: a folder shared by several processes filling the cache together: each
            computes only the entries it claims first (a file created there atomically)
            and leaves the others out of its result (``python -m
            xaisurvey.evaluation.battery --jobs N`` uses it).

    Returns:
        a :class:`Battery`.

    Example:
        >>> battery = run_battery(["grad_cam"])            # doctest: +SKIP
        >>> battery.cell("grad_cam", "deletion")           # doctest: +SKIP
        '0.12 [0.09, 0.15]'
    """
    from ..attribution import registry

    torch_threads = torch.get_num_threads()
    start = time.perf_counter()
    specs = (
        [s for s in registry.available() if s.evaluated]
        if methods is None
        else [registry.get(m) for m in methods]
    )
    entries = [_method_entry(s) for s in specs]
    if baselines:
        entries += [_baseline_entry(name) for name in _baselines.BASELINES]
    data = load_data(config) if data is None else data
    folder = battery_dir()
    results: dict[str, MethodResult] = {}
    try:
        for entry in entries + [None]:
            # Binder et al.'s constructed example, cached like a method
            if entry is None:
                name, key = "parameter_noise", _key(
                    _Entry(
                        "parameter_noise",
                        "constructed",
                        lambda *_: None,
                        _source_files([_randomisation]),
                        {"binder": 1},
                    ),
                    config,
                    data,
                )
            else:
                name, key = entry.name, _key(entry, config, data)
            path = folder / f"{name}-{key}.pt"
            t0, c0 = time.perf_counter(), time.process_time()
            cached = use_cache and path.is_file()
            if (
                claims is not None
                and not cached
                and not _claim(Path(claims) / path.name)
            ):
                continue  # another process computes it
            if cached:
                values = torch.load(path, map_location="cpu", weights_only=False)
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(config.seed)
                    values = (
                        _binder(data, config)
                        if entry is None
                        else _evaluate(entry, data, config)
                    )
                values["total_seconds"] = time.perf_counter() - t0
                # CPU time: the measure on a shared machine
                values["cpu_seconds"] = time.process_time() - c0
                if use_cache:
                    folder.mkdir(parents=True, exist_ok=True)
                    partial = path.with_suffix(f".tmp{os.getpid()}")
                    torch.save(values, partial)
                    partial.replace(path)
            if progress:
                print(
                    f"battery: {name:>18} {'cache' if cached else 'run'} "
                    f"{values.get('total_seconds', 0):6.1f} s wall, "
                    f"{values.get('cpu_seconds', 0):6.1f} s CPU",
                    flush=True,
                )
            results[name] = MethodResult(
                name,
                values.get("kind", "method"),
                values,
                float(values.get("total_seconds", 0.0)),
                cached,
                path if use_cache else None,
            )
    finally:
        torch.set_num_threads(torch_threads)
    binder = (
        results.pop("parameter_noise").values if "parameter_noise" in results else {}
    )
    return Battery(
        config,
        results,
        data.info,
        data.forward_seconds,
        time.perf_counter() - start,
        binder,
    )


def _claim(path: Path) -> bool:
    """Create ``path`` if it does not exist (atomically): ``True`` for the one process
    that does."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _main(argv: Sequence[str] | None = None) -> int:
    """``python -m xaisurvey.evaluation.battery [METHOD ...]``: fill the cache, print
    each entry's time."""
    import argparse

    parser = argparse.ArgumentParser(
        description="Run the evaluation battery (cached) before the book executes."
    )
    parser.add_argument(
        "methods", nargs="*", help="registry names (default: every registered method)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="fill the cache in this many processes of one thread each (each takes the "
        "next entry no other has claimed)",
    )
    parser.add_argument("--claims", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    # one of the --jobs processes: compute what no other process has claimed
    if args.claims:
        battery = run_battery(args.methods or None, progress=True, claims=args.claims)
        return 0
    if args.jobs > 1:
        import shutil
        import subprocess
        import tempfile

        from ..attribution import registry

        names = args.methods or [
            spec.name for spec in registry.available() if spec.evaluated
        ]
        # The expensive methods (many passes per image) first, so that the processes,
        # which take the next unclaimed entry in this order, finish together.
        names = sorted(
            names,
            key=lambda n: (
                not registry.get(n).floor.startswith("n_"),
                -_passes_estimate(registry.get(n)),
            ),
        )
        # train and cache the battery's small models once, before the jobs need them
        load_data()
        battery_dir().mkdir(parents=True, exist_ok=True)
        claims = tempfile.mkdtemp(prefix="claims-", dir=battery_dir())
        try:
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "xaisurvey.evaluation.battery",
                        *names,
                        "--claims",
                        claims,
                    ]
                )
                for _ in range(args.jobs)
            ]
            failed = [p.wait() for p in procs]
        finally:
            shutil.rmtree(claims, ignore_errors=True)
        if any(failed):
            print("battery: a job failed", file=sys.stderr)
            return 1
    battery = run_battery(args.methods or None, progress=True)
    cold = sum(r.seconds for r in battery.results.values() if not r.from_cache)
    print(
        f"battery: {len(battery.methods)} methods, {len(battery.baselines)} baselines; "
        f"{battery.seconds:.1f} s now ({cold:.1f} s of it computing)"
    )
    return 0


def _passes_estimate(spec: Any) -> int:
    """Forward passes per image at the battery's settings (the channels of its layer for
    Score-CAM and Ablation-CAM, whose ``passes`` counts per channel)."""
    from ..attribution import registry

    try:
        passes = registry.cost_passes(spec, {**spec.defaults, **spec.evaluation})
    except ValueError:  # options relative to the image size (occlusion's fractions)
        passes = registry.cost_passes(spec)
    if spec.floor.startswith("n_") and passes == 1:
        passes = 64
    return passes


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())


#: A map "passes" model randomisation when the upper end of its 95 % interval is below
#: this rank correlation with the trained map (the threshold the book uses).
PASS_THRESHOLD = 0.5


def glue_sanity(
    battery: Battery, method: str, prefix: str, ledger: Any | None = None
) -> dict[str, str]:
    """Glue a method's randomisation results for a chapter's sanity-check section.

    Glues ``<prefix>-battery-imagenet``, ``-mnist``, ``-data``, ``-class`` (cells "mean
    [low, high]" or "n/a"), ``-n`` (images), ``-verdict`` ("passes" / "does not pass")
    and ``-meaning`` (a sentence that follows from the verdict), and records the verdict
    in ``ledger``.
    """
    from .. import glue

    cells = {
        "imagenet": battery.cell(method, "randomisation"),
        "mnist": battery.cell(method, "randomisation (MNIST)"),
        "data": battery.cell(method, "data randomisation"),
        "class": battery.cell(method, "class sensitivity"),
    }
    high = battery.interval(method, "randomisation")[2]
    flat = battery.flat_after_randomisation(method)
    passes = battery.passes_randomisation(method)
    cells["verdict"] = (
        "passes" if passes else "passes only vacuously" if flat else "does not pass"
    )
    if flat:
        cells["meaning"] = (
            "on the randomised network the map is flat (zero) on every image, so there "
            "is no ranking to "
            "correlate; the score of zero records that the map collapsed, not that it "
            "follows what the "
            "network learnt"
        )
    elif passes:
        cells["meaning"] = (
            "the map depends on what the network learnt, so it can be used to study "
            "the model; passing says "
            "nothing yet about whether the map is faithful"
        )
    else:
        cells["meaning"] = (
            "much of the map survives without the learnt weights: it shows the image "
            "and the architecture as "
            "much as the model, and should not be read as evidence of what the network "
            "learnt"
        )
    cells["n"] = str(battery.config.n_small)
    cells["threshold"] = f"{PASS_THRESHOLD:.1f}"
    for key, value in cells.items():
        glue(f"{prefix}-battery-{key}", value, display=False)
    if ledger is not None:
        ledger.check(
            f"{method} {cells['verdict']} the randomisation test (upper end of the "
            "interval vs "
            f"{PASS_THRESHOLD}; flat randomised maps pass only vacuously)",
            passes == (bool(high < PASS_THRESHOLD) and not flat),
            values={
                "interval": battery.interval(method, "randomisation"),
                "flat": flat,
            },
        )
    return cells


def benchmark_memory(
    path: str | os.PathLike | None = None,
) -> dict[str, dict[str, float | None]]:
    """Peak extra memory of each method from the benchmark's results, when the build has
    them.

    Reads ``benchmarks/results/attribution.json`` (``python benchmarks/attribution.py``
    writes it; ResNet-18, its own batch) and returns ``{task: {"peak_mib": ...,
    "ratio_to_floor": ...}}`` for the rows of the package's own methods; ``{}`` when the
    file is absent.
    """
    if path is None:
        path = (
            Path(__file__).resolve().parents[2]
            / "benchmarks"
            / "results"
            / "attribution.json"
        )
    path = Path(path)
    if not path.is_file():
        return {}
    rows = json.loads(path.read_text()).get("rows", [])
    return {
        row["task"]: {
            "peak_mib": row.get("peak_extra_mib"),
            "ratio_to_floor": row.get("memory_ratio_to_floor"),
        }
        for row in rows
        if row.get("group") == "ours"
    }
