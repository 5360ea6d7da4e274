"""The TensorRT runner against the stand-in: named tensors only, state streaming, profiles, CUDA-event timing and
graphs, what it refuses to load, host dtypes of the engine's I/O, and the CUDA objects it releases."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from onnx import TensorProto

try:
    import fakes as fake
    from fakes.fixtures import models, onnx_model, trt  # noqa: F401 - pytest fixtures
except ImportError:  # tests/ is a package in some layouts
    from tests import fakes as fake  # type: ignore[no-redef]
    from tests.fakes.fixtures import models, onnx_model, trt  # type: ignore[no-redef] # noqa: F401

from edgelstm.converters.tensorrt import BuildOptions, build_engine
from edgelstm.errors import BackendMissing, BadInput
from edgelstm.runners.tensorrt_runner import TensorRTRunner


@pytest.fixture
def engine(trt, models, tmp_path):
    trt()
    build_engine(models["stateful"], tmp_path / "s.plan", BuildOptions(batch=(1, 2, 4), seq=(1, 8, 16)))
    return tmp_path / "s.plan"


def test_runner_uses_named_tensors_only(engine):
    from edgelstm.runners import open_runner

    mod = sys.modules["tensorrt"]
    runner = open_runner(engine)
    assert isinstance(runner, TensorRTRunner) and runner.backend == "tensorrt" and runner.precision == "fp32"
    x = np.random.default_rng(0).normal(size=(3, 7, 1)).astype(np.float32)
    out = runner.run({"x": x})
    expect = x.reshape(3, -1).mean(axis=1)  # the stand-in engine computes mean(x[b]) (+ mean(h0[:, b]))
    np.testing.assert_allclose(out["y"][:, 0], expect, rtol=1e-6)
    assert out["hn"].shape == (1, 3, 8) and out["y"].dtype == np.float32
    names = mod.recorder.names()
    assert "IExecutionContext.execute_async_v3" in names
    assert "IExecutionContext.execute_v2" not in names
    addressed = {a[0] for a, _ in mod.recorder.find("IExecutionContext.set_tensor_address")}
    assert addressed == {"x", "h0", "c0", "y", "hn", "cn"}
    assert ("x", (3, 7, 1)) in [a for a, _ in mod.recorder.find("IExecutionContext.set_input_shape")]
    runner.close()


def test_runner_streams_state_between_steps(engine):
    runner = TensorRTRunner(engine)
    x = np.ones((2, 1, 1), np.float32)
    first = runner.step({"x": x})
    second = runner.step({"x": x})
    np.testing.assert_allclose(first["y"], 1.0)
    np.testing.assert_allclose(second["y"], 2.0)  # mean(x) + mean(h0 = previous hn)
    runner.reset_state()
    np.testing.assert_allclose(runner.step({"x": x})["y"], 1.0)


def test_runner_input_beyond_profile_names_the_profile(engine):
    runner = TensorRTRunner(engine)
    with pytest.raises(BadInput, match=r"outside the engine's optimization profile \(min \[1, 1, 1\], max \[4, 16, 1\]\)"):
        runner.run({"x": np.zeros((8, 4, 1), np.float32)})
    with pytest.raises(BadInput, match="rank"):
        runner.run({"x": np.zeros((2, 4), np.float32)})


def test_runner_timing_with_cuda_events_and_graphs(engine):
    runner = TensorRTRunner(engine, cuda_graph=True)
    x = np.full((2, 4, 1), 3.0, np.float32)
    np.testing.assert_allclose(runner.run({"x": x})["y"], 3.0)
    assert "begin_capture" in fake.CUDA.calls.names() and "launch" in fake.CUDA.calls.names()
    times = runner.timed_run({"x": x}, iters=5, warmup=2)
    assert times == [0.25] * 5  # one stand-in kernel (0.25 ms) per replayed graph
    assert runner.time_once() == 0.25
    plain = TensorRTRunner(engine)
    assert plain.timed_run({"x": x}, iters=3, warmup=1) == [0.25] * 3
    assert all(span == ["kernel"] for span in fake.CUDA.spans[-3:])  # enqueues only: no copies in the timed region
    cold = TensorRTRunner(engine)  # without warm-up the first sample holds TensorRT's first-run setup
    assert cold.timed_run({"x": x}, iters=2, warmup=0)[0] > 0.25


def test_close_destroys_the_stream_events_and_graphs(engine):
    """Issue 14.10: a runner releases every CUDA object it made, also a graph made stale by a new shape."""
    cuda = fake.CUDA
    runner = TensorRTRunner(engine, cuda_graph=True)
    stream = runner.stream
    runner.run({"x": np.ones((2, 4, 1), np.float32)})
    first_graph = runner._graph.handle
    runner.timed_run({"x": np.ones((3, 5, 1), np.float32)}, iters=2, warmup=1)  # new shape: recaptured
    assert first_graph not in cuda.live["graph"]  # the stale graph was destroyed, not dropped
    made = {"stream": {stream}, "event": {ev.handle for ev in runner._events}, "graph": {runner._graph.handle}}
    assert all(made[kind] <= cuda.live[kind] for kind in made)
    runner.close()
    runner.close()  # twice is fine
    assert not any(made[kind] & cuda.live[kind] for kind in made)
    assert runner.stream is None and runner.context is None


def test_bfloat16_io_gets_bfloat16_host_buffers(trt, tmp_path):
    """Issue 14.10: a BF16 tensor gets a 2-byte host buffer (not float32 bytes), outputs come back as float32."""
    trt()
    src = onnx_model(tmp_path / "bf16.onnx", x_type=TensorProto.BFLOAT16)
    build_engine(src, tmp_path / "bf16.plan", BuildOptions(batch=(1, 2, 4), seq=(1, 4, 8)))
    runner = TensorRTRunner(tmp_path / "bf16.plan")
    assert [t.dtype for t in (*runner.io.inputs, *runner.io.outputs)] == ["bfloat16", "bfloat16"]
    x = np.array([[[1.0, 2.0], [3.0, 4.0]]], np.float32)  # exactly representable in bfloat16
    before = len(fake.CUDA.calls.find("htod"))
    out = runner.run({"x": x})
    (ptr, nbytes, _stream), _ = fake.CUDA.calls.find("htod")[before]
    assert nbytes == x.size * 2
    assert out["y"].dtype == np.float32 and out["y"].shape == (1, 2, 2)
    np.testing.assert_allclose(out["y"], 2.5)
    runner.close()


def test_io_numpy_cannot_hold_is_refused_clearly(trt, tmp_path):
    trt()
    # an INT4 network input is refused before building (TensorRT takes INT4 only from Q/DQ): an INT4 output here
    src = onnx_model(tmp_path / "int4.onnx", x_type=TensorProto.FLOAT, y_type=TensorProto.INT4, nodes=("Identity",))
    build_engine(src, tmp_path / "int4.plan", BuildOptions(batch=(1, 2, 4), seq=(1, 4, 8)))
    with pytest.raises(BadInput, match=r"engine tensor 'y' is int4, which edgelstm cannot exchange with numpy"):
        TensorRTRunner(tmp_path / "int4.plan")


# ------------------------------------------------------------------------------------------ compatibility


def test_runner_refuses_engine_from_another_tensorrt_version(engine, monkeypatch):
    fake.switch_machine(monkeypatch, version="10.3.0.26")
    with pytest.raises(BadInput) as err:
        TensorRTRunner(engine)
    msg = str(err.value)
    assert "TensorRT 10.14.1.48, this machine has 10.3.0.26" in msg
    assert "rebuild it here from the shipped ONNX: edgelstm build lstm_stateful.onnx -o s.plan" in msg
    assert "\n" not in msg


def test_runner_refuses_engine_for_another_gpu(engine, monkeypatch):
    fake.switch_machine(monkeypatch, compute_capability="8.7", gpu_name="Orin")
    with pytest.raises(BadInput, match=r"compute capability 8\.9 .*this GPU Orin is 8\.7"):
        TensorRTRunner(engine)


def test_compatible_engines_load_elsewhere(trt, models, tmp_path, monkeypatch):
    trt("10.14.1.48")
    build_engine(models["lstm"], tmp_path / "c.plan", BuildOptions(hardware_compatible=True, version_compatible=True))
    fake.switch_machine(monkeypatch, version="10.16.0.1", compute_capability="8.0", gpu_name="A100")
    runner = TensorRTRunner(tmp_path / "c.plan")
    mod = sys.modules["tensorrt"]
    assert mod.recorder.find("Runtime.deserialize_cuda_engine")
    assert runner.run({"x": np.ones((1, 3, 1), np.float32)})["y"].shape == (1, 1)
    fake.switch_machine(monkeypatch, compute_capability="7.5", gpu_name="T4")
    with pytest.raises(BadInput, match="Ampere-or-newer"):
        TensorRTRunner(tmp_path / "c.plan")
    # issue 14.4: a version-compatible 10.x engine runs on a TensorRT 11 runtime (11.4 support matrix)
    fake.switch_machine(monkeypatch, version="11.4.0.9", compute_capability="8.0")
    runner = TensorRTRunner(tmp_path / "c.plan")
    assert runner.run({"x": np.ones((1, 3, 1), np.float32)})["y"].shape == (1, 1)


def test_version_compatibility_stops_where_the_support_matrix_does(trt, models, tmp_path, monkeypatch):
    trt("10.14.1.48")
    build_engine(models["lstm"], tmp_path / "plain.plan", BuildOptions())
    fake.switch_machine(monkeypatch, version="11.4.0.9")
    with pytest.raises(BadInput, match=r"TensorRT 10\.14\.1\.48, this machine has 11\.4\.0\.9"):
        TensorRTRunner(tmp_path / "plain.plan")  # not built version-compatible
    trt("11.1.0.5")
    build_engine(models["lstm"], tmp_path / "vc11.plan", BuildOptions(version_compatible=True))
    fake.switch_machine(monkeypatch, version="10.16.0.1")
    with pytest.raises(BadInput, match=r"version-compatible: needs 11\.x >= 11\.1\.0\.5\), this machine has 10\.16"):
        TensorRTRunner(tmp_path / "vc11.plan")  # never on an older runtime
    with pytest.raises(BadInput, match="not compatible with this version of TensorRT"):
        TensorRTRunner(tmp_path / "vc11.plan", check_compat=False)  # TensorRT's own check says the same


def test_corrupt_and_truncated_engines_are_one_line_errors(engine, tmp_path):
    data = engine.read_bytes()
    cut = tmp_path / "cut.plan"
    cut.write_bytes(data[: len(data) // 2])  # no manifest: TensorRT's own check
    with pytest.raises(BadInput, match=r"not an engine TensorRT 10\.14\.1\.48 can load .*magicTag") as err:
        TensorRTRunner(cut)
    assert "\n" not in str(err.value)
    engine.write_bytes(data[:-10])  # with a manifest: the sha256 no longer matches
    with pytest.raises(BadInput, match="does not match its manifest"):
        TensorRTRunner(engine)
    tiny = tmp_path / "tiny.plan"
    tiny.write_bytes(b"x")
    with pytest.raises(BadInput, match="truncated or empty"):
        TensorRTRunner(tiny)


def test_runner_without_tensorrt_is_exit_3(engine, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendMissing) as err:
        TensorRTRunner(engine)
    assert err.value.exit_code == 3
