"""edgelstm's CUDA buffer backends (runners/cuda_*backend.py) run for real on recording stand-ins of cuda-python,
pycuda and torch (tests/fakes/cuda_modules.py): their surface is checked against the real libraries here, then
the backends and the TensorRT runner run on them, on one GPU of two (`--device cuda:1`)."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import numpy as np
import pytest

try:
    import fakes as fake
    from fakes import cuda_modules as cm
    from fakes.fixtures import models, trt  # noqa: F401 - pytest fixtures
except ImportError:  # tests/ is a package in some layouts
    from tests import fakes as fake  # type: ignore[no-redef]
    from tests.fakes import cuda_modules as cm  # type: ignore[no-redef]
    from tests.fakes.fixtures import models, trt  # type: ignore[no-redef] # noqa: F401

from edgelstm.errors import BackendMissing, BadInput

API = Path(__file__).parent / "cuda_api"
CUDA_BINDINGS = json.loads((API / f"cuda-bindings-{cm.CUDA_BINDINGS_VERSION}.json").read_text())
PYCUDA = json.loads((API / f"pycuda-{cm.PYCUDA_VERSION}.json").read_text())
BACKENDS = ("cuda-python", "pycuda", "torch")
X = np.arange(24, dtype=np.float32).reshape(2, 12, 1) / 10


def _param_names(signature: str) -> list[str]:
    inside = signature[signature.index("(") + 1: signature.rindex(")")]
    return [p.split(":")[0].split()[-1] for p in inside.split(",") if p.strip()]


# ------------------------------------------------------------------------------------------- the surfaces


def test_cuda_python_stand_in_has_the_real_names_parameters_returns_and_enum_values():
    rt = cm.cuda_python_modules()["cuda.bindings.runtime"]
    real = CUDA_BINDINGS["functions"]
    for name in cm.API_FUNCTIONS:
        assert name in real, f"cuda.bindings.runtime has no {name}"
        fake_params = list(inspect.signature(getattr(rt, name)).parameters)
        assert fake_params == _param_names(real[name]["signature"]), (name, real[name]["signature"])
        result = getattr(rt, name)(*[0] * len(fake_params))      # every call returns (cudaError_t, *values)
        assert isinstance(result, tuple) and len(result) == len(real[name]["returns"]), (name, result)
        assert type(result[0]).__name__ == "cudaError_t"
    for enum, members in (("cudaError_t", cm.CUDA_ERRORS), ("cudaMemcpyKind", cm.MEMCPY_KINDS),
                          ("cudaStreamCaptureMode", cm.CAPTURE_MODES)):
        assert members.items() <= CUDA_BINDINGS["enums"][enum].items(), enum
    for cls in ("cudaStream_t", "cudaEvent_t", "cudaGraph_t", "cudaGraphExec_t"):
        assert {"__int__", "__index__", "getPtr"} <= set(CUDA_BINDINGS["classes"][cls])
        assert int(getattr(rt, cls)(7)) == 7


def test_cuda_python_stand_in_converts_handles_like_the_real_bindings():
    rt = cm.cuda_python_modules()["cuda.bindings.runtime"]
    probes = {"int": 5, "numpy_int": np.int64(5), "float": 1.5, "none": None, "str": "5", "object": object()}
    for what, value in probes.items():
        real = CUDA_BINDINGS["handle_arguments"][what]
        try:
            rt.cudaStreamSynchronize(value)
            got = "accepted"
        except TypeError as exc:
            got = f"TypeError: {str(exc).split(': ', 1)[-1]}"
        assert got == real, (what, got, real)


def test_pycuda_stand_in_has_the_real_names():
    drv = cm.pycuda_modules()["pycuda.driver"]
    for name in ("init", "mem_alloc", "pagelocked_empty", "memcpy_htod_async", "memcpy_dtoh_async"):
        real_args = PYCUDA["functions"][name]
        fake_args = list(inspect.signature(getattr(drv, name)).parameters)
        assert not real_args or fake_args == real_args, (name, fake_args, real_args)
    for cls in ("Device", "Context", "Stream", "Event", "DeviceAllocation"):
        real = PYCUDA["classes"][cls]
        names = set(real["methods"]) | set(real["properties"])
        fake_cls = getattr(drv, cls, None) or getattr(cm, cls)
        ours = {n for n, v in vars(fake_cls).items() if not n.startswith("_") or n in ("__int__", "__index__")}
        assert ours <= names | {"handle"} - ({"handle"} if cls == "Event" else set()), (cls, ours - names)
        for static in ("count", "pop"):
            if static in ours:
                assert static in real["static"] and isinstance(vars(fake_cls)[static], staticmethod)


def test_torch_stand_in_names_exist_in_the_real_torch():
    torch = pytest.importorskip("torch")
    fake_torch = cm.torch_module()
    for name in ("uint8", "empty", "from_numpy"):
        assert hasattr(torch, name) and hasattr(fake_torch, name)
    for name in ("is_available", "device_count", "Stream", "Event", "stream", "device", "get_device_properties"):
        assert hasattr(torch.cuda, name) and hasattr(fake_torch.cuda, name), name
    for real, ours in ((torch.cuda.Stream, cm.TorchStream), (torch.cuda.Event, cm.TorchEvent)):
        real_params = set(inspect.signature(real.__new__).parameters)
        assert set(inspect.signature(ours.__init__).parameters) - {"self", "kwargs"} <= real_params, real
    for method in ("record", "synchronize", "query", "elapsed_time"):
        assert hasattr(torch.cuda.Event, method) and hasattr(cm.TorchEvent, method)
    # `cuda_stream` comes from the C base class, absent from a CPU build of torch: its own Python code reads it
    assert hasattr(torch.cuda.Stream, "synchronize") and "self.cuda_stream" in inspect.getsource(torch.cuda.Stream)
    for method in ("data_ptr", "numel", "copy_", "to"):
        assert hasattr(torch.Tensor, method) and hasattr(cm.CudaTensor, method)


# ------------------------------------------------------------------------------------------- the backends


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setitem(fake.MACHINE, "devices", 2)
    monkeypatch.setitem(fake.MACHINE, "current_device", 0)
    fake.install_cuda_modules(monkeypatch)


def _backend(name, device=0):
    from edgelstm.runners.cuda_buffers import get_backend

    return get_backend(name, device)


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_round_trip_events_and_placement_on_cuda_1(two_gpus, name):
    cuda = _backend(name, "cuda:1")
    assert cuda.name == name and cuda.device_index == 1 and cuda.device_info()["device"] == 1
    x = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
    buf, stream = cuda.malloc(x.nbytes), cuda.stream()
    start, end = cuda.event(), cuda.event()
    cuda.record(start, stream)
    cuda.htod(buf, x, stream)
    cuda.record(end, stream)
    assert cuda.elapsed_ms(start, end) == fake.COPY_MS          # it waits for `end` itself; the upload's time
    out = np.zeros_like(x)
    cuda.dtoh(out, buf, stream)
    cuda.synchronize(stream)
    np.testing.assert_array_equal(out, x)
    assert fake.OWNER[buf.ptr] == 1 and fake.CUDA.streams[stream].device == 1
    cuda.free(buf)
    cuda.destroy_stream(stream)
    assert buf.ptr not in fake.MEMORY and stream not in fake.CUDA.streams


@pytest.mark.parametrize("name", BACKENDS)
def test_a_missing_device_is_bad_input(two_gpus, name):
    with pytest.raises(BadInput, match=r"cuda:2 does not exist: .* sees 2 device\(s\), cuda:0\.\.cuda:1"):
        _backend(name, 2)
    with pytest.raises(BadInput, match="cuda or cuda:N"):
        _backend(name, "gpu1")


def test_get_backend_falls_through_to_the_first_that_starts(two_gpus, monkeypatch):
    from edgelstm.runners.cuda_buffers import get_backend

    assert get_backend(device=1).name == "pycuda"                 # pycuda first, where it is installed
    monkeypatch.setitem(__import__("sys").modules, "pycuda", None)
    monkeypatch.setattr("edgelstm.runners.cuda_buffers._cache", {})
    assert get_backend(device=1).name == "cuda-python"
    monkeypatch.setitem(fake.MACHINE, "devices", 0)
    monkeypatch.setattr("edgelstm.runners.cuda_buffers._cache", {})
    with pytest.raises(BackendMissing, match="no way to allocate CUDA device buffers .*sees no CUDA device"):
        get_backend()


def test_cuda_python_graph_capture_replays(two_gpus):
    cuda = _backend("cuda-python", 1)
    a, b = cuda.malloc(16), cuda.malloc(16)
    stream = cuda.stream()
    cuda.begin_capture(stream)
    cuda.htod(a, np.arange(4, dtype=np.float32), stream)
    graph = cuda.end_capture(stream)
    assert bytes(fake.MEMORY[a.ptr][:4]) == b"\x00" * 4           # captured, not run
    cuda.launch(graph, stream)
    cuda.synchronize(stream)
    assert np.frombuffer(bytes(fake.MEMORY[a.ptr]), np.float32).tolist() == [0, 1, 2, 3]
    cuda.destroy_graph(graph)
    for buf in (a, b):
        cuda.free(buf)


def test_the_stand_ins_refuse_what_the_libraries_refuse(two_gpus):
    rt = __import__("sys").modules["cuda.bindings.runtime"]
    err, ptr = rt.cudaMalloc(16)
    host = np.zeros(4, np.float32)
    _, s = rt.cudaStreamCreate()
    wrong = rt.cudaMemcpyAsync(ptr, host.ctypes.data, 16, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, s)
    assert wrong[0] == rt.cudaError_t.cudaErrorInvalidMemcpyDirection       # an upload with the download kind
    _, start = rt.cudaEventCreate()
    _, end = rt.cudaEventCreate()
    rt.cudaEventRecord(start, s)
    rt.cudaMemcpyAsync(ptr, host.ctypes.data, 16, rt.cudaMemcpyKind.cudaMemcpyHostToDevice, s)
    rt.cudaEventRecord(end, s)
    assert rt.cudaEventElapsedTime(start, end)[0] == rt.cudaError_t.cudaErrorNotReady  # end never waited for
    rt.cudaEventSynchronize(end)
    assert rt.cudaEventElapsedTime(start, end) == (rt.cudaError_t.cudaSuccess, fake.COPY_MS)
    assert rt.cudaSetDevice(2)[0] == rt.cudaError_t.cudaErrorInvalidDevice
    rt.cudaSetDevice(1)
    _, other = rt.cudaEventCreate()                                    # an event of device 1 on a device-0 stream
    assert rt.cudaEventRecord(other, s)[0] == rt.cudaError_t.cudaErrorInvalidResourceHandle
    drv = __import__("sys").modules["pycuda.driver"]
    with pytest.raises(drv.LogicError, match="invalid device context"):
        drv.mem_alloc(16)                                              # no context pushed
    torch = __import__("sys").modules["torch"]
    ev0, ev1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    st = torch.cuda.Stream(device=1)
    ev0.record(st)
    ev1.record(st)
    fake.CUDA.enqueue(st.cuda_stream, fake.cuda.Op("kernel", "work", 1.0))
    ev1.record(st)
    with pytest.raises(RuntimeError, match="Both events must be completed"):
        ev0.elapsed_time(ev1)


# -------------------------------------------------------------------------- the runner on the second GPU


@pytest.fixture
def engine_on_two_gpus(trt, models, tmp_path):
    from edgelstm.converters.tensorrt import BuildOptions, build_engine

    trt(devices=2, cuda_modules=BACKENDS)
    return build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(batch=(1, 2, 4), seq=(1, 8, 16))).path


def _check_outputs(runner):
    out = runner.run({"x": X})
    np.testing.assert_allclose(out["y"].reshape(2, -1)[:, 0], X.reshape(2, -1).mean(axis=1), rtol=1e-5)


@pytest.mark.parametrize("name", BACKENDS)
def test_the_runner_runs_on_the_device_it_was_given(engine_on_two_gpus, name):
    import sys

    from edgelstm.runners.tensorrt_runner import TensorRTRunner

    trt_mod = sys.modules["tensorrt"]
    with TensorRTRunner(engine_on_two_gpus, device="cuda:1", cuda_backend=name, cuda_graph=True) as runner:
        assert runner.device == "cuda:1" and runner.cuda.name == name and runner.engine._device == 1
        _check_outputs(runner)
        assert {fake.OWNER[b.ptr] for b in runner._buffers.values()} == {1}
        assert fake.CUDA.streams[runner.stream].device == 1
        assert runner.use_graph == (name == "cuda-python") and runner.graph_error is None
        times = runner.timed_run({"x": X}, iters=3, warmup=1)
        assert times == [fake.KERNEL_MS] * 3
    contexts = trt_mod.recorder.find("ICudaEngine.create_execution_context")
    assert contexts[-1][1]["device"] == 1                       # created with cuda:1 current


def test_open_runner_and_bench_pass_the_device_to_tensorrt(engine_on_two_gpus):
    from edgelstm.runners.base import open_runner

    runner = open_runner(engine_on_two_gpus, device="cuda:1")
    assert runner.device == "cuda:1" and runner.cuda.device_index == 1
    _check_outputs(runner)
    runner.close()
    assert open_runner(engine_on_two_gpus).device == "cuda:0"        # every command's default "cpu": the first GPU
    with pytest.raises(BadInput, match="cuda:3 does not exist"):
        open_runner(engine_on_two_gpus, device="cuda:3")


def test_an_engine_on_one_gpu_with_buffers_on_another_fails(engine_on_two_gpus):
    """What `--device cuda:1` used to do: deserialize on the current device (0) while the buffers are on 1."""
    from edgelstm.errors import InternalError
    from edgelstm.runners.cuda_buffers import get_backend
    from edgelstm.runners.tensorrt_runner import TensorRTRunner

    class NoActivate:                           # a backend of device 1 that never makes device 1 current
        def __init__(self):
            self._inner = get_backend("pycuda", 1)

        def __getattr__(self, name):
            if name == "activate":
                raise AttributeError(name)
            return getattr(self._inner, name)

    runner = TensorRTRunner(engine_on_two_gpus, device="cuda:1", cuda_backend=NoActivate())
    with pytest.raises(InternalError, match=re.escape("is on cuda:1, the engine on cuda:0")):
        runner.run({"x": X})


# ------------------------------------------------------------------------------------------------- bench


@pytest.fixture
def engine_cuda_python(trt, models, tmp_path):
    """The engine on a two-GPU stand-in with cuda-python only (bench reads the real torch's thread count)."""
    from edgelstm.converters.tensorrt import BuildOptions, build_engine

    trt(devices=2, cuda_modules=("cuda-python",))
    return build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(batch=(1, 2, 4), seq=(1, 8, 16))).path


def test_bench_times_tensorrt_with_cuda_graphs_on_the_device_asked(engine_cuda_python):
    """Issue 21.3: bench passes --device cuda:N to TensorRT, and its CUDA-graph variant reaches the runner's graph
    path (it used to be refused for every backend but torch); the row says whether a graph really replayed."""
    from edgelstm.latency import BenchGrid, BenchOptions, BenchTarget, TimingPolicy, bench_artifacts

    first = len(fake.CUDA.calls.calls)                          # the log is shared: this test's calls come after
    targets = [BenchTarget(engine_cuda_python, name="plain"),
               BenchTarget(engine_cuda_python, name="graph", variant="cuda-graph")]
    report = bench_artifacts(targets, BenchGrid((2,), (12,)),
                             BenchOptions(device="cuda:1", policy=TimingPolicy(warmup=1, iters=4),
                                          measure_memory=False))
    rows = {r.artifact: r for r in report.results}
    assert {r.device for r in rows.values()} == {"cuda:1"}
    assert rows["graph"].variant == "cuda-graph" and rows["graph"].extras["cuda_graph_used"] is True
    assert "cuda_graph_used" not in rows["plain"].extras
    mine = fake.CUDA.calls.calls[first:]
    assert sum(n == "cudart.cudaGraphLaunch" for n, _a, _k in mine) >= 5      # warm-up + 4 timed replays
    devices = {k["device"] for n, _a, k in mine if n == "cudart.cudaMalloc"}
    assert devices == {1}, devices


@pytest.mark.parametrize("variant, backend", [("amp", "tensorrt"), ("amp", "onnxruntime"), ("x", "torch")])
def test_bench_refuses_a_variant_the_backend_lacks(variant, backend):
    from edgelstm.latency.bencher import check_variant

    with pytest.raises(BadInput, match="variant|unknown"):
        check_variant(variant, backend, "cuda")
    with pytest.raises(BadInput, match="needs CUDA"):
        check_variant("cuda-graph", "onnxruntime", "cpu")   # onnxruntime's CUDA graphs: its CUDA provider only
    check_variant("cuda-graph", "tensorrt", "cuda:1")
    check_variant("amp+cuda-graph", "torch", "cuda")
