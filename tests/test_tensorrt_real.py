"""Real TensorRT: build and run every zoo model (tiny configs) at fp32 / fp16 / int8 and compare with
onnxruntime. Marked `trt`: skipped unless `import tensorrt` works and a CUDA device is usable.
Run them with `bash docker/run-trt-tests.sh` (x86 + NVIDIA GPU) or `pytest -m trt` on a Jetson."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytestmark = pytest.mark.trt


def _usable() -> str | None:
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT is not installed"
    try:
        import tensorrt  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        return f"TensorRT does not import: {exc}"
    try:
        from edgelstm.runners.cuda_buffers import get_backend

        get_backend()
    except Exception as exc:  # noqa: BLE001
        return f"no usable CUDA device buffers: {exc}"
    return None


_WHY = _usable()
if _WHY:
    pytest.skip(_WHY, allow_module_level=True)

TINY = {
    "lstm_regressor": {"hidden_size": 16},
    "stacked_lstm": {"hidden_size": 16},
    "bilstm_attention": {"input_size": 5, "hidden_size": 16, "attention_size": 8},
    "gru": {"hidden_size": 16},
    "hand_lstm": {"hidden_size": 16},
}
# relative L2 error against onnxruntime FP32 that each precision must stay under
TOL = {"fp32": 5e-3, "fp16": 5e-2, "int8": 0.3}
SEQ = 16


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a.astype(np.float64) - b) / max(np.linalg.norm(b.astype(np.float64)), 1e-6))


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory):
    from converters.torch_to_onnx import ExportOptions, export_onnx
    from edgelstm.models import zoo

    d = tmp_path_factory.mktemp("trt-real")
    out = {}
    for name, cfg in TINY.items():
        model = zoo.build(name, cfg, seed=0)
        export_onnx(model, d / f"{name}.onnx", ExportOptions(seq_len=SEQ))
        out[name] = d / f"{name}.onnx"
    return out


def _data(name: str, n: int, seed: int):
    from edgelstm.models import zoo

    x, _ = zoo.synthetic_task(name, n, SEQ, seed=seed)
    if name == "bilstm_attention":
        x = x[:, :, : TINY[name]["input_size"]]
    return x


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
@pytest.mark.parametrize("name", list(TINY))
def test_engine_matches_onnxruntime(onnx_models, tmp_path, name, precision):
    from edgelstm.data import BatchSource
    from converters.tensorrt import BuildOptions, build_engine
    from edgelstm.errors import BackendMissing
    from edgelstm.artifacts.manifest import read_manifest
    from edgelstm.runners.onnxruntime_runner import OrtRunner
    from edgelstm.runners.tensorrt_runner import TensorRTRunner

    calib = None
    if precision == "int8":
        xc = _data(name, 64, seed=1)
        calib = BatchSource({"x": xc}, {"x": 0}, len(xc), 16)
    plan = tmp_path / f"{name}.{precision}.plan"
    try:
        res = build_engine(onnx_models[name], plan,
                           BuildOptions(precision=precision, batch=(1, 4, 8), seq=(1, SEQ, 2 * SEQ),
                                        calib_cache=tmp_path / "calib.cache"), calib=calib)
    except BackendMissing as exc:  # e.g. no CUDA buffer backend
        pytest.skip(str(exc))
    assert read_manifest(plan).details["tensorrt"]["version"] == res.tensorrt_version
    assert res.tf32 == (precision != "fp32")  # an fp32 engine computes in FP32, not TF32
    x = _data(name, 8, seed=2)
    ref = OrtRunner(onnx_models[name]).run({"x": x})
    with TensorRTRunner(plan) as runner:
        for batch, seq in ((8, SEQ), (1, SEQ), (3, 2 * SEQ), (2, 1)):
            xb = _data(name, batch, seed=3)[:, :1] if seq == 1 else (
                x[:batch] if seq == SEQ else np.concatenate([x[:batch], x[:batch]], axis=1))
            want = OrtRunner(onnx_models[name]).run({"x": xb}) if (batch, seq) != (8, SEQ) else ref
            got = runner.run({"x": xb})
            for out_name, w in want.items():
                assert got[out_name].shape == w.shape
                err = rel_l2(got[out_name], w)
                assert err <= TOL[precision], f"{name} {precision} {out_name} b={batch} T={seq}: rel_l2 {err:.3g}"
        times = runner.timed_run({"x": x}, iters=5, warmup=2)
        assert len(times) == 5 and all(t > 0 for t in times)
    groups = res.layer_precision.get("groups", {})
    if res.layer_precision.get("available"):
        assert "INT8" not in groups.get("recurrent", {}), groups  # no NVIDIA tool quantizes the LSTM core


def test_stateful_engine_streams_like_the_full_sequence(tmp_path):
    from converters.tensorrt import BuildOptions, build_engine
    from converters.torch_to_onnx import ExportOptions, export_onnx
    from edgelstm.models import zoo
    from edgelstm.runners.tensorrt_runner import TensorRTRunner

    model = zoo.build("lstm_regressor", {"hidden_size": 16}, seed=0)
    export_onnx(model, tmp_path / "s.onnx", ExportOptions(seq_len=SEQ, stateful=True))
    build_engine(tmp_path / "s.onnx", tmp_path / "s.plan", BuildOptions(batch=(1, 2, 4), seq=(1, SEQ, SEQ)))
    x = _data("lstm_regressor", 2, seed=0)
    with TensorRTRunner(tmp_path / "s.plan") as runner:
        full = runner.run({"x": x})
        for t in range(SEQ):
            step = runner.step({"x": x[:, t:t + 1]})
        np.testing.assert_allclose(step["hn"], full["hn"], atol=1e-4)


def test_timing_cache_and_cuda_graph_on_real_tensorrt(onnx_models, tmp_path):
    from converters.tensorrt import BuildOptions, build_engine
    from edgelstm.runners.tensorrt_runner import TensorRTRunner

    cache = tmp_path / "trt.cache"
    opts = BuildOptions(batch=(1, 2, 4), seq=(1, SEQ, SEQ), timing_cache=cache)
    build_engine(onnx_models["lstm_regressor"], tmp_path / "a.plan", opts)
    assert cache.stat().st_size > 0
    second = build_engine(onnx_models["lstm_regressor"], tmp_path / "b.plan", opts)
    assert second.timing_cache["reused"]
    x = _data("lstm_regressor", 2, seed=0)
    with TensorRTRunner(tmp_path / "b.plan") as plain, TensorRTRunner(tmp_path / "b.plan", cuda_graph=True) as graph:
        np.testing.assert_allclose(graph.run({"x": x})["y"], plain.run({"x": x})["y"], atol=1e-5)
        assert graph.timed_run(None, iters=3, warmup=1)
