"""The GPU paths. Tests marked `gpu` run only where torch sees a CUDA device (scripts/gpu-check.sh runs them and
prints one summary line); the unmarked ones check the same paths everywhere with stand-ins (PyTorch's "meta"
device for "cuda", a fake pycuda driver).

gpu-marked: the torch CUDA runner; bench rows eager / autocast / CUDA graphs (a captured graph must really replay);
each CUDA buffer backend present (cuda-python, torch, pycuda) with real round trips, events, and for cuda-python a
CUDA graph that is proven to replay; cupy (where installed) reading what a backend wrote; the TensorRT runner over
the TensorRT stand-in with real device memory and streams."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

try:
    import fakes as fake
    import trt_models
except ImportError:  # tests/ is a package in some layouts
    from tests import fakes as fake  # type: ignore[no-redef]
    from tests import trt_models  # type: ignore[no-redef]


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _moving_to_meta(torch, model, monkeypatch):
    """Make `model.to("cuda")` move it to the meta device, and torch believe CUDA exists."""
    real_to = model.to
    monkeypatch.setattr(model, "to", lambda device, *a, **k: real_to("meta") if str(device).startswith("cuda")
                        else real_to(device, *a, **k))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    return model


# ----------------------------------------------------------------------------------- everywhere (stand-ins)


def test_the_io_probe_runs_on_the_modules_device(torch, tiny_model):
    """Issue 14.1: the probe's inputs are made on the module's device, not on the CPU."""
    from edgelstm.runners.torch_runner import module_device, probe_torch_io

    model = tiny_model("lstm_regressor").to("meta")
    seen = []
    model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].device.type))
    assert module_device(model).type == "meta"
    io = probe_torch_io(model, 1)
    assert len(seen) >= 2 and set(seen) == {"meta"}  # every probe run (layout checks included) on its device
    assert io.outputs[0].shape == ("batch", 1)


def test_torch_runner_on_cuda_probes_on_the_device(torch, tiny_model, monkeypatch):
    """TorchRunner(device="cuda") moves the module, then probes it there (it used to feed CPU tensors)."""
    from edgelstm.runners.torch_runner import TorchRunner

    model = _moving_to_meta(torch, tiny_model("lstm_regressor"), monkeypatch)
    runner = TorchRunner(model, device="cuda")
    assert runner.device == "cuda" and next(runner.module.parameters()).device.type == "meta"
    assert runner.io.input_names == ["x"] and runner.io.outputs[0].shape == ("batch", 1)


def test_module_without_parameters_probes_on_cpu(torch):
    from edgelstm.runners.torch_runner import module_device

    assert module_device(torch.nn.Identity()).type == "cpu"


class _FakePycuda:
    """Just enough of pycuda.driver to check what the pycuda backend asks of it (issue 14.9)."""

    def __init__(self):
        self.log: list[str] = []
        self.stack: list[str] = []
        log, stack = self.log, self.stack

        class Context:
            def __init__(self, name):
                self.name = name

            def push(self):
                stack.append(self.name)

            @staticmethod
            def pop():
                stack.pop()

            def detach(self):
                log.append("detach")

        class Device:
            @staticmethod
            def count():
                return 1

            def __init__(self, i):
                self.i = i

            def retain_primary_context(self):
                log.append("retain_primary_context")
                return Context("primary")

            def make_context(self):  # what pycuda.autoinit does: a new, non-primary context
                log.append("make_context")
                return Context("own")

        class Stream:
            handle = 77

            def synchronize(self):
                assert stack, "no current context"
                log.append("stream.synchronize")

        class Event:
            def record(self, stream=None):
                log.append("event.record")

            def synchronize(self):
                pass

        self.memory: dict[int, np.ndarray] = {}
        memory = self.memory

        class Allocation(int):
            def free(self):
                memory.pop(int(self), None)

        def mem_alloc(n):
            assert stack == ["primary"], stack
            ptr = Allocation(0x1000 + len(memory) * 0x1000)
            memory[int(ptr)] = np.zeros(n, np.uint8)
            return ptr

        def pagelocked_empty(n, dtype):
            log.append("pagelocked_empty")
            a = np.zeros(n, dtype)
            pinned.add(id(a))
            return a

        pinned: set[int] = set()

        def is_pinned(a):
            return id(a) in pinned or (a.base is not None and id(a.base) in pinned)

        def memcpy_htod_async(dst, src, stream):
            assert is_pinned(src), "an async copy from pageable memory"
            memory[int(dst)][: src.nbytes] = src.view(np.uint8)

        def memcpy_dtoh_async(dst, src, stream):
            assert is_pinned(dst), "an async copy into pageable memory"
            dst.view(np.uint8)[:] = memory[int(src)][: dst.nbytes]

        self.driver = types.SimpleNamespace(init=lambda: log.append("init"), Device=Device, Context=Context,
                                            Stream=Stream, Event=Event, mem_alloc=mem_alloc,
                                            pagelocked_empty=pagelocked_empty, memcpy_htod_async=memcpy_htod_async,
                                            memcpy_dtoh_async=memcpy_dtoh_async)


def test_pycuda_backend_uses_the_primary_context_pinned_copies_and_no_graphs(monkeypatch):
    """Issue 14.9: no pycuda.autoinit (a second context that conflicts with torch): the primary context, pushed
    and popped around each call; async copies through pinned buffers; no CUDA graphs."""
    from edgelstm.errors import BackendMissing
    from edgelstm.runners.cuda_buffers import PycudaBackend

    fake_pycuda = _FakePycuda()
    pkg = types.ModuleType("pycuda")
    pkg.driver = fake_pycuda.driver
    monkeypatch.setitem(sys.modules, "pycuda", pkg)
    monkeypatch.setitem(sys.modules, "pycuda.driver", fake_pycuda.driver)
    monkeypatch.setitem(sys.modules, "pycuda.autoinit", None)   # importing it would fail the test
    backend = PycudaBackend()
    assert "retain_primary_context" in fake_pycuda.log and "make_context" not in fake_pycuda.log
    buf = backend.malloc(16)
    stream = backend.stream()
    x = np.arange(4, dtype=np.float32)
    backend.htod(buf, x, stream)
    out = np.full(4, np.nan, np.float32)
    backend.dtoh(out, buf, stream)
    assert np.isnan(out).all()                 # lands when the stream is synchronised, not before
    backend.synchronize(stream)
    np.testing.assert_array_equal(out, x)
    assert fake_pycuda.stack == []             # every push popped again
    assert "pagelocked_empty" in fake_pycuda.log
    assert backend.supports_graphs is False
    with pytest.raises(BackendMissing, match="not available through the pycuda backend"):
        backend.begin_capture(stream)
    backend.free(buf)
    backend.close()
    assert "detach" in fake_pycuda.log


# ------------------------------------------------------------------------------------------ on a real GPU


@pytest.mark.gpu
def test_torch_runner_runs_on_cuda(torch, tiny_model):
    from edgelstm.runners.torch_runner import TorchRunner

    model = tiny_model("lstm_regressor")
    x = np.random.default_rng(0).normal(size=(3, 12, 1)).astype(np.float32)
    want = TorchRunner(model).run({"x": x})
    gpu = TorchRunner(tiny_model("lstm_regressor"), device="cuda")
    assert next(gpu.module.parameters()).is_cuda
    got = gpu.run({"x": x})
    assert got["y"].dtype == np.float32
    np.testing.assert_allclose(got["y"], want["y"], rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
def test_bench_rows_eager_autocast_and_cuda_graphs(torch, tiny_model):
    from edgelstm.latency import BenchGrid, BenchOptions, BenchTarget, TimingPolicy, bench_artifacts

    model = tiny_model("lstm_regressor")
    variants = ("", "amp", "cuda-graph", "amp+cuda-graph")
    targets = [BenchTarget(model, name=f"m{v}", device="cuda", variant=v) for v in variants]
    report = bench_artifacts(targets, BenchGrid((2,), (12,)),
                             BenchOptions(device="cuda", policy=TimingPolicy(warmup=2, iters=8), measure_memory=False))
    rows = {r.variant: r for r in report.results}
    assert set(rows) == set(variants)
    for variant, row in rows.items():
        assert row.device == "cuda" and row.timer == "cuda-event" and row.iters == 8
        assert row.latency_ms["min"] > 0
        assert (row.timing_path or "").endswith("-graph") == ("cuda-graph" in variant), row.timing_path
    assert rows["amp"].precision == "fp16" and rows[""].precision == "fp32"


@pytest.mark.gpu
def test_a_captured_torch_graph_really_replays(torch, tiny_model):
    """The bench's CUDA-graph path: a replay returns the graph's static output (the same tensor every time, unlike
    eager) and recomputes it (zeroed in between, it comes back right): a capture that silently fell back to eager,
    or a graph that does not run, fails here."""
    from edgelstm.latency.adapters import torch_path

    model = tiny_model("lstm_regressor").to("cuda").eval()
    x = np.random.default_rng(0).normal(size=(2, 12, 1)).astype(np.float32)
    eager = torch_path(model, {"x": x}, device="cuda")
    assert eager.call() is not eager.call()
    path = torch_path(model, {"x": x}, device="cuda", cuda_graph=True)
    assert path.name == "torch-cuda-graph"
    out = path.call()
    assert path.call() is out                    # the static output of the captured graph
    with torch.no_grad():
        want = model(torch.from_numpy(x).cuda())
    torch.cuda.synchronize()
    torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-5)
    out.zero_()
    path.call()
    torch.cuda.synchronize()
    torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-5)   # recomputed by the replay
    times = path.timed_run(None, 5)
    assert len(times) == 5 and all(t > 0 for t in times)


def _backends():
    """Every CUDA buffer backend that starts here, by name."""
    from edgelstm.runners.cuda_buffers import _BACKENDS

    out = {}
    for name, cls in _BACKENDS.items():
        try:
            out[name] = cls()
        except Exception:  # noqa: BLE001 - not installed, or no device
            continue
    return out


@pytest.fixture(scope="module")
def backends(torch):
    found = _backends()
    if not found:
        pytest.skip("no CUDA buffer backend starts")
    return found


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["cuda-python", "torch", "pycuda"])
def test_buffer_backend_round_trip_and_events(backends, name):
    if name not in backends:
        pytest.skip(f"{name} is not installed or does not start")
    cuda = backends[name]
    x = np.random.default_rng(1).normal(size=(64, 33)).astype(np.float32)
    buf = cuda.malloc(x.nbytes)
    stream = cuda.stream()
    start, end = cuda.event(), cuda.event()
    try:
        cuda.record(start, stream)
        cuda.htod(buf, x, stream)
        out = np.zeros_like(x)
        cuda.dtoh(out, buf, stream)
        cuda.record(end, stream)
        cuda.synchronize(stream)
        np.testing.assert_array_equal(out, x)
        assert cuda.elapsed_ms(start, end) >= 0
        info = cuda.device_info()
        assert info["name"] and info["compute_capability"] and info["source"] == name
    finally:
        cuda.free(buf)
        cuda.destroy_event(start)
        cuda.destroy_event(end)
        cuda.destroy_stream(stream)


@pytest.mark.gpu
def test_cuda_python_graph_really_replays(backends):
    """A graph captured through the cuda-python backend (a device-to-device copy) does nothing until launched and
    does the copy each time it is launched."""
    if "cuda-python" not in backends:
        pytest.skip("cuda-python is not installed")
    cuda = backends["cuda-python"]
    rt = cuda.rt
    src = np.arange(256, dtype=np.float32)
    a, b = cuda.malloc(src.nbytes), cuda.malloc(src.nbytes)
    stream = cuda.stream()
    try:
        cuda.htod(a, src, stream)
        cuda.htod(b, np.zeros_like(src), stream)
        cuda.synchronize(stream)
        cuda.begin_capture(stream)
        rt.cudaMemcpyAsync(b.ptr, a.ptr, src.nbytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice, stream)
        graph = cuda.end_capture(stream)
        out = np.ones_like(src)
        cuda.dtoh(out, b, stream)
        cuda.synchronize(stream)
        assert not out.any()                         # captured, not run
        cuda.launch(graph, stream)
        cuda.dtoh(out, b, stream)
        cuda.synchronize(stream)
        np.testing.assert_array_equal(out, src)      # replayed
        cuda.htod(a, 2 * src, stream)
        cuda.launch(graph, stream)
        cuda.dtoh(out, b, stream)
        cuda.synchronize(stream)
        np.testing.assert_array_equal(out, 2 * src)  # replayed again, on the new contents
        cuda.destroy_graph(graph)
    finally:
        cuda.free(a)
        cuda.free(b)
        cuda.destroy_stream(stream)


@pytest.mark.gpu
def test_torch_and_pycuda_backends_say_they_have_no_graphs(backends):
    from edgelstm.errors import BackendMissing

    for name in ("torch", "pycuda"):
        if name in backends:
            assert backends[name].supports_graphs is False
            with pytest.raises(BackendMissing):
                backends[name].begin_capture(backends[name].stream())


@pytest.mark.gpu
def test_cupy_reads_what_each_backend_wrote(backends):
    cp = pytest.importorskip("cupy")
    x = np.arange(100, dtype=np.float32)
    for name, cuda in backends.items():
        buf = cuda.malloc(x.nbytes)
        stream = cuda.stream()
        cuda.htod(buf, x, stream)
        cuda.synchronize(stream)
        mem = cp.cuda.UnownedMemory(buf.ptr, x.nbytes, owner=None)
        seen = cp.ndarray(x.shape, cp.float32, cp.cuda.MemoryPointer(mem, 0))
        np.testing.assert_array_equal(cp.asnumpy(seen), x, err_msg=name)
        cuda.free(buf)
        cuda.destroy_stream(stream)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["cuda-python", "torch", "pycuda"])
def test_tensorrt_runner_over_the_stand_in_with_real_device_memory(backends, name, monkeypatch, tmp_path):
    """The runner's buffers, copies, streams and events on the real GPU; only TensorRT is the stand-in (its
    "engine" computes y[b] = mean(x[b]) (+ mean(h0[:, b])) from what is really in device memory)."""
    if name not in backends:
        pytest.skip(f"{name} is not installed or does not start")
    from edgelstm.converters.tensorrt import BuildOptions, build_engine
    from edgelstm.runners.tensorrt_runner import TensorRTRunner

    cuda = backends[name]
    gpu = cuda.device_info()
    fake.install(monkeypatch, "10.3.0", device_backend=cuda, compute_capability=gpu["compute_capability"],
                 gpu_name=gpu["name"])
    onnx = trt_models.write("lstm_stateful", tmp_path / "s.onnx", input_size=1)
    plan = build_engine(onnx, tmp_path / "s.plan", BuildOptions(batch=(1, 2, 4), seq=(1, 8, 16))).path
    x = np.random.default_rng(2).normal(size=(3, 7, 1)).astype(np.float32)
    with TensorRTRunner(plan) as runner:
        out = runner.run({"x": x})
        assert runner.cuda.name == name and fake.cuda.DEVICE.buffers   # real buffers, allocated by that backend
        np.testing.assert_allclose(out["y"][:, 0], x.reshape(3, -1).mean(axis=1), rtol=1e-5, atol=1e-6)
        assert out["hn"].shape == (1, 3, trt_models.HIDDEN)
        ones = np.ones((2, 1, 1), np.float32)
        np.testing.assert_allclose(runner.step({"x": ones})["y"], 1.0)
        np.testing.assert_allclose(runner.step({"x": ones})["y"], 2.0)   # the state went through device memory
        times = runner.timed_run({"x": x}, iters=5, warmup=2)
        assert len(times) == 5 and all(t >= 0 for t in times)


@pytest.mark.gpu
def test_int8_calibration_batches_in_real_device_memory(backends, monkeypatch, tmp_path):
    """The calibrator's feeder uploads each batch to the real GPU; the stand-in builder reads them back."""
    from edgelstm.converters.tensorrt import BuildOptions, build_engine
    from edgelstm.data import BatchSource

    name, cuda = next(iter(backends.items()))
    fake.install(monkeypatch, "10.3.0", device_backend=cuda, compute_capability=cuda.device_info()["compute_capability"])
    onnx = trt_models.write("lstm", tmp_path / "m.onnx", input_size=1)
    xc = np.random.default_rng(3).normal(size=(24, 6, 1)).astype(np.float32)
    res = build_engine(onnx, tmp_path / "m.plan", BuildOptions(precision="int8", batch=(1, 8, 8), seq=(1, 6, 6),
                                                               calib_cache=tmp_path / "c.cache"),
                       calib=BatchSource({"x": xc}, {"x": 0}, len(xc), 8))
    assert res.calibration["batches_fed"] == 6 and res.calibration["passes"] == 2, (name, res.calibration)
    assert (tmp_path / "c.cache").is_file()
