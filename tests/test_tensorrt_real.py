"""Real TensorRT: build and run tiny recurrent models (LSTM, stacked LSTM, GRU, bidirectional LSTM, stateful LSTM)
at fp32 / fp16 / int8 and compare with onnxruntime. Marked `trt`: skipped unless `import tensorrt` works and a
CUDA device is usable (tests/conftest.py).

No torch: the models are built with onnx.helper (tests/trt_models.py), so these tests run in the Jetson image and
in any TensorRT container. Run them with `bash docker/run-trt-tests.sh` (x86 + NVIDIA GPU) or `pytest -m trt` on
a Jetson. The one unmarked test proves, everywhere, that the models and fixtures need no torch."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

try:
    import trt_models
except ImportError:  # tests/ is a package in some layouts
    from tests import trt_models  # type: ignore[no-redef]

MODELS = ("lstm", "stacked_lstm", "gru", "bilstm")
# relative L2 error against onnxruntime FP32 that each precision must stay under
TOL = {"fp32": 5e-3, "fp16": 5e-2, "int8": 0.3}
SEQ = 16
BATCH = (1, 4, 8)


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a.astype(np.float64) - b) / max(np.linalg.norm(b.astype(np.float64)), 1e-6))


def _x(batch: int, seq: int, seed: int) -> np.ndarray:
    return trt_models.inputs("lstm", batch, seq, seed=seed)["x"]


@pytest.fixture(scope="module")
def device():
    """A usable CUDA buffer backend (cuda-python, pycuda or torch), else skip with the reason."""
    from edgelstm.runners.cuda_buffers import get_backend

    try:
        return get_backend()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no usable CUDA device buffers: {exc}")


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory):
    return trt_models.write_all(tmp_path_factory.mktemp("trt-real"))


class Counting:
    """A CUDA buffer backend that counts the graph calls the runner makes (to prove a graph really ran)."""

    def __init__(self, inner):
        self.inner, self.counts = inner, Counter()

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name in ("begin_capture", "end_capture", "launch", "synchronize"):
            def counted(*args, **kwargs):
                self.counts[name] += 1
                return attr(*args, **kwargs)
            return counted
        return attr


@pytest.mark.trt
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
@pytest.mark.parametrize("name", MODELS)
def test_engine_matches_onnxruntime(device, onnx_models, tmp_path, name, precision):
    from edgelstm.converters.tensorrt import BuildOptions, build_engine
    from edgelstm.artifacts.manifest import read_manifest
    from edgelstm.data import BatchSource
    from edgelstm.runners.onnxruntime_runner import OrtRunner
    from edgelstm.runners.tensorrt_runner import TensorRTRunner

    calib = None
    if precision == "int8":
        xc = _x(64, SEQ, seed=1)
        calib = BatchSource({"x": xc}, {"x": 0}, len(xc), 16)
    plan = tmp_path / f"{name}.{precision}.plan"
    res = build_engine(onnx_models[name], plan, BuildOptions(precision=precision, batch=BATCH, seq=(1, SEQ, 2 * SEQ),
                                                             calib_cache=tmp_path / "calib.cache"), calib=calib)
    assert read_manifest(plan).details["tensorrt"]["version"] == res.tensorrt_version
    assert res.tf32 == (precision != "fp32")  # an fp32 engine computes in FP32, not TF32
    ort = OrtRunner(onnx_models[name])
    with TensorRTRunner(plan) as runner:
        for batch, seq, seed in ((8, SEQ, 2), (1, SEQ, 3), (3, 2 * SEQ, 4), (2, 1, 5)):
            x = _x(batch, seq, seed)
            want, got = ort.run({"x": x}), runner.run({"x": x})
            for out_name, w in want.items():
                assert got[out_name].shape == w.shape and got[out_name].dtype == np.float32
                err = rel_l2(got[out_name], w)
                assert err <= TOL[precision], f"{name} {precision} {out_name} b={batch} T={seq}: rel_l2 {err:.3g}"
        times = runner.timed_run({"x": _x(8, SEQ, 2)}, iters=5, warmup=2)
        assert len(times) == 5 and all(t > 0 for t in times)
    # the inspector was read (10.x "Format/Datatype" or 11.x "Datatype"/"Format"): the recurrent layers have a
    # known float precision, so "no INT8 in the recurrence" below really checks something
    groups = res.layer_precision.get("groups", {})
    assert res.layer_precision.get("available"), res.layer_precision.get("reason")
    assert set(groups.get("recurrent", {})) - {"unknown", "INT"}, groups
    assert "INT8" not in groups["recurrent"], groups  # no NVIDIA tool quantizes the LSTM core


@pytest.mark.trt
def test_stateful_engine_streams_like_the_full_sequence(device, onnx_models, tmp_path):
    from edgelstm.converters.tensorrt import BuildOptions, build_engine
    from edgelstm.runners.tensorrt_runner import TensorRTRunner

    build_engine(onnx_models["lstm_stateful"], tmp_path / "s.plan", BuildOptions(batch=(1, 2, 4), seq=(1, SEQ, SEQ)))
    x = _x(2, SEQ, seed=0)
    with TensorRTRunner(tmp_path / "s.plan") as runner:
        assert runner.stateful
        full = runner.run({"x": x})
        for t in range(SEQ):
            step = runner.step({"x": x[:, t:t + 1]})
        np.testing.assert_allclose(step["hn"], full["hn"], atol=1e-4)
        np.testing.assert_allclose(step["y"], full["y"], atol=1e-4)


@pytest.mark.trt
def test_timing_cache_and_cuda_graph_on_real_tensorrt(device, onnx_models, tmp_path):
    """The timing cache is reused, and with cuda_graph=True a graph is really captured and replayed: a runner that
    silently fell back to plain enqueues (graph_error set, no launch) fails here."""
    from edgelstm.converters.tensorrt import BuildOptions, build_engine
    from edgelstm.runners.tensorrt_runner import TensorRTRunner

    cache = tmp_path / "trt.cache"
    opts = BuildOptions(batch=(1, 2, 4), seq=(1, SEQ, SEQ), timing_cache=cache)
    build_engine(onnx_models["lstm"], tmp_path / "a.plan", opts)
    assert cache.stat().st_size > 0
    second = build_engine(onnx_models["lstm"], tmp_path / "b.plan", opts)
    assert second.timing_cache["reused"]
    if not getattr(device, "supports_graphs", False):
        pytest.skip(f"the {device.name} buffer backend has no CUDA graphs")
    counting = Counting(device)
    x1, x2 = _x(2, SEQ, seed=0), _x(2, SEQ, seed=1)
    with TensorRTRunner(tmp_path / "b.plan") as plain, \
            TensorRTRunner(tmp_path / "b.plan", cuda_graph=True, cuda_backend=counting) as graph:
        np.testing.assert_allclose(graph.run({"x": x1})["y"], plain.run({"x": x1})["y"], atol=1e-5)
        assert graph.graph_error is None and graph.use_graph, graph.graph_error
        assert counting.counts["begin_capture"] == counting.counts["end_capture"] == 1
        assert counting.counts["launch"] == 1
        # same shape, new values: the graph is replayed (not recaptured) and reads the new inputs
        np.testing.assert_allclose(graph.run({"x": x2})["y"], plain.run({"x": x2})["y"], atol=1e-5)
        assert counting.counts["begin_capture"] == 1 and counting.counts["launch"] == 2
        times = graph.timed_run(None, iters=3, warmup=1)
        assert len(times) == 3 and counting.counts["launch"] == 6 and graph.graph_error is None


def test_models_and_fixtures_need_no_torch(tmp_path):
    """What the trt tests build (tests/trt_models.py) and the stand-in fixtures (tests/fakes) import works with
    torch blocked, and the models run in onnxruntime at several batches and lengths (issue 14.2)."""
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    code = f"""
import sys
sys.modules["torch"] = None                      # any `import torch` now raises ImportError
sys.path[:0] = [{str(tests)!r}, {str(tests.parent)!r}]
import numpy as np, onnxruntime as ort
import trt_models
from fakes import fixtures                       # the stand-in's fixtures module
import edgelstm.converters.tensorrt, edgelstm.calibration.trt_calibrator, edgelstm.runners.tensorrt_runner, edgelstm.data
paths = trt_models.write_all({str(tmp_path)!r})
for name, path in paths.items():
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b, t in ((1, 1), (3, 7)):
        feeds = trt_models.inputs(name, b, t)
        if name == "lstm_stateful":
            feeds["h0"] = feeds["c0"] = np.zeros((1, b, trt_models.HIDDEN), np.float32)
        assert s.run(None, feeds)[0].shape == (b, 1)
    assert path.stat().st_size < 8192, path
print("ok", sorted(paths))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ok")
