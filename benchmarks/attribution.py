"""Benchmark the attribution methods against their floors and against the reference libraries.

Every method is timed in ONE process, interleaved (each repeat runs every task once, in a
rotating order, so slow phases of a busy machine hit all tasks alike), after a warm-up. Each
time is divided by the time of its *floor* in the same round, the least work the method has to
do, and the median of these per-round ratios is reported (with their quartiles):

* ``forward (no grad)`` for methods whose registry floor is ``"forward"`` (CAM, VisualBackProp);
* ``forward + backward to layer4`` (the graph is recorded from layer4 on; no weight gradients)
  for ``"backward_to_layer"`` (Grad-CAM and its gradient variants);
* ``forward + backward to input`` (no weight gradients) for ``"backward_to_input"`` (saliency,
  Guided Backprop, Guided Grad-CAM, ...);
* methods of n passes (SmoothGrad, Score-CAM, perturbation, Integrated Gradients) are timed by
  their family's module in ``FAMILY_MODULES``, against n passes of the same batch.

Our methods are read from the method registry (``xaisurvey.attribution.registry``) and run with
the options the book uses (``MethodSpec.defaults``).

Peers on the same model and inputs: captum (LayerGradCam + bilinear interpolation,
GuidedBackprop, GuidedGradCam), pytorch-grad-cam (GradCAM) and torch-cam (GradCAM). A peer that
registers hooks is constructed and released inside its timed call (its hooks would otherwise
slow down every other task); that construction is part of its cost.

Peak memory: each task in a fresh child process: one warm-up call, then the kernel's peak-RSS
mark is reset (Linux ``/proc/self/clear_refs``) and the peak resident set size during a second
call (``VmHWM``) minus the resident size before it is reported (elsewhere: the growth of
``ru_maxrss``, which misses peaks lower than earlier ones). The children run with a fixed glibc
mmap threshold (``MALLOC_ENV``) so that the resident size follows the live tensors instead of
the allocator's history. ``tracemalloc`` cannot see PyTorch's allocations and PyTorch has no CPU
allocator statistics, so this is the honest measure available.

Usage::

    python benchmarks/attribution.py                 # ResNet-18, batch 16 of 3x224x224, 2 threads, 20 rounds
    python benchmarks/attribution.py --quick         # batch 2 of 3x64x64, 5 repeats, 1 thread (smoke run)
    python benchmarks/attribution.py --only visual   # the tasks whose name contains "visual", and their floors

Results: printed, and saved as ``attribution.json`` and ``attribution.md`` in ``--out``
(default ``benchmarks/results/``, ignored by git).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torchvision
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a source checkout without installing
    sys.path.insert(0, str(ROOT))

from xaisurvey.attribution import registry  # noqa: E402

FLOOR_FORWARD = "forward (no grad)"
FLOOR_LAYER4 = "forward + backward to layer4"
FLOOR_INPUT = "forward + backward to input"


#: The targets of the issue that asked for this benchmark: time ratio to the floor (at most),
#: and peak memory at most 10% above the floor's, for our methods.
TIME_TARGETS = {"grad_cam": 1.05, "guided_backprop": 1.05, "guided_grad_cam": 1.10, "visual_backprop": 1.10}
MEMORY_TARGET = 1.10

#: Modules beside this file that add the tasks of one family of methods (their floors, our
#: methods and the peers'). Each defines ``tasks(model, x, target, *, peers) -> list[Task]`` and
#: may define ``TIME_TARGETS`` (merged into the table above) and ``MEMORY_TARGETS`` (task name ->
#: memory ratio target, for methods whose floor is not one pass).
FAMILY_MODULES: list[str] = ["tasks_lrp", "tasks_perturbation", "tasks_path", "tasks_cam"]
MEMORY_TARGETS: dict[str, float] = {}

#: glibc keeps freed blocks for reuse and raises its mmap threshold as large blocks are freed,
#: so without these settings the resident size during a call depends on the allocation history
#: (repeated runs of one task varied by +-30%). With a fixed threshold every block of 64 KiB or
#: more is its own mapping, returned on free: peak RSS follows the live tensors (runs agree within
#: 0.1%). Set for the memory child processes only; the timings run with the defaults.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


@dataclass
class Task:
    name: str
    group: str  # "floor", "ours" or the peer library
    floor: str | None
    fn: Callable[[], object]


def _floor_forward(model: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    def run() -> object:
        with torch.no_grad():
            return model(x)

    return run


def _frozen(model: nn.Module):
    """Parameters temporarily not requiring grad: the floors compute no weight gradients."""
    class _Ctx:
        def __enter__(self):
            self.flags = [p.requires_grad for p in model.parameters()]
            for p in model.parameters():
                p.requires_grad_(False)

        def __exit__(self, *exc):
            for p, flag in zip(model.parameters(), self.flags):
                p.requires_grad_(flag)

    return _Ctx()


def _floor_backward_to_layer(model: nn.Module, x: torch.Tensor, target: torch.Tensor, layer: nn.Module):
    def run() -> object:
        captured = {}

        def hook(_m, _i, out):
            captured["a"] = out.detach().requires_grad_(True)
            return captured["a"]

        handle = layer.register_forward_hook(hook)
        try:
            with _frozen(model):
                scores = model(x).gather(1, target.view(-1, 1)).sum()
                return torch.autograd.grad(scores, captured["a"])[0]
        finally:
            handle.remove()

    return run


def _floor_backward_to_input(model: nn.Module, x: torch.Tensor, target: torch.Tensor):
    def run() -> object:
        with _frozen(model):
            xg = x.detach().requires_grad_(True)
            scores = model(xg).gather(1, target.view(-1, 1)).sum()
            return torch.autograd.grad(scores, xg)[0]

    return run


def family_modules() -> list[object]:
    """The imported ``FAMILY_MODULES``; their time targets are merged into ``TIME_TARGETS``."""
    import importlib

    bench_dir = str(Path(__file__).resolve().parent)
    if bench_dir not in sys.path:
        sys.path.insert(0, bench_dir)
    modules = [importlib.import_module(name) for name in FAMILY_MODULES]
    for module in modules:
        TIME_TARGETS.update(getattr(module, "TIME_TARGETS", {}))
        MEMORY_TARGETS.update(getattr(module, "MEMORY_TARGETS", {}))
    return modules


def _registered(spec: registry.MethodSpec, model: nn.Module, x: torch.Tensor, targets: list[int]) -> Callable[[], object]:
    options = dict(spec.defaults)
    if spec.needs_layer:
        options["layer"] = "layer4"

    def run() -> object:
        return spec.function(model, x, targets, **options)

    return run


def build_tasks(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, peers: bool = True,
                families: bool = True) -> list[Task]:
    """Every timed task: the three floors, our registered single-pass methods, the family modules' tasks
    (n-pass floors, methods and peers), and (optionally) the peers of the single-pass methods."""
    targets = target.tolist()
    tasks = [
        Task(FLOOR_FORWARD, "floor", None, _floor_forward(model, x)),
        Task(FLOOR_LAYER4, "floor", None, _floor_backward_to_layer(model, x, target, model.layer4)),
        Task(FLOOR_INPUT, "floor", None, _floor_backward_to_input(model, x, target)),
    ]
    # Our single-pass methods come from the registry, with the options the book uses; methods
    # whose floor is n passes get their floors from their family's module (FAMILY_MODULES).
    single_pass = {"forward": FLOOR_FORWARD, "backward_to_layer": FLOOR_LAYER4, "backward_to_input": FLOOR_INPUT}
    for spec in registry.available():
        if spec.floor in single_pass:
            tasks.append(Task(spec.name, "ours", single_pass[spec.floor], _registered(spec, model, x, targets)))
    for module in family_modules() if families else []:
        tasks += module.tasks(model, x, target, peers=peers)
    if not peers:
        return tasks
    from captum.attr import GuidedBackprop, GuidedGradCam, LayerAttribution, LayerGradCam
    from pytorch_grad_cam import GradCAM as PgcGradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from torchcam.methods import GradCAM as TcGradCAM

    def captum_layer_gradcam() -> object:
        cam = LayerGradCam(model, model.layer4).attribute(x, target=target, relu_attributions=True)
        return LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")

    def pgc_gradcam() -> object:
        with PgcGradCAM(model=model, target_layers=[model.layer4]) as cam:
            out = cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets])
        model.zero_grad(set_to_none=True)  # it calls backward(), which fills the weights' .grad
        return out

    def torchcam_gradcam() -> object:
        extractor = TcGradCAM(model, target_layer="layer4")
        try:
            with torch.enable_grad():
                scores = model(x)
                return extractor(targets, scores)
        finally:
            extractor.remove_hooks()
            model.zero_grad(set_to_none=True)

    tasks += [
        Task("captum LayerGradCam", "captum", FLOOR_LAYER4, captum_layer_gradcam),
        Task("captum GuidedBackprop", "captum", FLOOR_INPUT, lambda: GuidedBackprop(model).attribute(x, target=target)),
        Task("captum GuidedGradCam", "captum", FLOOR_INPUT, lambda: GuidedGradCam(model, model.layer4).attribute(x, target=target)),
        Task("pytorch-grad-cam GradCAM", "pytorch-grad-cam", FLOOR_LAYER4, pgc_gradcam),
        Task("torch-cam GradCAM", "torch-cam", FLOOR_LAYER4, torchcam_gradcam),
    ]
    return tasks


def setup_inputs(batch: int, size: int, seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """ResNet-18 with random weights (seeded), eval mode; ``batch`` random images and targets."""
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(weights=None).eval()
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, size, size, generator=g)
    target = torch.randint(0, 1000, (batch,), generator=g)
    return model, x, target


#: The clocks a run can use: wall time, or the CPU time of this process (all its threads), which
#: other processes on a busy shared machine do not inflate by taking turns on the cores (they
#: still compete for caches and memory bandwidth, so it is not noise-free either). Use it with
#: ``--threads 1``: with more threads, OpenMP workers spin while they wait for work, and that
#: spinning counts as CPU time (a method with many small single-threaded steps looks slower).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def time_tasks(tasks: list[Task], repeats: int, warmup: int, clock: str = "wall") -> dict[str, list[float]]:
    """Run every task ``warmup`` times, then ``repeats`` rounds, each round all tasks in a rotated order."""
    now = CLOCKS[clock]
    for task in tasks:
        for _ in range(warmup):
            task.fn()
    times: dict[str, list[float]] = {t.name: [] for t in tasks}
    for r in range(repeats):
        order = tasks[r % len(tasks):] + tasks[: r % len(tasks)]
        for task in order:
            start = now()
            task.fn()
            times[task.name].append(now() - start)
    return times


def _maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB


def _proc_status_bytes(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _memory_child(name: str, batch: int, size: int, threads: int) -> None:
    torch.set_num_threads(threads)
    model, x, target = setup_inputs(batch, size)
    ours = {t.name: t for t in build_tasks(model, x, target, peers=False)}
    # Importing the peer libraries only when a peer is measured keeps the other children quick.
    task = ours.get(name) or next(t for t in build_tasks(model, x, target) if t.name == name)
    task.fn()  # warm-up: lazy initialisation is not part of the method's working memory
    if _reset_peak_rss() and _proc_status_bytes("VmRSS") is not None:
        # Peak resident memory during the call minus resident memory before it.
        before = _proc_status_bytes("VmRSS")
        task.fn()
        extra = _proc_status_bytes("VmHWM") - before
    else:  # no resettable peak: growth of the process's all-time peak (0 if imports peaked higher)
        before = _maxrss_bytes()
        task.fn()
        extra = _maxrss_bytes() - before
    print(json.dumps({"peak_extra_bytes": max(extra, 0)}))


def measure_memory(names: list[str], batch: int, size: int, threads: int) -> dict[str, int | None]:
    """Peak-RSS growth of one call of each task, each in a fresh process."""
    result: dict[str, int | None] = {}
    for name in names:
        cmd = [sys.executable, __file__, "--memory-child", name, "--batch", str(batch), "--size", str(size), "--threads", str(threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ, **MALLOC_ENV})
        try:
            result[name] = int(json.loads(proc.stdout.strip().splitlines()[-1])["peak_extra_bytes"])
        except (IndexError, ValueError, KeyError):
            print(f"memory measurement failed for {name}: {proc.stderr[-500:]}", file=sys.stderr)
            result[name] = None
    return result


def _machine() -> dict[str, object]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip())
    except OSError:
        commit, dirty = "", False
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "load_average_1min_before": os.getloadavg()[0],
    }


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarise(tasks: list[Task], times: dict[str, list[float]], memory: dict[str, int | None]) -> list[dict[str, object]]:
    """One row per task. The ratio to the floor is the median over rounds of (task time / floor
    time in the same round): a slow phase of the machine that spans a round cancels out, which
    the ratio of the two medians does not do; that ratio and the quartiles of the per-round
    ratios are kept as well."""
    medians = {name: statistics.median(values) for name, values in times.items()}
    rows = []
    for task in tasks:
        floor = task.floor
        if floor:
            per_round = [t / f for t, f in zip(times[task.name], times[floor])]
            ratio, ratio_of_medians = statistics.median(per_round), medians[task.name] / medians[floor]
            q1, q3 = _quantile(per_round, 0.25), _quantile(per_round, 0.75)
        else:
            ratio = ratio_of_medians = q1 = q3 = 1.0
        mem, floor_mem = memory.get(task.name), memory.get(floor or task.name)
        mem_ratio = None if (mem is None or not floor_mem) else mem / floor_mem
        time_target = TIME_TARGETS.get(task.name) if task.group == "ours" else None
        memory_target = MEMORY_TARGETS.get(task.name, MEMORY_TARGET) if task.group == "ours" and task.name in TIME_TARGETS else None
        rows.append(
            {
                "task": task.name,
                "group": task.group,
                "floor": floor or "",
                "median_s": medians[task.name],
                "min_s": min(times[task.name]),
                "ratio_to_floor": ratio,
                "ratio_q1": q1,
                "ratio_q3": q3,
                "ratio_of_medians": ratio_of_medians,
                "time_target": time_target,
                "time_target_met": None if time_target is None else ratio <= time_target,
                # Decided when the middle half of the rounds lies on one side of the target.
                "time_target_decided": None if time_target is None else (q3 <= time_target or q1 > time_target),
                "peak_extra_mib": None if mem is None else mem / 2**20,
                "memory_ratio_to_floor": mem_ratio,
                "memory_target": memory_target,
                "memory_target_met": None if (memory_target is None or mem_ratio is None) else mem_ratio <= memory_target,
            }
        )
    return rows


def _cells(row: dict[str, object]) -> list[str]:
    def target(value: object, met: object, decided: object = True) -> str:
        if value is None:
            return "-"
        verdict = "not measured" if met is None else "met" if met else "missed"
        return f"<= {value:.2f} ({verdict}{'' if decided else ', within noise'})"

    mem = "n/a" if row["peak_extra_mib"] is None else f"{row['peak_extra_mib']:.0f}"
    mem_ratio = "n/a" if row["memory_ratio_to_floor"] is None else f"{row['memory_ratio_to_floor']:.2f}"
    spread = f"{row['ratio_q1']:.2f}-{row['ratio_q3']:.2f}" if row["floor"] else "-"
    return [str(row["task"]), str(row["group"]), str(row["floor"] or "-"), f"{row['median_s']:.3f}",
            f"{row['ratio_to_floor']:.2f}", spread,
            target(row["time_target"], row["time_target_met"], row["time_target_decided"]),
            mem, mem_ratio, target(row["memory_target"], row["memory_target_met"])]


HEADER = ["task", "library", "floor", "median (s)", "ratio to floor", "ratio, middle half of rounds",
          "time target", "peak extra memory (MiB)", "memory ratio", "memory target"]


def to_markdown(rows: list[dict[str, object]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|---|---|---|" + "---:|" * (len(HEADER) - 3)]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in rows]
    return "\n".join(lines)


def to_html(rows: list[dict[str, object]]) -> str:
    """The same table as :func:`to_markdown`, as HTML (for notebook and book pages)."""
    import html

    out = ["<table>", "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in HEADER) + "</tr></thead>", "<tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(row)) + "</tr>")
    out += ["</tbody>", "</table>"]
    return "\n".join(out)


def select_tasks(tasks: list[Task], only: list[str] | None) -> list[Task]:
    """The tasks whose name contains one of the ``only`` substrings (case-insensitive), plus their floors."""
    if not only:
        return tasks
    wanted = [t for t in tasks if any(o.lower() in t.name.lower() for o in only)]
    if not wanted:
        raise SystemExit(f"--only {' '.join(only)}: no task matches; tasks: {', '.join(t.name for t in tasks)}")
    names = {t.name for t in wanted} | {t.floor for t in wanted if t.floor}
    return [t for t in tasks if t.name in names]


def plot_ratios(rows: list[dict[str, object]], *, title: str = "") -> object:
    """Each task's time ratio to its floor: the median over rounds (dot) and the middle half of
    the rounds (bar), ours and the peers, grouped by floor, with the targets (ticks)."""
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r["floor"]]
    floors = list(dict.fromkeys(str(r["floor"]) for r in shown))
    shown.sort(key=lambda r: (floors.index(str(r["floor"])), r["group"] != "ours", str(r["task"])))
    fig, ax = plt.subplots(figsize=(6.4, 0.28 * len(shown) + 1.0))
    y = list(range(len(shown)))[::-1]
    for yi, row in zip(y, shown):
        colour = "tab:blue" if row["group"] == "ours" else "tab:gray"
        ax.plot([row["ratio_q1"], row["ratio_q3"]], [yi, yi], color=colour, lw=3, alpha=0.45, solid_capstyle="butt")
        ax.plot(row["ratio_to_floor"], yi, "o", color=colour, ms=4)
        if row["time_target"] is not None:
            ax.plot(row["time_target"], yi, "|", color="tab:red", ms=10, mew=1.5)
    ax.set_yticks(y, [str(r["task"]) for r in shown], fontsize=7)
    for label, row in zip(ax.get_yticklabels(), shown):
        label.set_color("black" if row["group"] == "ours" else "dimgray")
    ax.axvline(1.0, color="black", lw=0.6)
    ax.set_xscale("log")
    from matplotlib.ticker import FormatStrFormatter, LogLocator

    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 1.5, 2.0, 3.0, 5.0)))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(FormatStrFormatter(""))
    ax.set_xlabel("time / floor time (log scale)")
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def to_compact_html(rows: list[dict[str, object]]) -> str:
    """A narrow table: task, library, floor, median time, ratio with its quartiles, memory ratio."""
    import html

    head = ["task", "library", "floor", "median (ms)", "time / floor", "memory / floor"]
    out = ["<table class=\"xaisurvey-compact\">", "<thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead>", "<tbody>"]
    for r in rows:
        ratio = f"{r['ratio_to_floor']:.2f} ({r['ratio_q1']:.2f}-{r['ratio_q3']:.2f})" if r["floor"] else "1"
        mem = "-" if r["memory_ratio_to_floor"] is None else f"{r['memory_ratio_to_floor']:.2f}"
        cells = [str(r["task"]), str(r["group"]), str(r["floor"] or "-"), f"{1000 * float(r['median_s']):.0f}", ratio, mem]
        out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return "\n".join(out + ["</tbody>", "</table>"])


SINGLE_PASS_FLOORS = (FLOOR_FORWARD, FLOOR_LAYER4, FLOOR_INPUT)


def run(batch: int, size: int, repeats: int, warmup: int, threads: int, memory: bool | str, peers: bool = True,
        only: list[str] | None = None, clock: str = "wall", scope: str = "all") -> dict[str, object]:
    """Run the benchmark and return the results (config, machine, rows, raw times).

    ``memory``: ``True`` measures every task's peak memory (one child process each),
    ``"single-pass"`` only the single-pass floors and the tasks measured against them (the
    n-pass families report their memory by ``batch_size`` in their own modules), ``False`` none.
    ``scope="single-pass"`` times only the registered single-pass methods, their floors and
    their peers, without the family modules (the book's in-build run; the families need
    minutes per round).
    """
    torch.set_num_threads(threads)
    machine = _machine()
    model, x, target = setup_inputs(batch, size)
    tasks = select_tasks(build_tasks(model, x, target, peers=peers, families=scope == "all"), only)
    if scope == "single-pass":
        tasks = [t for t in tasks if t.name in SINGLE_PASS_FLOORS or t.floor in SINGLE_PASS_FLOORS]
    elif scope != "all":
        raise ValueError(f"scope must be 'all' or 'single-pass', got {scope!r}")
    with warnings.catch_warnings():
        # captum announces, on every call, that it set requires_grad and hooks ReLUs: known, not news.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"captum\.")
        times = time_tasks(tasks, repeats, warmup, clock)
    if memory == "single-pass":
        measured = [t.name for t in tasks if t.name in SINGLE_PASS_FLOORS or t.floor in SINGLE_PASS_FLOORS]
    else:
        measured = [t.name for t in tasks] if memory else []
    mem = measure_memory(measured, batch, size, threads) if measured else {}
    machine["load_average_1min_after"] = os.getloadavg()[0]
    return {
        "config": {"model": "torchvision resnet18, random init (seed 0)", "batch": batch, "size": size,
                   "repeats": repeats, "warmup": warmup, "threads": threads, "only": only or "all tasks", "clock": clock,
                   "memory": ("peak RSS (VmHWM after a reset) minus RSS before one call, after a warm-up call, in a fresh process "
                              "with a fixed glibc mmap threshold") if memory else "not measured"},
        "machine": machine,
        "rows": summarise(tasks, times, mem),
        "times_s": times,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true",
                        help="batch 2 of 3x64x64, 5 repeats, 1 warm-up, 1 thread, no memory (a smoke run: ratios are indicative only)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time (default) or this process's CPU time (steadier on a shared machine; "
                             "use with --threads 1)")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only the tasks whose name contains one of these strings (and their floors)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        _memory_child(args.memory_child, args.batch, args.size, args.threads)
        return 0
    if args.quick:
        # One thread: tiny tensors spend more time in thread-pool hand-offs than in arithmetic.
        args.batch, args.size, args.repeats, args.warmup, args.threads, args.no_memory = 2, 64, 5, 1, 1, True
    results = run(args.batch, args.size, args.repeats, args.warmup, args.threads, memory=not args.no_memory,
                  only=args.only, clock=args.clock)
    table = to_markdown(results["rows"])
    print(json.dumps(results["machine"], indent=1))
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "attribution.json").write_text(json.dumps(results, indent=1))
    cfg = results["config"]
    header = (f"ResNet-18 (random init), batch {cfg['batch']} of 3x{cfg['size']}x{cfg['size']}, {cfg['threads']} threads, "
              f"{cfg['repeats']} interleaved rounds after {cfg['warmup']} warm-up; ratio = median over rounds of task time / floor time in that round; "
              f"{results['machine']['date']}, commit {results['machine']['commit']}, {results['machine']['cpu']}.\n\n")
    (args.out / "attribution.md").write_text(header + table + "\n")
    print(f"saved {args.out / 'attribution.json'} and {args.out / 'attribution.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
