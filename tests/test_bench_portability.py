"""Bench on other machines than this one (issue 14), tested here with stand-ins (no GPU, no CUDA):

- onnxruntime's silent fallback from a GPU provider to the CPU is refused (exit 3), and rows name the
  provider that really ran;
- the GPU is named without torch (NVML, then cuda-python, then nvidia-smi, then torch), and the regression
  gate's same_device compares GPU names from whichever reader named them;
- every row says which clock timed it and whether input/output copies were inside the timed region.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import types

import numpy as np
import pytest

from edgelstm.converters.export.torch_to_onnx import ExportOptions, export_onnx
from edgelstm.artifacts import ort as ort_mod
from edgelstm.artifacts.iospec import IOSpec, TensorSpec
from edgelstm.errors import BackendMissing, BadInput
from edgelstm.latency import (BenchGrid, BenchOptions, Bencher, TimingPolicy, bench_artifacts, harness, write_csv,
                              write_markdown)
from edgelstm.machine import device as device_mod
from edgelstm.models import zoo

FAST = TimingPolicy(warmup=1, iters=5)


@pytest.fixture(scope="module")
def arts(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench_portability")
    m = zoo.build("lstm_regressor", {"hidden_size": 8}, seed=0)
    quick = dict(seq_len=6, verify_seqs=(6,), verify_batches=(2,))
    export_onnx(m, d / "m.onnx", ExportOptions(**quick))
    export_onnx(m, d / "m.stateful.onnx", ExportOptions(stateful=True, **quick))
    return d


# ------------------------------------------------------------------------ onnxruntime provider fallback


def _ort_that_falls_back(monkeypatch):
    """The real onnxruntime, claiming that CUDAExecutionProvider is available (onnxruntime-gpu installed)
    while every session silently runs on the CPU (what it does when the CUDA libraries do not load)."""
    import onnxruntime as real

    asked: list[list[str]] = []

    def session(path, so, providers=None):
        asked.append(list(providers or []))
        return real.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    fake = types.SimpleNamespace(
        set_default_logger_severity=real.set_default_logger_severity, SessionOptions=real.SessionOptions,
        GraphOptimizationLevel=real.GraphOptimizationLevel, InferenceSession=session,
        get_available_providers=lambda: ["CUDAExecutionProvider", *real.get_available_providers()])
    monkeypatch.setattr(ort_mod, "_ort", lambda: fake)
    return asked


def test_a_gpu_provider_that_fell_back_to_the_cpu_is_backend_missing(arts, monkeypatch):
    asked = _ort_that_falls_back(monkeypatch)
    with pytest.raises(BackendMissing) as err:
        ort_mod.make_session(arts / "m.onnx", providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert err.value.exit_code == 3 and "\n" not in str(err.value)
    assert "CUDAExecutionProvider" in str(err.value) and "fell back to CPUExecutionProvider" in str(err.value)
    assert asked == [["CUDAExecutionProvider", "CPUExecutionProvider"]]
    # (name, options) pairs are onnxruntime's other way to ask: the same check
    with pytest.raises(BackendMissing, match="CUDAExecutionProvider"):
        ort_mod.make_session(arts / "m.onnx", providers=[("CUDAExecutionProvider", {"device_id": 0})])
    # CPU asked, CPU active: fine
    s = ort_mod.make_session(arts / "m.onnx", providers=["CPUExecutionProvider"])
    assert s.get_providers()[0] == "CPUExecutionProvider"
    assert ort_mod.make_session(arts / "m.onnx").get_providers()[0] == "CPUExecutionProvider"


def test_bench_on_cuda_refuses_the_silent_cpu_fallback_before_timing(arts, monkeypatch):
    _ort_that_falls_back(monkeypatch)
    monkeypatch.setattr(Bencher, "measure", lambda *a, **k: pytest.fail("timed a session that fell back"))
    with pytest.raises(BackendMissing, match="CUDAExecutionProvider"):
        bench_artifacts([arts / "m.onnx"], BenchGrid((1,), (4,)), BenchOptions(device="cuda", policy=FAST))


def test_rows_name_the_provider_that_ran(arts, tmp_path):
    report = bench_artifacts([arts / "m.onnx"], BenchGrid((1,), (4,), (1,)),
                             BenchOptions(policy=FAST, measure_memory=False))
    (row,) = report.results
    assert row.provider == "CPUExecutionProvider" and row.to_dict()["provider"] == "CPUExecutionProvider"
    with open(write_csv(report, tmp_path / "r.csv")) as f:
        assert next(csv.DictReader(f))["provider"] == "CPUExecutionProvider"


# ---------------------------------------------------------------------------------- GPU without torch


def _no_gpu_readers(monkeypatch, tmp_path):
    """No NVML, no cuda-python, no nvidia-smi on PATH, a torch that sees no GPU."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setitem(sys.modules, "cuda", None)
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(device_mod, "_gpu_torch", lambda: None)


def _fake_pynvml(monkeypatch, name=b"NVIDIA H100 80GB HBM3", fail=False):
    m = types.ModuleType("pynvml")
    calls: list[str] = []

    class NVMLError(Exception):
        pass

    def init():
        calls.append("init")
        if fail:
            raise NVMLError("NVML Shared Library Not Found")

    m.nvmlInit = init
    m.nvmlShutdown = lambda: calls.append("shutdown")
    m.nvmlDeviceGetCount = lambda: 2
    m.nvmlDeviceGetHandleByIndex = lambda i: calls.append(f"index {i}") or ("handle", i)
    m.nvmlDeviceGetHandleByUUID = lambda u: calls.append(f"uuid {u}") or ("handle", u)
    m.nvmlDeviceGetName = lambda h: name
    m.nvmlDeviceGetCudaComputeCapability = lambda h: (9, 0)
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=80 * 1024 ** 3)
    m.nvmlSystemGetDriverVersion = lambda: b"580.65.06"
    monkeypatch.setitem(sys.modules, "pynvml", m)
    return calls


def _fake_cuda_python(monkeypatch, count=1):
    rt = types.ModuleType("cuda.bindings.runtime")
    success = types.SimpleNamespace(value=0)
    props = types.SimpleNamespace(name=b"NVIDIA L4\x00\x00", major=8, minor=9, totalGlobalMem=24 * 1024 ** 3)
    rt.cudaGetDeviceCount = lambda: (success if count else types.SimpleNamespace(value=100), count)
    rt.cudaGetDeviceProperties = lambda i: (success, props)
    rt.cudaRuntimeGetVersion = lambda: (success, 12080)
    cuda, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
    bindings.runtime, cuda.bindings = rt, bindings
    monkeypatch.setitem(sys.modules, "cuda", cuda)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", rt)


def _fake_nvidia_smi(monkeypatch, tmp_path, line="NVIDIA A10G, 8.6, 23028 MiB"):
    bin_dir = tmp_path / "smi-bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "smi-args"
    exe = bin_dir / "nvidia-smi"
    exe.write_text(f"#!/bin/sh\necho \"$@\" > {log}\necho '{line}'\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ.get("PATH", ""))
    return log


def test_the_gpu_is_named_without_torch_in_reader_order(monkeypatch, tmp_path):
    _no_gpu_readers(monkeypatch, tmp_path)
    assert device_mod.gpu_block() is None  # no reader: no GPU, no crash

    monkeypatch.setattr(device_mod, "_gpu_torch", lambda: {"name": "Tesla T4", "capability": "7.5", "count": 1})
    assert device_mod.gpu_block()["source"] == "torch"  # the last resort

    log = _fake_nvidia_smi(monkeypatch, tmp_path)
    gpu = device_mod.gpu_block()
    assert gpu == {"name": "NVIDIA A10G", "capability": "8.6", "memory_gb": 22.5, "count": 1, "source": "nvidia-smi"}
    assert log.read_text().split()[:2] == ["--query-gpu=name,compute_cap,memory.total", "--format=csv,noheader"]

    _fake_cuda_python(monkeypatch, count=0)  # cuda-python without a device: the next reader answers
    assert device_mod.gpu_block()["source"] == "nvidia-smi"
    _fake_cuda_python(monkeypatch, count=1)
    gpu = device_mod.gpu_block()
    assert (gpu["source"], gpu["name"], gpu["capability"], gpu["cuda"]) == ("cuda-python", "NVIDIA L4", "8.9", "12.8")

    calls = _fake_pynvml(monkeypatch, fail=True)  # nvidia-ml-py installed, no driver: skipped
    assert device_mod.gpu_block()["source"] == "cuda-python" and calls == ["init"]
    calls = _fake_pynvml(monkeypatch)
    gpu = device_mod.gpu_block()
    assert gpu == {"name": "NVIDIA H100 80GB HBM3", "capability": "9.0", "memory_gb": 80.0, "count": 2,
                   "driver": "580.65.06", "source": "nvml"}
    assert calls == ["init", "index 0", "shutdown"]


def test_cuda_visible_devices_is_honoured(monkeypatch, tmp_path):
    _no_gpu_readers(monkeypatch, tmp_path)
    calls = _fake_pynvml(monkeypatch)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    gpu = device_mod.gpu_block()
    assert calls[1] == "index 1" and gpu["count"] == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8f6c0e4a")
    device_mod.gpu_block()
    assert "uuid GPU-8f6c0e4a" in calls
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert device_mod.gpu_block() is None  # every GPU hidden: bench runs on none


def test_describe_device_in_a_tensorrt_image_names_the_gpu(monkeypatch, tmp_path):
    """The TensorRT image: CPU torch, nvidia-smi from the driver. The report's device block names the GPU."""
    _no_gpu_readers(monkeypatch, tmp_path)
    _fake_nvidia_smi(monkeypatch, tmp_path, "NVIDIA H100 80GB HBM3, 9.0, 81559 MiB")
    d = device_mod.describe_device(gpu=True)
    assert d["gpu"]["name"] == "NVIDIA H100 80GB HBM3" and d["gpu"]["source"] == "nvidia-smi"
    assert "nvidia-h100-80gb-hbm3" in d["machine"]


def test_same_device_compares_gpu_names_from_any_reader():
    base = {"cpu": {"model": "Xeon"}, "jetson": None}
    nvml = {**base, "gpu": {"name": "NVIDIA H100 80GB HBM3", "source": "nvml"}}
    torch_named = {**base, "gpu": {"name": "NVIDIA  H100 80GB HBM3 ", "source": "torch"}}
    assert device_mod.same_device(nvml, torch_named) == (True, "")
    jetson_smi = {**base, "gpu": {"name": "Orin (nvgpu)", "source": "nvidia-smi"}}
    jetson_torch = {**base, "gpu": {"name": "Orin", "source": "torch"}}
    assert device_mod.same_device(jetson_smi, jetson_torch)[0]
    ok, why = device_mod.same_device(nvml, {**base, "gpu": {"name": "NVIDIA A100-SXM4-80GB"}})
    assert not ok and why == "gpu 'NVIDIA H100 80GB HBM3' vs 'NVIDIA A100-SXM4-80GB'"
    ok, why = device_mod.same_device(nvml, {**base, "gpu": None})
    assert not ok and "None" in why
    assert device_mod.gpu_name_key(b"NVIDIA GeForce RTX 4090\x00") == "geforce rtx 4090"


# --------------------------------------------------------------------------------------------- clocks


def _fake_runner(monkeypatch, runner_cls):
    monkeypatch.setattr(Bencher, "_open", lambda self, res, threads: runner_cls())
    monkeypatch.setattr(harness, "speed_probe", lambda blocks=5: 0.5)


class _EventTimed:
    """Like the TensorRT runner: times itself with CUDA events (enqueue only), carries state through run()."""

    backend, precision, label, timer = "custom", "fp32", "engine", "cuda-event"
    io = IOSpec((TensorSpec("x", shape=("batch", "seq", 1)), TensorSpec("h0", shape=(1, "batch", 4), state=True)),
                (TensorSpec("y", shape=("batch", 1)), TensorSpec("hn", shape=(1, "batch", 4), state=True)))

    def timed_run(self, feeds, iters, warmup=0):
        return [1.0] * iters

    def run(self, feeds):
        return {"y": np.zeros((1, 1), np.float32), "hn": feeds["h0"]}

    def close(self):
        pass


def test_every_row_names_its_clock_and_whether_copies_were_timed(arts, monkeypatch, tmp_path):
    # the real paths: onnxruntime IO binding (window) and the IO-binding ping-pong (step): wall, no copies;
    # torch eager on pre-made tensors: wall, no copies
    report = bench_artifacts([arts / "m.stateful.onnx"], BenchGrid((1,), (4,), (1,)),
                             BenchOptions(policy=FAST, stream=True, measure_memory=False))
    assert [(r.mode, r.timing_path, r.clock, r.copies_included) for r in report.results] == [
        ("window", "ort-iobinding", "wall", False), ("step", "ort-iobinding-pingpong", "wall", False)]
    data = report.to_dict()
    assert all({"clock", "copies_included"} <= set(r) for r in data["results"])
    assert data["schema"] == "edgelstm-bench/1"  # additive: the same schema

    # an engine-like runner: window rows by CUDA events without copies; stream rows through run(), copies in
    _fake_runner(monkeypatch, _EventTimed)
    art = tmp_path / "engine.onnx"
    art.write_bytes(b"\x08\x07")
    report = bench_artifacts([art], BenchGrid((1,), (4,)), BenchOptions(policy=FAST, stream=True,
                                                                        measure_memory=False))
    assert [(r.mode, r.timer, r.clock, r.copies_included) for r in report.results] == [
        ("window", "cuda-event", "cuda-events", False), ("step", "wall", "wall", True)]
    assert report.stream[0]["step_clock"] == "wall+copies" and report.stream[0]["window_clock"] == "cuda-events"
    with open(write_csv(report, tmp_path / "r.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [(r["clock"], r["copies_included"]) for r in rows] == [("cuda-events", "False"), ("wall", "True")]
    md = write_markdown(report, tmp_path / "r.md").read_text()
    assert "| clock |" in md and "| cuda-events |" in md and "| wall+copies |" in md and "`+copies`" in md


def test_a_runner_states_its_own_clock_and_copies(monkeypatch, tmp_path):
    class Declares(_EventTimed):
        timer, clock, copies_included = "runner-clock", "wall", True  # e.g. a runner that times run() itself

    class Plain(_EventTimed):  # no timer protocol at all: run() on the wall clock, copies included
        timed_run = None

    art = tmp_path / "declares.onnx"
    art.write_bytes(b"\x08\x07")
    _fake_runner(monkeypatch, Declares)
    (row,) = bench_artifacts([art], BenchGrid((1,), (4,)), BenchOptions(policy=FAST, measure_memory=False)).results
    assert (row.timer, row.clock, row.copies_included) == ("runner-clock", "wall", True)
    _fake_runner(monkeypatch, Plain)
    (row,) = bench_artifacts([art], BenchGrid((1,), (4,)), BenchOptions(policy=FAST, measure_memory=False)).results
    assert (row.timing_path, row.clock, row.copies_included) == ("run", "wall", True)


def test_old_reports_without_clock_still_render(tmp_path):
    """A report from before the clock fields: the writers show "?" instead of failing."""
    lat = {"p50": 1.0, "p90": 1.0, "p99": 1.0, "mean": 1.0, "min": 1.0}
    old = {"device": {"cpu": {"model": "x"}}, "results": [{
        "artifact": "m.onnx", "backend": "onnxruntime", "precision": "fp32", "batch": 1, "seq": 4, "threads": 1,
        "iters": 5, "latency_ms": lat, "throughput_seq_per_s": 1000.0}]}
    assert "| ? |" in write_markdown(old, tmp_path / "old.md").read_text()
    with open(write_csv(old, tmp_path / "old.csv")) as f:
        assert next(csv.DictReader(f))["clock"] == ""
    json.dumps(old)


# ------------------------------------------------------------------------------- options in messages


def test_library_messages_name_options_in_the_callers_words():
    """A bad value from the CLI names `--iters`; the same value from a pipeline file names `[bench].iters`."""
    with pytest.raises(BadInput) as err:
        TimingPolicy(iters=0)
    assert str(err.value).startswith("--iters must be >= 1")
    assert err.value.render(lambda key: f"[bench].{key}").startswith("[bench].iters must be >= 1")
    for bad, flag in ((dict(batches=()), "--batch"), (dict(threads=(0,)), "--threads")):
        with pytest.raises(BadInput) as err:
            BenchGrid(**bad)
        assert str(err.value).startswith(flag)
    with pytest.raises(BadInput) as err:
        BenchOptions(retry_noisy=-1)
    assert err.value.render(lambda key: f"[bench].{key}").startswith("[bench].retry_noisy")
    with pytest.raises(BadInput) as err:
        TimingPolicy(min_time=0.0)
    assert str(err.value).startswith("--min-time")
