"""Benchmark tasks of the CAM family (issue 14): floors, our methods and the peers'.

* The gradient variants (Grad-CAM++, XGrad-CAM, LayerCAM, HiResCAM) are single-pass methods:
  the main script times them from the registry against ``forward + backward to layer4`` (the
  floor Grad-CAM is measured against); this module adds the peers' versions (pytorch-grad-cam
  ``GradCAMPlusPlus``, ``XGradCAM``, ``LayerCAM``, ``HiResCAM``; torch-cam ``GradCAMpp``,
  ``XGradCAM``, ``LayerCAM``) on the same floor.
* Score-CAM and Ablation-CAM run one forward pass per channel and image. To keep a round within
  seconds they explain the **first image** of the batch, for the model's top class on it, at ``layer2`` (128 channels; 28 x 28 at
  224 x 224): 128 forward passes of masked (or ablated) copies per call, in batches of
  ``BATCH_SIZE``. Their floor, ``n forward (layer2 channels)``, runs the same 128 rows in
  passes of the same batch size, building each batch from the image and doing nothing else.
  Peers on the same image, layer and batch size: pytorch-grad-cam ``ScoreCAM`` and
  ``AblationCAM``, torch-cam ``ScoreCAM``.

Peak memory at several ``batch_size`` values (each in a fresh process, as the main script's
memory children)::

    python benchmarks/tasks_cam.py --memory [--size 224] [--batch-sizes 8 16 32 64]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import torch

LAYER = "layer2"
BATCH_SIZE = 32
FLOOR_N = "n forward (layer2 channels)"

#: Time targets (ratio to the floor, at most): the issue's 1.05 for every CAM variant.
TIME_TARGETS = {name: 1.05 for name in
                ("grad_cam_plusplus", "xgrad_cam", "layer_cam", "hires_cam", "score_cam", "ablation_cam")}


def _floor_n_forward(model, image: torch.Tensor, channels: int, batch_size: int):
    def run() -> object:
        out = None
        with torch.no_grad():
            for start in range(0, channels, batch_size):
                rows = min(batch_size, channels - start)
                out = model(image.expand(rows, -1, -1, -1) * 1.0)  # a fresh batch, as every method builds one
        return out

    return run


def _channels(model, image: torch.Tensor) -> int:
    store = {}
    handle = getattr(model, LAYER).register_forward_hook(lambda m, i, o: store.update(k=o.shape[1]))
    try:
        with torch.no_grad():
            model(image)
    finally:
        handle.remove()
    return store["k"]


def tasks(model, x: torch.Tensor, target: torch.Tensor, *, peers: bool) -> list:
    from attribution import FLOOR_LAYER4, Task

    from xaisurvey.attribution import ablation_cam, score_cam

    image = x[:1]
    with torch.no_grad():
        first = model(image).argmax(dim=1).tolist()  # the top class: a positive score, as Ablation-CAM's y assumes
    channels = _channels(model, image)
    result = [
        Task(FLOOR_N, "floor", None, _floor_n_forward(model, image, channels, BATCH_SIZE)),
        Task("score_cam", "ours", FLOOR_N, lambda: score_cam(model, image, first, layer=LAYER, batch_size=BATCH_SIZE)),
        Task("ablation_cam", "ours", FLOOR_N, lambda: ablation_cam(model, image, first, layer=LAYER, batch_size=BATCH_SIZE)),
    ]
    if not peers:
        return result
    import pytorch_grad_cam as pgc
    import torchcam.methods as tcm
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    targets = target.tolist()

    def pgc_task(cls, inputs, labels, layer, **attributes):
        def run() -> object:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tqdm and numpy chatter
                with cls(model=model, target_layers=[layer]) as explainer:
                    for key, value in attributes.items():
                        setattr(explainer, key, value)
                    out = explainer(input_tensor=inputs, targets=[ClassifierOutputTarget(t) for t in labels])
            model.zero_grad(set_to_none=True)
            return out

        return run

    def tc_gradient(cls):
        def run() -> object:
            extractor = cls(model, target_layer="layer4")
            try:
                with torch.enable_grad():
                    scores = model(x)
                    return extractor(targets, scores)
            finally:
                extractor.remove_hooks()
                model.zero_grad(set_to_none=True)

        return run

    def tc_score_cam() -> object:
        extractor = tcm.ScoreCAM(model, target_layer=LAYER, batch_size=BATCH_SIZE)
        try:
            with torch.no_grad():
                model(image)
            return extractor(first)
        finally:
            extractor.remove_hooks()

    layer = getattr(model, LAYER)
    result += [
        Task("pytorch-grad-cam GradCAMPlusPlus", "pytorch-grad-cam", FLOOR_LAYER4,
             pgc_task(pgc.GradCAMPlusPlus, x, targets, model.layer4)),
        Task("pytorch-grad-cam XGradCAM", "pytorch-grad-cam", FLOOR_LAYER4, pgc_task(pgc.XGradCAM, x, targets, model.layer4)),
        Task("pytorch-grad-cam LayerCAM", "pytorch-grad-cam", FLOOR_LAYER4, pgc_task(pgc.LayerCAM, x, targets, model.layer4)),
        Task("pytorch-grad-cam HiResCAM", "pytorch-grad-cam", FLOOR_LAYER4, pgc_task(pgc.HiResCAM, x, targets, model.layer4)),
        Task("torch-cam GradCAMpp", "torch-cam", FLOOR_LAYER4, tc_gradient(tcm.GradCAMpp)),
        Task("torch-cam XGradCAM", "torch-cam", FLOOR_LAYER4, tc_gradient(tcm.XGradCAM)),
        Task("torch-cam LayerCAM", "torch-cam", FLOOR_LAYER4, tc_gradient(tcm.LayerCAM)),
        Task("pytorch-grad-cam ScoreCAM", "pytorch-grad-cam", FLOOR_N,
             pgc_task(pgc.ScoreCAM, image, first, layer, batch_size=BATCH_SIZE)),
        Task("torch-cam ScoreCAM", "torch-cam", FLOOR_N, tc_score_cam),
        Task("pytorch-grad-cam AblationCAM", "pytorch-grad-cam", FLOOR_N,
             lambda: pgc_task(pgc.AblationCAM, image, first, layer)()),
    ]
    return result


# --- peak memory at several batch sizes -----------------------------------------------------------

def _memory_child(method: str, batch_size: int, size: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import attribution as bench

    from xaisurvey.attribution import ablation_cam, score_cam

    torch.set_num_threads(1)
    model, x, _ = bench.setup_inputs(1, size)
    image = x[:1]
    with torch.no_grad():
        first = model(image).argmax(dim=1).tolist()
    if method == "floor":
        run = _floor_n_forward(model, image, _channels(model, image), batch_size)
    else:
        fn = {"score_cam": score_cam, "ablation_cam": ablation_cam}[method]

        def run() -> object:
            return fn(model, image, first, layer=LAYER, batch_size=batch_size)

    run()
    bench._reset_peak_rss()
    before = bench._proc_status_bytes("VmRSS")
    run()
    print(json.dumps({"peak_extra_bytes": max(bench._proc_status_bytes("VmHWM") - before, 0)}))


def measure_batch_sizes(size: int, batch_sizes: list[int]) -> dict[str, dict[int, float]]:
    """Peak extra memory (MiB) of one call, per method and batch size, each in a fresh process."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from attribution import MALLOC_ENV

    result: dict[str, dict[int, float]] = {}
    for method in ("floor", "score_cam", "ablation_cam"):
        for b in batch_sizes:
            cmd = [sys.executable, __file__, "--memory-child", method, "--batch-size", str(b), "--size", str(size)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ, **MALLOC_ENV})
            try:
                value = json.loads(proc.stdout.strip().splitlines()[-1])["peak_extra_bytes"] / 2**20
            except (IndexError, ValueError, KeyError):
                print(f"memory measurement failed for {method} {b}: {proc.stderr[-400:]}", file=sys.stderr)
                value = float("nan")
            result.setdefault(method, {})[b] = value
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CAM-family benchmark helpers")
    parser.add_argument("--memory", action="store_true", help="peak memory per batch_size")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args(argv)
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    if args.memory_child:
        _memory_child(args.memory_child, args.batch_size, args.size)
        return 0
    if args.memory:
        table = measure_batch_sizes(args.size, args.batch_sizes)
        print(f"peak extra memory (MiB), first image, {LAYER}, {args.size} x {args.size}")
        print("| batch_size | " + " | ".join(table) + " |")
        for b in args.batch_sizes:
            print(f"| {b} | " + " | ".join(f"{table[m][b]:.0f}" for m in table) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
