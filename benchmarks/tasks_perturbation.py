"""Benchmark tasks of the perturbation family (issue 14): occlusion, RISE, LIME and KernelSHAP.

Floors: the same number of forward passes of the same batch size on perturbed images built
beforehand, with no bookkeeping (no masks, no baseline blending, no regression). Our methods
and captum's ``Occlusion``, ``Lime`` and ``KernelShap`` run with equal settings on the first
``IMAGES`` images of the benchmark batch (a perturbation method runs the model tens to thousands
of times per image; the small settings keep the whole benchmark within a few minutes):

* occlusion: window = stride = size / 4 (56 on 224 px), baseline 0: 16 windows + the original,
  17 forward rows per image; captum ``perturbations_per_eval`` chosen so its forward batches
  hold ``BATCH`` rows as ours do;
* RISE: ``SAMPLES`` masks on a 7 x 7 grid; LIME and KernelSHAP: ``SAMPLES`` coalitions of a
  4 x 4 grid of superpixels (``segments="grid"``; SLIC costs extra, see the chapter), baseline
  0; captum's ``Lime`` and ``KernelShap`` with their default kernels and solvers, the same
  feature mask, ``n_samples`` and batch.

``python benchmarks/tasks_perturbation.py --memory-sweep`` measures the peak extra memory of each
method at several ``batch_size`` values (one 112 x 112 image, 32 perturbed copies; occlusion:
a 20-pixel window and stride, 36 windows + 1), each in a
fresh process (peak RSS from ``/proc/self/status`` ``VmHWM`` after resetting it, minus the RSS
before the call, as ``attribution.py`` does).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

IMAGES = 2
BATCH = 16
SAMPLES = 16
TIME_TARGETS = {"occlusion": 1.05, "rise": 1.05, "lime": 1.05, "kernel_shap": 1.05}
MEMORY_TARGETS = {"occlusion": 1.10, "rise": 1.10, "lime": 1.10, "kernel_shap": 1.10}

FLOOR_OCCLUSION = "floor: forward passes of occlusion's copies"
FLOOR_SAMPLES = "floor: forward passes of SAMPLES copies"


def _grid(size: int, cells: int = 4) -> torch.Tensor:
    idx = torch.arange(size) * cells // size
    return idx[:, None] * cells + idx[None, :]


def _floor(model: torch.nn.Module, rows: torch.Tensor, batch: int):
    def run() -> object:
        with torch.no_grad():
            return [model(rows[start:start + batch]) for start in range(0, rows.shape[0], batch)]

    return run


def tasks(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, *, peers: bool) -> list:
    from attribution import Task  # noqa: E402  (benchmarks/attribution.py)

    from xaisurvey.attribution import kernel_shap, lime, occlusion, rise

    x, target = x[:IMAGES], target[:IMAGES]
    n, size = x.shape[0], x.shape[-1]
    window = size // 4
    targets = target.tolist()
    seg = _grid(size)
    generator = torch.Generator().manual_seed(0)
    occlusion_rows = n * ((size // window) ** 2 + 1)
    # The floors' inputs are built once, outside the timed call: only the forward passes are timed.
    occ_inputs = torch.rand((occlusion_rows, *x.shape[1:]), generator=generator)
    sample_inputs = torch.rand((n * SAMPLES, *x.shape[1:]), generator=generator)
    common = {"batch_size": BATCH}
    superpixels = {"segments": seg, "baseline": 0.0, "samples": SAMPLES}
    result = [
        Task(FLOOR_OCCLUSION, "floor", None, _floor(model, occ_inputs, BATCH)),
        Task(FLOOR_SAMPLES, "floor", None, _floor(model, sample_inputs, BATCH)),
        Task("occlusion", "ours", FLOOR_OCCLUSION,
             lambda: occlusion(model, x, targets, window=window, stride=window, baseline=0.0, **common)),
        Task("rise", "ours", FLOOR_SAMPLES, lambda: rise(model, x, targets, samples=SAMPLES, grid=7, **common)),
        Task("lime", "ours", FLOOR_SAMPLES, lambda: lime(model, x, targets, **superpixels, **common)),
        Task("kernel_shap", "ours", FLOOR_SAMPLES, lambda: kernel_shap(model, x, targets, **superpixels, **common)),
    ]
    if not peers:
        return result
    from captum.attr import KernelShap, Lime, Occlusion

    mask = seg[None, None].expand(n, 1, size, size)
    result += [
        Task("captum Occlusion", "captum", FLOOR_OCCLUSION,
             lambda: Occlusion(model).attribute(x, sliding_window_shapes=(3, window, window),
                                                strides=(3, window, window), baselines=0.0, target=target,
                                                perturbations_per_eval=BATCH // n)),
        Task("captum Lime", "captum", FLOOR_SAMPLES,
             lambda: Lime(model).attribute(x, target=target, baselines=0.0, feature_mask=mask, n_samples=SAMPLES,
                                           perturbations_per_eval=BATCH)),
        Task("captum KernelShap", "captum", FLOOR_SAMPLES,
             lambda: KernelShap(model).attribute(x, target=target, baselines=0.0, feature_mask=mask,
                                                 n_samples=SAMPLES, perturbations_per_eval=BATCH)),
    ]
    return result


# ------------------------------------------------------------------------------------------
# Peak memory at several batch sizes

SWEEP_BATCH_SIZES = (4, 8, 32)
SWEEP_COPIES = 32
SWEEP_SIZE = 112


def _sweep_call(name: str, batch_size: int):
    import torchvision

    from xaisurvey.attribution import kernel_shap, lime, occlusion, rise

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.rand((1, 3, SWEEP_SIZE, SWEEP_SIZE), generator=torch.Generator().manual_seed(0))
    seg = _grid(SWEEP_SIZE, 8)
    calls = {
        "occlusion": lambda: occlusion(model, x, 1, window=20, stride=20, baseline=0.0, batch_size=batch_size),
        "rise": lambda: rise(model, x, 1, samples=SWEEP_COPIES, batch_size=batch_size),
        "lime": lambda: lime(model, x, 1, samples=SWEEP_COPIES, segments=seg, batch_size=batch_size),
        "kernel_shap": lambda: kernel_shap(model, x, 1, samples=SWEEP_COPIES, segments=seg, batch_size=batch_size),
        "floor": lambda: _floor(model, torch.rand((SWEEP_COPIES, 3, SWEEP_SIZE, SWEEP_SIZE)), batch_size)(),
    }
    return calls[name]


def _sweep_child(name: str, batch_size: int) -> None:
    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from attribution import _proc_status_bytes, _reset_peak_rss

    call = _sweep_call(name, batch_size)
    call()  # warm-up
    _reset_peak_rss()
    before = _proc_status_bytes("VmRSS")
    call()
    print(json.dumps({"peak_extra_bytes": _proc_status_bytes("VmHWM") - before}))


def memory_sweep() -> dict[str, dict[int, float]]:
    """Peak extra memory (MiB) of each method at each batch size, each in a fresh process."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from attribution import MALLOC_ENV

    out: dict[str, dict[int, float]] = {}
    root = str(Path(__file__).resolve().parents[1])
    for name in ("floor", "occlusion", "rise", "lime", "kernel_shap"):
        out[name] = {}
        for batch_size in SWEEP_BATCH_SIZES:
            proc = subprocess.run([sys.executable, __file__, "--sweep-child", name, str(batch_size)],
                                  capture_output=True, text=True, check=False,
                                  env={**os.environ, **MALLOC_ENV, "PYTHONPATH": root})
            try:
                out[name][batch_size] = json.loads(proc.stdout.strip().splitlines()[-1])["peak_extra_bytes"] / 2**20
            except (IndexError, ValueError, KeyError):
                print(f"{name} at {batch_size} failed: {proc.stderr[-400:]}", file=sys.stderr)
                out[name][batch_size] = float("nan")
    return out


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--sweep-child":
        _sweep_child(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 2 and sys.argv[1] == "--memory-sweep":
        table = memory_sweep()
        print("| method | " + " | ".join(f"batch_size {b}" for b in SWEEP_BATCH_SIZES) + " |")
        print("|---|" + "---:|" * len(SWEEP_BATCH_SIZES))
        for name, row in table.items():
            print(f"| {name} | " + " | ".join(f"{row[b]:.0f} MiB" for b in SWEEP_BATCH_SIZES) + " |")
        results = Path(__file__).resolve().parent / "results"
        results.mkdir(exist_ok=True)
        (results / "perturbation_memory.json").write_text(json.dumps(table, indent=1))
    else:
        raise SystemExit("usage: tasks_perturbation.py --memory-sweep")
