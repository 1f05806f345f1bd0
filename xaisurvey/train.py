"""Training for the book's small CNNs: seeded, with a progress bar, a per-epoch history,
optional per-epoch checkpoints, and a cache of trained weights keyed by the
configuration and the code.

- :func:`fit` trains a model on tensors held in memory (mini-batch Adam or SGD,
  cross-entropy for classification, mean squared error for regression) and returns the
  model in eval mode and its :class:`History`.
- :func:`train_cached` wraps :func:`fit`: it builds the model and the data only when no
  cached result matches, and stores the weights, the history and the checkpoints under
  ``XAISURVEY_CACHE`` (default ``~/.cache/xaisurvey``) in ``trained/<name>-<key>.pt``.
  The key is a SHA-256 of the configuration, the data description, the PyTorch version
  and the source code of the files that define the model, the data and this module, so
  any change retrains.

Determinism: the weights' initialisation, the batch order and any dropout are drawn from
generators seeded with ``config.seed`` (the caller's global RNG state is restored
afterwards), and deterministic kernels are requested, and training runs on a fixed
number of CPU threads (``config.threads``, 1 by default), so the same configuration
gives the same weights on the same kind of processor and PyTorch version, however many
cores the machine has.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .guard import model_guard

__all__ = [
    "TrainConfig",
    "History",
    "TrainResult",
    "fit",
    "train_cached",
    "cache_dir",
    "evaluate",
    "code_hash",
]

Task = Literal["classification", "regression"]
# a (images, targets) pair of tensors, or an object with .images and .targets
# (or .labels)
Data = Any


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Attributes:
        epochs: passes over the training data.
        batch_size: samples per step.
        lr: learning rate.
        optimizer: ``"adam"`` or ``"sgd"`` (with ``momentum``).
        weight_decay: L2 penalty (decoupled for Adam: AdamW).
        momentum: SGD momentum.
        task: ``"classification"`` (cross-entropy, metric = accuracy) or
            ``"regression"`` (mean squared error on a single output, metric = mean
            absolute error).
        seed: seeds the initialisation (in :func:`train_cached`), the batch order and
            dropout.
        checkpoints: keep a copy of the weights before training and after every epoch.
        lr_schedule: ``"constant"`` or ``"cosine"`` (cosine decay to 0 over all steps).
        threads: CPU threads PyTorch uses while training (restored afterwards). The
            default, 1, makes the weights independent of the machine's core count and of
            what else runs: the number of threads changes the order of floating-point
            sums, and over many steps that changes the trained network (the road CNN
            trained on 1 and on 2 threads differed by up to 0.58 in a weight and by 1.25
            points of held-out accuracy). ``None`` keeps PyTorch's current setting.
    """

    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: Literal["adam", "sgd"] = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    task: Task = "classification"
    seed: int = 0
    checkpoints: bool = False
    lr_schedule: Literal["constant", "cosine"] = "constant"
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.threads is not None and (
            not isinstance(self.threads, int)
            or isinstance(self.threads, bool)
            or self.threads < 1
        ):
            raise ValueError(
                "TrainConfig.threads must be a positive int or None, got"
                f" {self.threads!r}"
            )
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"TrainConfig.{name} must be a positive int, got {value!r}"
                )
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be positive, got {self.lr!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(
                f"TrainConfig.optimizer must be 'adam' or 'sgd', got {self.optimizer!r}"
            )
        if self.task not in ("classification", "regression"):
            raise ValueError(
                "TrainConfig.task must be 'classification' or 'regression', got"
                f" {self.task!r}"
            )
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(
                "TrainConfig.lr_schedule must be 'constant' or 'cosine', got"
                f" {self.lr_schedule!r}"
            )
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(
                f"TrainConfig.seed must be a non-negative int, got {self.seed!r}"
            )


@dataclass
class History:
    """What happened during training, one entry per epoch.

    Attributes:
        metric: ``"accuracy"`` (classification) or ``"mae"`` (regression: mean absolute
            error).
        train_loss, train_metric: means over each epoch's training batches (in train
            mode, while learning).
        val_loss, val_metric: the same on the held-out data (empty when there is none).
        epoch_seconds: wall time of each epoch (training steps and both evaluations).
        checkpoints: ``checkpoints[0]`` the weights before training, ``checkpoints[k]``
            after epoch ``k`` (state dicts on the CPU); empty unless
            ``TrainConfig.checkpoints``.
        seconds: total training time (the time of the run that trained, also when loaded
            from cache).
        threads: the CPU threads PyTorch used for that run.
        from_cache: whether this history was loaded from the cache.
    """

    metric: str
    train_loss: list[float] = field(default_factory=list)
    train_metric: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    checkpoints: list[dict[str, Tensor]] = field(default_factory=list)
    seconds: float = 0.0
    threads: int = 0
    from_cache: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (checkpoints included) for saving."""
        return asdict(self)


@dataclass
class TrainResult:
    """A trained model with its history and the cache file it lives in (``None`` if not
    cached)."""

    model: nn.Module
    history: History
    path: Path | None
    key: str


def _tensors(data: Data, what: str) -> tuple[Tensor, Tensor]:
    if isinstance(data, (tuple, list)) and len(data) == 2:
        images, targets = data
    elif hasattr(data, "images") and (
        hasattr(data, "targets") or hasattr(data, "labels")
    ):
        images = data.images
        targets = data.targets if hasattr(data, "targets") else data.labels
    else:
        raise TypeError(
            f"{what}: expected an (images, targets) pair or an object with .images and"
            f" .targets, got {type(data).__name__}"
        )
    if not isinstance(images, Tensor) or not isinstance(targets, Tensor):
        raise TypeError(f"{what}: images and targets must be tensors")
    if images.ndim < 2 or targets.shape[:1] != images.shape[:1] or images.shape[0] == 0:
        raise ValueError(
            f"{what}: need N >= 1 images and N targets, got {tuple(images.shape)} and"
            f" {tuple(targets.shape)}"
        )
    if not images.is_floating_point():
        raise ValueError(
            f"{what}: images must be float tensors (in [0, 1]), got {images.dtype}"
        )
    return images, targets


def _loss_and_metric(
    output: Tensor, targets: Tensor, task: Task
) -> tuple[Tensor, Tensor]:
    """Summed loss and summed metric over the batch (divided by N by the caller)."""
    if task == "classification":
        if output.ndim != 2:
            raise ValueError(
                "a classifier must output (N, classes) logits, got"
                f" {tuple(output.shape)}"
            )
        return (
            F.cross_entropy(output, targets, reduction="sum"),
            (output.argmax(1) == targets).sum().float(),
        )
    prediction = output.reshape(output.shape[0], -1)
    if prediction.shape[1] != 1:
        raise ValueError(
            "a regression model must output one number per sample, got"
            f" {tuple(output.shape)}"
        )
    prediction = prediction[:, 0]
    targets = targets.to(prediction.dtype)
    return (
        F.mse_loss(prediction, targets, reduction="sum"),
        (prediction - targets).abs().sum(),
    )


@torch.no_grad()
def evaluate(
    model: nn.Module, data: Data, task: Task = "classification", batch_size: int = 256
) -> tuple[float, float]:
    """Mean loss and metric (accuracy, or mean absolute error for regression) of
    ``model`` on ``data``.

    The model runs in eval mode under :func:`~xaisurvey.guard.model_guard`: afterwards
    every module's own training flag (a frozen BatchNorm inside a training model stays
    frozen), every ``requires_grad``, ``.grad`` and buffer is as before, also after an
    error. Floating-point inputs are moved to the model's device and dtype.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> loss, acc = evaluate(
        ...     net, (torch.rand(8, 1, 2, 2), torch.zeros(8, dtype=torch.long))
        ... )
        >>> 0.0 <= acc <= 1.0
        True
    """
    images, targets = _tensors(data, "evaluate")
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"evaluate: model must be a torch.nn.Module, got {type(model).__name__}"
        )
    tensors = list(model.parameters()) + list(model.buffers())
    reference = next((t for t in tensors if t.is_floating_point()), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None else None
    loss_sum, metric_sum = 0.0, 0.0
    with model_guard(model, needs_grad=False, method="evaluate"):
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size].to(device)
            if dtype is not None and x.is_floating_point():
                x = x.to(dtype)
            y = targets[start : start + batch_size].to(device)
            loss, metric = _loss_and_metric(model(x), y, task)
            loss_sum += float(loss)
            metric_sum += float(metric)
    n = images.shape[0]
    return loss_sum / n, metric_sum / n


def fit(
    model: nn.Module,
    train_data: Data,
    val_data: Data | None = None,
    config: TrainConfig = TrainConfig(),
    *,
    progress: bool = True,
    description: str = "training",
) -> tuple[nn.Module, History]:
    """Train ``model`` in place on ``train_data``; return it (in eval mode) and its
    :class:`History`.

    Mini-batch training: each epoch visits the training samples in a seeded random
    order, in batches of ``config.batch_size``; the loss is cross-entropy on the logits
    (classification) or the mean squared error of the single output (regression); after
    each epoch the loss and the metric (accuracy or mean absolute error) are measured on
    the training and held-out data in eval mode (BatchNorm running statistics, no
    dropout); the training loss and metric are the running means over the epoch's
    batches (train mode), which saves a second pass over the data.

    Args:
        model: the network; it takes a batch of images (N, C, H, W) and returns
            (N, classes) logits, or (N,) / (N, 1) predictions for regression.
        train_data: an ``(images, targets)`` pair of tensors, or a set with ``.images``
            and ``.targets`` (a :class:`~xaisurvey.data.worlds.WorldSet`, an
            ``ImageSet``).
        val_data: the held-out data, same forms, or ``None``.
        config: the :class:`TrainConfig`.
        progress: show a tqdm progress bar (on stderr) over the epochs.
        description: the progress bar's label.

    Returns:
        ``(model, history)``.

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> x = torch.rand(64, 1, 4, 4); y = (x.mean((1, 2, 3)) > 0.5).long()
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
        >>> net, hist = fit(
        ...     net, (x, y), config=TrainConfig(epochs=2, batch_size=16), progress=False
        ... )
        >>> len(hist.train_loss), net.training
        (2, False)
    """
    from tqdm import tqdm

    if not isinstance(model, nn.Module):
        raise TypeError(f"fit: model must be an nn.Module, got {type(model).__name__}")
    images, targets = _tensors(train_data, "train_data")
    if config.task == "classification" and targets.dtype != torch.int64:
        raise ValueError(
            "train_data: classification targets must be int64 class indices, got"
            f" {targets.dtype}"
        )
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("fit: the model has no trainable parameters")
    device = params[0].device
    history = History(metric="accuracy" if config.task == "classification" else "mae")
    if config.optimizer == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.AdamW(
            params, lr=config.lr, weight_decay=config.weight_decay
        )
    else:
        optimizer = torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
    steps_per_epoch = -(-images.shape[0] // config.batch_size)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=config.epochs * steps_per_epoch
        )
        if config.lr_schedule == "cosine"
        else None
    )
    order_generator = torch.Generator().manual_seed(config.seed)
    if config.checkpoints:
        history.checkpoints.append(_cpu_copy(model.state_dict()))

    started = time.perf_counter()
    bar = tqdm(
        range(config.epochs), desc=description, disable=not progress, leave=False
    )
    caller_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    history.threads = torch.get_num_threads()
    # Dropout and other random layers draw from the global RNG: seed it, and give the
    # caller's back.
    with torch.random.fork_rng(devices=[]), _restore_threads(caller_threads):
        torch.manual_seed(config.seed)
        for _ in bar:
            epoch_start = time.perf_counter()
            model.train()
            loss_sum, metric_sum = 0.0, 0.0
            for batch in torch.randperm(
                images.shape[0], generator=order_generator
            ).split(config.batch_size):
                output = model(images[batch].to(device))
                loss, metric = _loss_and_metric(
                    output, targets[batch].to(device), config.task
                )
                optimizer.zero_grad(set_to_none=True)
                (loss / len(batch)).backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                loss_sum, metric_sum = loss_sum + float(
                    loss.detach()
                ), metric_sum + float(metric.detach())
            # Running means over the epoch's batches (train mode): a second pass would
            # double the cost.
            train_loss, train_metric = (
                loss_sum / images.shape[0],
                metric_sum / images.shape[0],
            )
            history.train_loss.append(train_loss)
            history.train_metric.append(train_metric)
            if val_data is not None:
                val_loss, val_metric = evaluate(model, val_data, config.task)
                history.val_loss.append(val_loss)
                history.val_metric.append(val_metric)
            if config.checkpoints:
                history.checkpoints.append(_cpu_copy(model.state_dict()))
            history.epoch_seconds.append(time.perf_counter() - epoch_start)
            shown = {"loss": f"{train_loss:.3f}", history.metric: f"{train_metric:.3f}"}
            if history.val_metric:
                shown["val_" + history.metric] = f"{history.val_metric[-1]:.3f}"
            bar.set_postfix(shown)
    bar.close()
    history.seconds = time.perf_counter() - started
    model.eval()
    return model, history


@contextlib.contextmanager
def _restore_threads(threads: int) -> Iterator[None]:
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _cpu_copy(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {key: value.detach().to("cpu", copy=True) for key, value in state.items()}


def cache_dir() -> Path:
    """Where trained weights are cached: ``$XAISURVEY_CACHE/trained`` (default
    ``~/.cache/xaisurvey/trained``)."""
    root = os.environ.get("XAISURVEY_CACHE") or str(
        Path.home() / ".cache" / "xaisurvey"
    )
    return Path(root).expanduser() / "trained"


def code_hash(
    sources: Iterable[ModuleType | Callable[..., Any] | type | str | Path],
) -> str:
    """SHA-256 of the source files of ``sources`` (modules, functions or classes, or
    file paths), plus this module's.

    Example:
        >>> len(code_hash([]))
        64
    """
    files: set[Path] = {Path(__file__).resolve()}
    for source in sources:
        if isinstance(source, (str, Path)):
            files.add(Path(source).resolve())
        else:
            path = inspect.getsourcefile(source)
            if path is None:
                raise ValueError(f"code_hash: no source file for {source!r}")
            files.add(Path(path).resolve())
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _cache_key(
    name: str, config: TrainConfig, data_spec: dict[str, Any], sources: Sequence[Any]
) -> str:
    description = {
        "name": name,
        # Checkpoints change what is kept, not the weights: one file serves runs with
        # and without them.
        "config": {k: v for k, v in asdict(config).items() if k != "checkpoints"},
        "data": data_spec,
        "torch": torch.__version__.split("+")[0],
        "code": code_hash(sources),
    }
    return hashlib.sha256(
        json.dumps(description, sort_keys=True, default=str).encode()
    ).hexdigest()[:20]


def train_cached(
    name: str,
    build_model: Callable[[], nn.Module],
    make_data: Callable[[], tuple[Data, Data | None]],
    config: TrainConfig,
    *,
    data_spec: dict[str, Any] | None = None,
    sources: Sequence[ModuleType | Callable[..., Any] | type | str | Path] = (),
    use_cache: bool = True,
    progress: bool = True,
) -> TrainResult:
    """Train ``build_model()`` on ``make_data()`` with :func:`fit`, or load the cached
    result of the same training.

    The cache key hashes ``name``, ``config``, ``data_spec`` (a JSON-able description of
    the data: world, sizes, seeds), the PyTorch version and the source of ``sources``
    (the files defining the model and the data; this module is always included), but not
    ``config.checkpoints``: a hit loads the weights (``strict=True``), the history and
    the checkpoints without building the data; a hit saved without checkpoints, when
    they are asked for, trains again (to the same weights) and saves them.

    Args:
        name: a short name for the file (``trained/<name>-<key>.pt``).
        build_model: makes the untrained model; called with the global RNG seeded by
            ``config.seed``.
        make_data: returns ``(train_data, val_data)``; called only on a cache miss.
        config: the :class:`TrainConfig`.
        data_spec: describes the data for the key.
        sources: modules / classes / functions / paths whose source code is part of the
            key.
        use_cache: ``False`` trains without reading or writing the cache.
        progress: show the tqdm bar while training.

    Returns:
        A :class:`TrainResult` (model in eval mode, history, cache path, key).

    Example:
        >>> result = train_cached(  # doctest: +SKIP
        ...     "tiny",
        ...     lambda: torch.nn.Linear(2, 2),
        ...     lambda: ((torch.rand(8, 2), torch.zeros(8).long()), None),
        ...     TrainConfig(epochs=1),
        ... )
    """
    key = _cache_key(name, config, data_spec or {}, sources)
    path = cache_dir() / f"{name}-{key}.pt"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model()
    saved = (
        torch.load(path, map_location="cpu", weights_only=True)
        if use_cache and path.is_file()
        else None
    )
    # A cached run without checkpoints cannot serve a request for them: train again
    # (same weights) and keep them.
    if saved is not None and not (
        config.checkpoints and not saved["history"]["checkpoints"]
    ):
        model.load_state_dict(saved["state_dict"], strict=True)
        history = History(**saved["history"])
        history.from_cache = True
        if not config.checkpoints:
            history.checkpoints = []
        model.eval()
        return TrainResult(model, history, path, key)
    train_data, val_data = make_data()
    model, history = fit(
        model, train_data, val_data, config, progress=progress, description=name
    )
    if not use_cache:
        return TrainResult(model, history, None, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(
        {"state_dict": _cpu_copy(model.state_dict()), "history": history.to_dict()},
        partial,
    )
    partial.replace(path)  # atomic: a concurrent build never reads half a file
    return TrainResult(model, history, path, key)
