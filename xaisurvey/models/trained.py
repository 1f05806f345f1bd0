"""Registry entries for the small CNNs trained in the book (train on first use, then
load from the cache).

Each factory trains with :func:`xaisurvey.train.train_cached` on a synthetic world
(or on real MNIST), so the first ``load`` trains (seconds; at most a minute on a 2-core
CPU) and later loads, in this build or the next, read the cached weights. ``info`` holds
the measured held-out metric, the training time, the configuration, the data it was
trained on and the full :class:`~xaisurvey.train.History` (with per-epoch checkpoints
when ``checkpoints=True``).

The held-out data are generated from seeds the training data never use; the model is
never selected on them (the weights after the last epoch are kept), so their metric is
an honest estimate.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from .. import train as _train
from ..data.worlds import _base as _world_base
from ..data.worlds import driving as _driving
from ..data.worlds import roads as _roads
from ..data.worlds import terrain as _terrain
from ..train import TrainConfig, train_cached
from . import small as _small
from .registry import LoadedModel, register

# The package exports a function named ``shapes`` that hides the module of the same
# name.
_shapes = importlib.import_module("xaisurvey.data.worlds.shapes")

__all__ = ["world_split", "TRAIN_SEED", "HELDOUT_SEED"]

# world seeds: training and held-out samples never share a generator
TRAIN_SEED, HELDOUT_SEED = 1, 2


def _preprocess(channels: int, size: tuple[int, int]) -> Callable[[Any], Tensor]:
    """A PIL image or a (C, H, W) tensor in [0, 1] -> float (channels, H, W), resized to
    ``size``."""

    def preprocess(image: Any) -> Tensor:
        if isinstance(image, Image.Image):
            image = image.convert("RGB" if channels == 3 else "L").resize(
                size[::-1], Image.BILINEAR
            )
            array = np.asarray(image, dtype=np.float32) / 255.0
            image = (
                torch.from_numpy(array.copy())
                .reshape(size[0], size[1], channels)
                .permute(2, 0, 1)
            )
        if (
            not isinstance(image, Tensor)
            or image.ndim != 3
            or image.shape[0] != channels
        ):
            shape = (
                tuple(image.shape)
                if isinstance(image, Tensor)
                else type(image).__name__
            )
            raise ValueError(
                f"expected a PIL image or a ({channels}, H, W) tensor, got {shape}"
            )
        if not image.is_floating_point() or image.min() < 0 or image.max() > 1:
            raise ValueError("expected a float image in [0, 1]")
        if tuple(image.shape[1:]) != size:
            image = torch.nn.functional.interpolate(
                image[None], size=size, mode="bilinear", align_corners=False
            )[0]
        return image.float()

    return preprocess


def world_split(
    generate: Callable[..., Any], n_train: int, n_test: int, **kwargs: Any
) -> tuple[Any, Any]:
    """The training and held-out sets of a world: ``generate(n_train, seed=TRAIN_SEED)``
    and ``generate(n_test, seed=HELDOUT_SEED)``."""
    return generate(n_train, seed=TRAIN_SEED, **kwargs), generate(
        n_test, seed=HELDOUT_SEED, **kwargs
    )


def _loaded(
    name: str,
    result: _train.TrainResult,
    classes: list[str] | None,
    preprocess: Callable[[Any], Tensor],
    target_layer: str,
    data: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> LoadedModel:
    history = result.history
    info: dict[str, Any] = {
        "source": "trained in the book (xaisurvey.train)",
        "data": data,
        "history": history,
        "train_seconds": history.seconds,
        "from_cache": history.from_cache,
        "cache_file": str(result.path) if result.path else None,
        "parameters": sum(p.numel() for p in result.model.parameters()),
    }
    if history.metric == "accuracy":
        info["heldout_accuracy"] = history.val_metric[-1]
        info["heldout_error"] = 1.0 - history.val_metric[-1]
        info["train_accuracy"] = history.train_metric[-1]
    else:
        info["heldout_mae"] = history.val_metric[-1]
        info["heldout_rmse"] = history.val_loss[-1] ** 0.5
        info["train_mae"] = history.train_metric[-1]
    info.update(extra or {})
    return LoadedModel(name, result.model, classes, preprocess, target_layer, info)


def _config(
    base: TrainConfig, seed: int, epochs: int | None, checkpoints: bool
) -> TrainConfig:
    return replace(
        base,
        seed=seed,
        epochs=base.epochs if epochs is None else epochs,
        checkpoints=checkpoints,
    )


# --------------------------------------------------------------------------------------
# Road tiles (the VisualBackProp exercise)

ROAD_TRAIN, ROAD_TEST = 1000, 400
ROAD_CONFIG = TrainConfig(epochs=2, batch_size=32, lr=2e-3, lr_schedule="cosine")


def _road(
    name: str,
    downsample: str,
    seed: int,
    epochs: int | None,
    checkpoints: bool,
    use_cache: bool,
    progress: bool,
) -> LoadedModel:
    config = _config(ROAD_CONFIG, seed, epochs, checkpoints)
    data = {
        "world": "road_tiles",
        "train": [ROAD_TRAIN, TRAIN_SEED],
        "heldout": [ROAD_TEST, HELDOUT_SEED],
    }
    result = train_cached(
        name,
        lambda: _small.RoadCNN(2, downsample),
        lambda: world_split(_roads.road_tiles, ROAD_TRAIN, ROAD_TEST),
        config,
        data_spec=data,
        sources=[_small, _roads, _world_base],
        use_cache=use_cache,
        progress=progress,
    )
    return _loaded(
        name,
        result,
        list(_roads.ROAD_CLASSES),
        _preprocess(3, (96, 96)),
        "features.block3",
        data,
    )


@register(
    "road_cnn",
    "96x96 road / no-road CNN of the VisualBackProp exercise (strided convs), trained"
    " on road tiles",
)
def road_cnn(
    seed: int = 0,
    epochs: int | None = None,
    checkpoints: bool = False,
    use_cache: bool = True,
    progress: bool = True,
) -> LoadedModel:
    """The road CNN (:class:`~xaisurvey.models.small.RoadCNN`, strided convolutions)
    trained on :func:`~xaisurvey.data.worlds.road_tiles`."""
    return _road("road_cnn", "conv", seed, epochs, checkpoints, use_cache, progress)


@register(
    "road_cnn_maxpool",
    "the road CNN downsampling with MaxPool2d(2, 2) instead of strided convs",
)
def road_cnn_maxpool(
    seed: int = 0,
    epochs: int | None = None,
    checkpoints: bool = False,
    use_cache: bool = True,
    progress: bool = True,
) -> LoadedModel:
    """The road CNN's max-pooling variant (:class:`~xaisurvey.models.small.RoadCNN`
    ``downsample="maxpool"``)."""
    return _road(
        "road_cnn_maxpool", "maxpool", seed, epochs, checkpoints, use_cache, progress
    )


# --------------------------------------------------------------------------------------
# Shapes (CAM's global-average-pooling architecture)

SHAPES_TRAIN, SHAPES_TEST = 1600, 400
SHAPES_CONFIG = TrainConfig(epochs=11, batch_size=32, lr=3e-3, lr_schedule="cosine")


@register(
    "shapes_gap_cnn",
    "GAP-head CNN (the CAM architecture) classifying the red target's shape in the"
    " shapes world",
)
def shapes_gap_cnn(
    seed: int = 0,
    epochs: int | None = None,
    checkpoints: bool = False,
    use_cache: bool = True,
    progress: bool = True,
) -> LoadedModel:
    """:class:`~xaisurvey.models.small.GapCNN` trained on
    :func:`~xaisurvey.data.worlds.shapes` (64x64, 4 classes)."""
    config = _config(SHAPES_CONFIG, seed, epochs, checkpoints)
    data = {
        "world": "shapes",
        "train": [SHAPES_TRAIN, TRAIN_SEED],
        "heldout": [SHAPES_TEST, HELDOUT_SEED],
    }
    result = train_cached(
        "shapes_gap_cnn",
        lambda: _small.GapCNN(len(_shapes.SHAPE_CLASSES)),
        lambda: world_split(_shapes.shapes, SHAPES_TRAIN, SHAPES_TEST),
        config,
        data_spec=data,
        sources=[_small, _shapes, _world_base],
        use_cache=use_cache,
        progress=progress,
    )
    return _loaded(
        "shapes_gap_cnn",
        result,
        list(_shapes.SHAPE_CLASSES),
        _preprocess(3, (64, 64)),
        "features.block4",
        data,
        {"fc": "fc"},
    )


# --------------------------------------------------------------------------------------
# MNIST (the sanity-checks paper's setting), on the real digits

MNIST_TEST_SIZE = 2000
MNIST_CONFIG = TrainConfig(epochs=2, batch_size=64, lr=2e-3)


@register(
    "mnist_cnn",
    "small MNIST CNN (conv-relu-conv-relu-pool-fc-relu-fc) trained on real MNIST"
    " digits",
)
def mnist_cnn(
    seed: int = 0,
    epochs: int | None = None,
    checkpoints: bool = False,
    use_cache: bool = True,
    progress: bool = True,
    shuffled_labels: bool = False,
) -> LoadedModel:
    """:class:`~xaisurvey.models.small.MnistCNN` trained on
    ``xaisurvey.data.mnist("train")`` (8,000 real digits), measured on the 2,000
    held-out digits.

    ``shuffled_labels=True`` trains on a seeded permutation of the training labels (the
    data randomisation test of Adebayo et al. 2018): the network can only memorise, so
    its held-out accuracy is near chance (the held-out labels stay true).
    """
    from ..data import digits as _digits

    config = _config(MNIST_CONFIG, seed, epochs, checkpoints)
    data = {
        "dataset": "mnist",
        "test_size": MNIST_TEST_SIZE,
        "split_seed": 0,
        "shuffled_labels": shuffled_labels,
    }

    def make_data() -> tuple[Any, Any]:
        train_set = _digits.mnist("train", test_size=MNIST_TEST_SIZE)
        test_set = _digits.mnist("test", test_size=MNIST_TEST_SIZE)
        labels = train_set.labels
        if shuffled_labels:
            labels = labels[
                torch.randperm(
                    len(labels), generator=torch.Generator().manual_seed(seed + 12345)
                )
            ]
        return (train_set.images, labels), (test_set.images, test_set.labels)

    name = "mnist_cnn_shuffled" if shuffled_labels else "mnist_cnn"
    result = train_cached(
        name,
        _small.MnistCNN,
        make_data,
        config,
        data_spec=data,
        sources=[_small, _digits],
        use_cache=use_cache,
        progress=progress,
    )
    return _loaded(
        name,
        result,
        [str(d) for d in range(10)],
        _preprocess(1, (28, 28)),
        "features.conv2",
        data,
    )


# --------------------------------------------------------------------------------------
# Driving scenes: steering-angle regression (the GradSUM setting)

DRIVING_TRAIN, DRIVING_TEST = 1500, 300
DRIVING_CONFIG = TrainConfig(
    epochs=8, batch_size=32, lr=2e-3, task="regression", lr_schedule="cosine"
)


def _steering(
    name: str,
    head: str,
    seed: int,
    epochs: int | None,
    checkpoints: bool,
    use_cache: bool,
    progress: bool,
) -> LoadedModel:
    # checkpoints default to True for the steering networks: the GradSUM chapter follows
    # them epoch by epoch, and a cached run without checkpoints would have to train
    # again for it.
    config = _config(DRIVING_CONFIG, seed, epochs, checkpoints)
    data = {
        "world": "driving_scenes",
        "train": [DRIVING_TRAIN, TRAIN_SEED],
        "heldout": [DRIVING_TEST, HELDOUT_SEED],
    }
    result = train_cached(
        name,
        lambda: _small.SteeringCNN(head=head),
        lambda: world_split(_driving.driving_scenes, DRIVING_TRAIN, DRIVING_TEST),
        config,
        data_spec=data,
        sources=[_small, _driving, _world_base],
        use_cache=use_cache,
        progress=progress,
    )
    spread = float(_driving.steering_angle(torch.tensor(_driving.MAX_CURVATURE)))
    # The error of always predicting 0 (the mean of a uniform target on [-a, a]) is a /
    # 2: the baseline to beat.
    return _loaded(
        name,
        result,
        None,
        _preprocess(3, (64, 128)),
        "features.block4",
        data,
        {"units": "degrees", "baseline_mae": spread / 2},
    )


@register(
    "steering_cnn",
    "PilotNet-style steering-angle regression CNN trained on driving scenes",
)
def steering_cnn(
    seed: int = 0,
    epochs: int | None = None,
    checkpoints: bool = True,
    use_cache: bool = True,
    progress: bool = True,
) -> LoadedModel:
    """:class:`~xaisurvey.models.small.SteeringCNN` (dense head) on
    :func:`~xaisurvey.data.worlds.driving_scenes`."""
    return _steering(
        "steering_cnn", "dense", seed, epochs, checkpoints, use_cache, progress
    )


@register(
    "steering_cnn_gap",
    "the steering CNN with a global-average-pooling head (a second architecture)",
)
def steering_cnn_gap(
    seed: int = 0,
    epochs: int | None = None,
    checkpoints: bool = True,
    use_cache: bool = True,
    progress: bool = True,
) -> LoadedModel:
    """:class:`~xaisurvey.models.small.SteeringCNN` with ``head="gap"`` on the same
    data."""
    return _steering(
        "steering_cnn_gap", "gap", seed, epochs, checkpoints, use_cache, progress
    )


# --------------------------------------------------------------------------------------
# Terrain: traversability of height-map patches (the quarry robot)

TERRAIN_TRAIN, TERRAIN_TEST = 3000, 600
TERRAIN_CONFIG = TrainConfig(epochs=6, batch_size=64, lr=3e-3, lr_schedule="cosine")


@register(
    "terrain_cnn",
    "traversability CNN on 32x32 height-map patches, labels from the geometric rule",
)
def terrain_cnn(
    seed: int = 0,
    epochs: int | None = None,
    checkpoints: bool = False,
    use_cache: bool = True,
    progress: bool = True,
) -> LoadedModel:
    """:class:`~xaisurvey.models.small.TerrainCNN` on
    :func:`~xaisurvey.data.worlds.terrain_patches` (balanced)."""
    config = _config(TERRAIN_CONFIG, seed, epochs, checkpoints)
    data = {
        "world": "terrain_patches",
        "train": [TERRAIN_TRAIN, TRAIN_SEED],
        "heldout": [TERRAIN_TEST, HELDOUT_SEED],
    }
    result = train_cached(
        "terrain_cnn",
        lambda: _small.TerrainCNN(_terrain.SIZE),
        lambda: world_split(_terrain.terrain_patches, TERRAIN_TRAIN, TERRAIN_TEST),
        config,
        data_spec=data,
        sources=[_small, _terrain, _world_base],
        use_cache=use_cache,
        progress=progress,
    )
    return _loaded(
        "terrain_cnn",
        result,
        list(_terrain.TERRAIN_CLASSES),
        _preprocess(1, (32, 32)),
        "features.block3",
        data,
    )


# --------------------------------------------------------------------------------------
# Look-alikes: distractors as salient as the target (the evaluation battery's
# localisation test)

LOOKALIKES_TRAIN, LOOKALIKES_TEST = 3000, 300
LOOKALIKES_CONFIG = TrainConfig(epochs=16, batch_size=32, lr=3e-3, lr_schedule="cosine")


@register(
    "lookalikes_gap_cnn",
    "GAP-head CNN classifying the target shape among same-coloured circles (look-alikes"
    " world)",
)
def lookalikes_gap_cnn(
    seed: int = 0,
    epochs: int | None = None,
    checkpoints: bool = False,
    use_cache: bool = True,
    progress: bool = True,
) -> LoadedModel:
    """:class:`~xaisurvey.models.small.GapCNN` on
    :func:`~xaisurvey.data.worlds.lookalikes` (64x64, 3 classes)."""
    _lookalikes = importlib.import_module("xaisurvey.data.worlds.lookalikes")

    config = _config(LOOKALIKES_CONFIG, seed, epochs, checkpoints)
    data = {
        "world": "lookalikes",
        "train": [LOOKALIKES_TRAIN, TRAIN_SEED],
        "heldout": [LOOKALIKES_TEST, HELDOUT_SEED],
    }
    result = train_cached(
        "lookalikes_gap_cnn",
        lambda: _small.GapCNN(len(_lookalikes.LOOKALIKE_CLASSES)),
        lambda: world_split(_lookalikes.lookalikes, LOOKALIKES_TRAIN, LOOKALIKES_TEST),
        config,
        data_spec=data,
        sources=[_small, _lookalikes, _shapes, _world_base],
        use_cache=use_cache,
        progress=progress,
    )
    return _loaded(
        "lookalikes_gap_cnn",
        result,
        list(_lookalikes.LOOKALIKE_CLASSES),
        _preprocess(3, (64, 64)),
        "features.block4",
        data,
        {"fc": "fc"},
    )


# --------------------------------------------------------------------------------------
# A memoriser of shuffled MNIST labels (the data randomisation test of Adebayo et al.
# 2018)

MEMORISER_TRAIN = 500
MEMORISER_CONFIG = TrainConfig(epochs=60, batch_size=50, lr=2e-3)


@register(
    "mnist_memoriser",
    "the MNIST CNN trained to memorise shuffled labels of 500 digits (data"
    " randomisation)",
)
def mnist_memoriser(
    seed: int = 0,
    epochs: int | None = None,
    checkpoints: bool = False,
    use_cache: bool = True,
    progress: bool = True,
) -> LoadedModel:
    """:class:`~xaisurvey.models.small.MnistCNN` trained on the first
    :data:`MEMORISER_TRAIN` digits of ``mnist("train")`` with their labels permuted at
    random, until it fits them.

    ``info["fit_accuracy"]`` is the accuracy on those shuffled training labels in
    evaluation mode (the data randomisation test needs a network that really fits them,
    at least 95 %); ``info["heldout_accuracy"]`` on the true held-out labels is near
    chance (10 %).
    """
    from ..data import digits as _digits

    config = _config(MEMORISER_CONFIG, seed, epochs, checkpoints)
    data = {
        "dataset": "mnist",
        "first": MEMORISER_TRAIN,
        "test_size": MNIST_TEST_SIZE,
        "permutation_seed": seed + 12345,
    }

    def make_data() -> tuple[Any, Any]:
        train_set = _digits.mnist("train", test_size=MNIST_TEST_SIZE)
        test_set = _digits.mnist("test", test_size=MNIST_TEST_SIZE)
        images, labels = (
            train_set.images[:MEMORISER_TRAIN],
            train_set.labels[:MEMORISER_TRAIN],
        )
        permutation = torch.randperm(
            MEMORISER_TRAIN, generator=torch.Generator().manual_seed(seed + 12345)
        )
        return (images, labels[permutation]), (test_set.images, test_set.labels)

    result = train_cached(
        "mnist_memoriser",
        _small.MnistCNN,
        make_data,
        config,
        data_spec=data,
        sources=[_small, _digits],
        use_cache=use_cache,
        progress=progress,
    )
    fit_data = make_data()[0]
    _, fit_accuracy = _train.evaluate(result.model, fit_data)
    return _loaded(
        "mnist_memoriser",
        result,
        [str(d) for d in range(10)],
        _preprocess(1, (28, 28)),
        "features.conv2",
        data,
        {"fit_accuracy": fit_accuracy, "fit_size": MEMORISER_TRAIN},
    )
