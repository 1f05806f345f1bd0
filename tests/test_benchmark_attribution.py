"""Smoke test of benchmarks/attribution.py: it runs at tiny size and writes its table (no timing claims)."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "attribution.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_attribution", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_benchmark_runs_and_writes_table(bench, tmp_path):
    import torch

    threads = torch.get_num_threads()
    try:
        assert bench.main(["--batch", "1", "--size", "32", "--repeats", "1", "--warmup", "0", "--threads", "1",
                           "--no-memory", "--out", str(tmp_path)]) == 0
    finally:
        torch.set_num_threads(threads)
    results = json.loads((tmp_path / "attribution.json").read_text())
    names = [row["task"] for row in results["rows"]]
    for expected in ("forward (no grad)", "grad_cam", "visual_backprop", "guided_grad_cam", "captum GuidedGradCam",
                     "pytorch-grad-cam GradCAM", "torch-cam GradCAM"):
        assert expected in names
    for row in results["rows"]:
        assert row["median_s"] > 0 and row["ratio_to_floor"] > 0
        if row["group"] == "floor":
            assert row["ratio_to_floor"] == 1.0
        else:
            assert row["floor"] in names
    table = (tmp_path / "attribution.md").read_text()
    assert "| visual_backprop | ours | forward (no grad) |" in table
    assert "<td>visual_backprop</td><td>ours</td>" in bench.to_html(results["rows"])
    assert results["config"]["batch"] == 1 and results["machine"]["torch_threads"] == 1


@pytest.mark.slow
def test_memory_measurement_in_child_process(bench):
    memory = bench.measure_memory(["forward (no grad)"], batch=1, size=32, threads=1)
    assert isinstance(memory["forward (no grad)"], int) and memory["forward (no grad)"] >= 0


def test_ratio_is_the_median_of_per_round_ratios(bench):
    """A slow phase that hits a task and its floor in the same round cancels in the per-round ratio."""
    floor = bench.Task("floor", "floor", None, lambda: None)
    method = bench.Task("grad_cam", "ours", "floor", lambda: None)
    # Round 2 ran at a third of the speed for both; the method costs 1.04x its floor in every round.
    times = {"floor": [1.0, 3.0, 1.0, 1.2], "grad_cam": [1.04, 3.12, 1.04, 1.248]}
    memory = {"floor": 100 * 2**20, "grad_cam": 120 * 2**20}
    floor_row, row = bench.summarise([floor, method], times, memory)
    assert row["ratio_to_floor"] == pytest.approx(1.04)
    assert row["ratio_q1"] == pytest.approx(1.04) and row["ratio_q3"] == pytest.approx(1.04)
    # The ratio of the medians mixes rounds: (1.04 + 1.248) / 2 over (1.0 + 1.2) / 2.
    assert row["ratio_of_medians"] == pytest.approx((1.04 + 1.248) / 2.2)
    assert row["time_target"] == 1.05 and row["time_target_met"] is True
    assert row["memory_ratio_to_floor"] == pytest.approx(1.2) and row["memory_target_met"] is False
    assert floor_row["ratio_to_floor"] == 1.0 and floor_row["time_target"] is None
    assert "<= 1.05 (met)" in bench.to_markdown([floor_row, row])
    assert "<= 1.10 (missed)" in bench.to_markdown([floor_row, row])
    # A target inside the middle half of the per-round ratios is met or missed "within noise".
    noisy = {"floor": [1.0, 1.0, 1.0, 1.0], "grad_cam": [0.98, 1.03, 1.06, 1.09]}
    noisy_row = bench.summarise([floor, method], noisy, {})[1]
    assert noisy_row["ratio_to_floor"] == pytest.approx(1.045) and noisy_row["time_target_met"] is True
    assert noisy_row["time_target_decided"] is False
    assert "<= 1.05 (met, within noise)" in bench.to_markdown([noisy_row])


def test_quartiles_interpolate(bench):
    assert bench._quantile([4.0, 1.0, 3.0, 2.0], 0.25) == pytest.approx(1.75)
    assert bench._quantile([4.0, 1.0, 3.0, 2.0], 0.5) == pytest.approx(2.5)
    assert bench._quantile([5.0], 0.75) == 5.0


@pytest.mark.slow
def test_memory_measurement_is_repeatable(bench):
    """With the fixed mmap threshold, two fresh processes measure the same task alike (it varied by
    +-30% with glibc's adaptive threshold)."""
    name = "forward + backward to input"
    first = bench.measure_memory([name], batch=2, size=96, threads=1)[name]
    second = bench.measure_memory([name], batch=2, size=96, threads=1)[name]
    assert first > 2**20
    assert abs(first - second) <= 0.03 * first


def test_only_keeps_the_matching_tasks_and_their_floors(bench):
    tasks = [bench.Task("forward (no grad)", "floor", None, lambda: None),
             bench.Task("forward + backward to input", "floor", None, lambda: None),
             bench.Task("visual_backprop", "ours", "forward (no grad)", lambda: None),
             bench.Task("saliency", "ours", "forward + backward to input", lambda: None)]
    assert [t.name for t in bench.select_tasks(tasks, ["VISUAL"])] == ["forward (no grad)", "visual_backprop"]
    assert bench.select_tasks(tasks, None) == tasks
    with pytest.raises(SystemExit, match="no task matches; tasks: forward"):
        bench.select_tasks(tasks, ["lrp"])


def test_cpu_clock_times_every_task(bench):
    tasks = [bench.Task("a", "floor", None, lambda: sum(range(1000))), bench.Task("b", "ours", "a", lambda: None)]
    times = bench.time_tasks(tasks, repeats=2, warmup=0, clock="cpu")
    assert set(times) == {"a", "b"} and all(len(v) == 2 and min(v) >= 0 for v in times.values())
