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
