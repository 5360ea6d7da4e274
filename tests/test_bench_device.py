"""trtexec-style bench options (--cuda-graph, --shapes, --split-transfers, --spin-wait, --streams, --profile-layers)
against the TensorRT stand-in and the recording CUDA stand-ins (tests/fakes): the calls TensorRT and CUDA get, in
their order, and what a row reports. Nothing here times a GPU; onnxruntime's split runs on the CPU provider."""

from __future__ import annotations

import json

import numpy as np
import pytest

try:
    import fakes as fake
    from fakes.fixtures import calls, models, trt  # noqa: F401 - pytest fixtures
except ImportError:  # tests/ is a package in some layouts
    from tests import fakes as fake  # type: ignore[no-redef]
    from tests.fakes.fixtures import calls, models, trt  # type: ignore[no-redef] # noqa: F401

from edgelstm.converters.tensorrt import BuildOptions, build_engine
from edgelstm.errors import BadInput
from edgelstm.latency import trt_timing
from edgelstm.latency.trt_options import DeviceOptions, check_device_options, parse_shapes


@pytest.fixture
def engine(trt, models, tmp_path):
    trt()
    return build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(batch=(1, 4, 8), seq=(1, 8, 32))).path


def _runner(path):
    from edgelstm.runners.tensorrt_runner import TensorRTRunner

    return TensorRTRunner(path)


def _feeds(batch=2, seq=6):
    return {"x": np.random.default_rng(0).standard_normal((batch, seq, 1)).astype(np.float32)}


def test_shapes_parse_like_trtexec_and_bad_ones_are_refused():
    assert parse_shapes("x:1x60x1, h0:1*2*64") == {"x": (1, 60, 1), "h0": (1, 2, 64)}
    for bad in ("x", "x:1xa", "x:0x2", "x:1,x:2", ":1x2"):
        with pytest.raises(BadInput, match="--shapes"):
            parse_shapes(bad)
    with pytest.raises(BadInput, match="--streams"):
        DeviceOptions(streams=0)


def test_options_a_backend_cannot_honour_are_refused():
    with pytest.raises(BadInput, match="time a GPU"):
        check_device_options(DeviceOptions(split_transfers=True), "onnxruntime", "cpu", ["x"])
    with pytest.raises(BadInput, match="apply to TensorRT"):
        check_device_options(DeviceOptions(streams=2), "onnxruntime", "cuda", ["x"])
    with pytest.raises(BadInput, match="without CUDA graphs"):
        check_device_options(DeviceOptions(cuda_graph=True, profile_layers=True), "tensorrt", "cuda", ["x"])
    with pytest.raises(BadInput, match="does not take"):
        check_device_options(DeviceOptions(shapes={"y": (1,)}), "tensorrt", "cuda", ["x"])
    check_device_options(DeviceOptions(split_transfers=True), "onnxruntime", "cuda:1", ["x"])


def test_split_transfers_times_copies_and_enqueue_between_events(engine):
    runner = _runner(engine)
    first = len(fake.CUDA.calls.calls)
    out = trt_timing.split_transfers(runner, _feeds(), iters=3, warmup=1)
    names = [n for n in fake.CUDA.calls.names()[first:] if n in ("record", "htod", "dtoh")]
    names = names[names.index("record"):]                      # after staging (the runner's own first upload)
    per_iter = ["record", "htod", "record", "record", "dtoh", "record"]   # the enqueue sits between records 2 and 3
    assert names[:6] == per_iter and len([n for n in names if n == "record"]) == 4 * 4
    assert {k: set(v) for k, v in out.items() if isinstance(v, dict)} == {
        k: {"p50", "p90", "p99", "mean", "min"} for k in ("h2d", "compute", "d2h", "host_latency")}
    assert out["compute"]["p50"] == pytest.approx(fake.KERNEL_MS) and out["h2d"]["p50"] == pytest.approx(fake.COPY_MS)
    assert not out["spin_wait"] and "query" not in fake.CUDA.calls.names()[first:]
    runner.close()


def test_spin_wait_polls_the_event_through_cuda_python(trt, models, tmp_path):
    trt(cuda_modules=("cuda-python",))
    path = build_engine(models["lstm"], tmp_path / "s.plan", BuildOptions(batch=(1, 4, 8), seq=(1, 8, 32))).path
    runner = _runner(path)
    first = len(fake.CUDA.calls.calls)
    out = trt_timing.split_transfers(runner, _feeds(), iters=2, warmup=0, spin=True)
    assert out["spin_wait"]
    queried = [a for n, a, _ in fake.CUDA.calls.calls[first:] if n == "cudart.cudaEventQuery"]
    assert len(queried) >= 2                                   # polled, and answered cudaErrorNotReady first
    runner.close()


def test_streams_enqueue_one_context_per_stream(engine):
    mod = __import__("sys").modules["tensorrt"]
    streams_before = set(fake.CUDA.live["stream"])
    runner = _runner(engine)
    before = len(calls(mod, "ICudaEngine.create_execution_context"))
    out = trt_timing.multi_stream(runner, _feeds(batch=3), streams=3, iters=4, warmup=1)
    assert len(calls(mod, "ICudaEngine.create_execution_context")) - before == 2      # + the runner's own
    enqueued = [a[0] for a, _ in calls(mod, "IExecutionContext.execute_async_v3")[-12:]]
    assert len(set(enqueued)) == 3                              # three streams, round-robin
    assert out["sequences"] == 3 * 4 * 3 and len(out["stream_ms"]) == 3
    assert out["throughput_seq_per_s_device"] == pytest.approx(36 / (max(out["stream_ms"]) / 1e3))
    runner.close()
    assert set(fake.CUDA.live["stream"]) <= streams_before     # the extra streams (and the runner's) are gone


def test_layer_profile_reports_after_each_enqueue_like_trtexec(engine):
    mod = __import__("sys").modules["tensorrt"]
    runner = _runner(engine)
    profile = trt_timing.layer_profile(runner, _feeds(), iters=4)
    assert len(calls(mod, "IExecutionContext.report_to_profiler")) == 4
    assert {p["layer"] for p in profile} == {"/to_seq_first", "/rnn/LSTM", "/last", "/head/Gemm"}
    assert profile[0]["layer"] == "/rnn/LSTM" and sum(p["share"] for p in profile) == pytest.approx(1.0)
    assert runner.context.enqueue_emits_profile and all(p["calls"] == 4 for p in profile)
    runner.close()


def test_bench_command_reports_every_option(engine, cli):
    code, stdout, stderr = cli("bench", engine, "--batch", "2", "--seq", "8", "--iters", "4", "--split-transfers",
                               "--spin-wait", "--streams", "2", "--profile-layers", "--json")
    assert code == 0, stderr
    extras = json.loads(stdout)["results"][0]["extras"]
    assert extras["split_ms"]["spin_wait"] and extras["streams"]["streams"] == 2 and extras["layer_profile"]
    assert "transfers and compute" in stderr and "layers of m.plan" in stderr
    code, stdout, stderr = cli("bench", engine, "--iters", "3", "--cuda-graph", "--shapes", "x:4x20x1", "--json")
    assert code == 0, stderr
    (row,) = json.loads(stdout)["results"]
    assert (row["variant"], row["batch"], row["seq"], row["extras"]["cuda_graph_used"]) == ("cuda-graph", 4, 20, True)
    code, _, stderr = cli("bench", engine, "--shapes", "x:4x20", "--iters", "2")
    assert code == 2 and "--shapes gives 'x' 2 dims (4x20); it has 3" in stderr


def test_onnxruntime_split_and_cuda_graph_provider_options(tmp_path):
    """The onnxruntime side: the split runs through fixed OrtValue buffers (here on the CPU provider); --cuda-graph
    asks the CUDA provider for enable_cuda_graph."""
    import quant_models as qm
    from edgelstm.artifacts.ort import make_session
    from edgelstm.latency import BenchTarget
    from edgelstm.latency.device_bench import apply_to_target
    from edgelstm.latency.ort_cuda import FixedBinding, cuda_providers, split_transfers

    src = qm.exported("lstm_regressor", tmp_path)
    session = make_session(src)
    x = qm.x_for("lstm_regressor", n=2, seq=9)
    out = split_transfers(session, {"x": x}, iters=3, warmup=1)
    assert out["device"] == "cpu" and out["compute"]["p50"] > 0
    fixed = FixedBinding(session, {"x": x})
    fixed.compute()
    assert np.allclose(fixed.download()[0], session.run(None, {"x": x})[0], atol=1e-6)
    assert cuda_providers(1, cuda_graph=True)[0] == ("CUDAExecutionProvider",
                                                     {"device_id": "1", "enable_cuda_graph": "1"})
    t = apply_to_target(BenchTarget(src), DeviceOptions(cuda_graph=True), "onnxruntime", "cuda:1")
    assert t.variant == "cuda-graph" and t.runner_options["providers"][0][1]["enable_cuda_graph"] == "1"
