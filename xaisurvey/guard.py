"""The model guard: run code on a user's model without leaving a trace on it.

Every entry point of the package that runs a user's model (attribution methods,
evaluation, feature capture, feature visualisation, ``train.evaluate``) goes through
:func:`model_guard`. On exit, also after an error, the model is exactly as it was:

* every module's own ``training`` flag (a frozen BatchNorm inside a training model stays
  frozen; ``model.train(flag)`` would overwrite it);
* every parameter's ``requires_grad`` and ``.grad`` (the same tensor object, with its
  values: with ``freeze_parameters=False`` a backward pass inside the block would add to
  it in place);
* every buffer's values (BatchNorm running statistics, ``num_batches_tracked``);
* no hook left: every handle appended to the list the block receives is removed.

Calls on the *same* model from several threads are serialised by a per-model lock (the
guard changes module flags, which are shared state); different models run concurrently.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
import weakref
from typing import Iterator

import torch
from torch import nn

__all__ = [
    "model_guard",
    "batch_statistics_layers",
    "ModelStateWarning",
    "BatchDependenceWarning",
]


class ModelStateWarning(UserWarning):
    """Something about the model's state makes a result less trustworthy than it
    looks."""


class BatchDependenceWarning(ModelStateWarning):
    """A normalisation layer uses batch statistics, so one image's result depends on the
    others."""


_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.RLock]" = (
    weakref.WeakKeyDictionary()
)
_LOCKS_LOCK = threading.Lock()


def _lock_for(model: nn.Module) -> threading.RLock:
    with _LOCKS_LOCK:
        lock = _LOCKS.get(model)
        if lock is None:
            # re-entrant: methods nest guards (SmoothGrad calls the gradient)
            lock = threading.RLock()
            _LOCKS[model] = lock
        return lock


def batch_statistics_layers(model: nn.Module) -> list[str]:
    """Names of the BatchNorm layers that normalise with the batch's statistics even in
    eval mode."""
    return [
        name or type(module).__name__
        for name, module in model.named_modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
        and module.running_mean is None
    ]


@contextlib.contextmanager
def model_guard(
    model: nn.Module,
    *,
    eval_mode: bool = True,
    freeze_parameters: bool = True,
    needs_grad: bool = True,
    method: str = "xaisurvey",
) -> Iterator[list]:
    """Run a block on ``model`` and restore the model afterwards, even after an error.

    Args:
        model: the user's network.
        eval_mode: put every module in eval mode inside the block (BatchNorm uses its
            running statistics, dropout is off, so each image of a batch is treated on
            its own).
        freeze_parameters: no parameter requires grad inside the block (attributions
            need gradients w.r.t. inputs or activations only; none are computed for the
            weights).
        needs_grad: the block computes gradients; it then runs under
            ``torch.enable_grad()`` (also inside the caller's ``torch.no_grad()``), and
            a call inside ``torch.inference_mode()`` is refused, since nothing can
            re-enable autograd there and every gradient would silently be missing.
        method: the caller's name, used in messages.

    Yields:
        A list; every hook handle appended to it is removed on exit.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        RuntimeError: ``needs_grad`` inside ``torch.inference_mode()``.

    Warns:
        BatchDependenceWarning: a BatchNorm layer has no running statistics
            (``track_running_stats=False``), so even in eval mode each image's result
            depends on the other images of the batch.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(
        ...     torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)
        ... ).train()
        >>> _ = net[1].eval()  # a frozen BatchNorm inside a training model
        >>> with model_guard(net) as handles:
        ...     handles.append(net.register_forward_hook(lambda m, i, o: None))
        ...     net.training
        False
        >>> net.training, net[1].training, len(net._forward_hooks)
        (True, False, 0)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"{method}: model must be a torch.nn.Module, got {type(model).__name__}"
        )
    if needs_grad and torch.is_inference_mode_enabled():
        raise RuntimeError(
            f"{method}: called inside torch.inference_mode(), where no gradient can be"
            " computed (torch.enable_grad() cannot undo it); call it outside inference"
            " mode"
        )
    lock = _lock_for(model)
    with lock:
        modes = [(module, module.training) for module in model.modules()]
        params = list(model.parameters())
        grad_flags = [p.requires_grad for p in params]
        grads = [p.grad for p in params]
        # With frozen parameters no gradient can accumulate into an existing .grad;
        # otherwise a backward pass inside the block adds to it in place, so its values
        # are kept too.
        saved_grads = [
            None if freeze_parameters or g is None else g.detach().clone()
            for g in grads
        ]
        buffers = [(b, b._version, b.detach().clone()) for b in model.buffers()]
        handles: list = []
        try:
            if eval_mode:
                model.eval()
                batch_layers = batch_statistics_layers(model)
                if batch_layers:
                    shown = ", ".join(batch_layers[:4]) + (
                        ", ..." if len(batch_layers) > 4 else ""
                    )
                    warnings.warn(
                        f"{method}: BatchNorm layer(s) {shown} keep no running"
                        " statistics (track_running_stats=False), so each image's"
                        " result depends on the other images in the batch; explain one"
                        " image per call for per-image results",
                        BatchDependenceWarning,
                        stacklevel=3,
                    )
            if freeze_parameters:
                for p in params:
                    p.requires_grad_(False)
            with torch.enable_grad() if needs_grad else contextlib.nullcontext():
                yield handles
        finally:
            for handle in handles:
                handle.remove()
            handles.clear()
            for module, mode in modes:
                module.training = mode
            for p, flag, grad, saved in zip(params, grad_flags, grads, saved_grads):
                p.requires_grad_(flag)
                p.grad = grad
                if saved is not None and not torch.equal(grad, saved):
                    with torch.no_grad():
                        grad.copy_(saved)
            with torch.no_grad():
                for buffer, version, saved in buffers:
                    # BatchNorm updates its running statistics without bumping _version,
                    # so the values are compared too; untouched buffers are not written
                    # (a write would bump the version and break a graph of the caller's
                    # that saved them).
                    if buffer._version != version or not torch.equal(buffer, saved):
                        buffer.copy_(saved)
