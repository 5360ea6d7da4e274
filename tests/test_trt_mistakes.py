"""Deliberate TensorRT/CUDA mistakes ("mutants") against the stand-in: each one must fail a check that the
correct code passes, as it would fail (or silently misbehave) on a real GPU with real TensorRT.

Issue 14 listed nine mistakes the old stand-in let through; each has a test here (numbered as in the issue):
1. outputs read without synchronising           -> the host sees the poison pattern (NaN), not the outputs
2. copies or events on another stream           -> CudaOrderError (a race), or timings of 0 ms
3. device->host copies inside the timed region  -> the times include the copies
4. ILogger / calibrator subclass without the base __init__ -> TypeError (as pybind11 raises)
5. a numpy array passed as a shape              -> TypeError (pybind11 takes tuple, list or Dims)
6. float32 host buffers whatever the dtype      -> wrong values for an FP16 engine
7. CUDA-graph capture without a prior enqueue   -> TensorRT refuses the captured enqueue; the check sees no graph
8. ignored warm-up                              -> the first timed sample holds the first-run setup
9. a non-int stream handle                      -> TypeError
and a few more the real binding refuses (a host array or float as a device pointer, an int for an enum, a
removed or misspelt attribute, constructing a class that has no constructor, a calibration batch not synchronised).
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto

try:
    import fakes as fake
    from fakes.fixtures import calib_data, models, onnx_model, trt  # noqa: F401 - pytest fixtures
except ImportError:  # tests/ is a package in some layouts
    from tests import fakes as fake  # type: ignore[no-redef]
    from tests.fakes.fixtures import calib_data, models, onnx_model, trt  # type: ignore[no-redef] # noqa: F401

from converters.tensorrt import BuildOptions, build_engine
from edgelstm.runners.tensorrt_runner import TensorRTRunner

X = np.arange(24, dtype=np.float32).reshape(2, 12, 1) / 10


@pytest.fixture
def engine(trt, models, tmp_path):
    trt()
    return build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(batch=(1, 2, 4), seq=(1, 8, 16))).path


# ---------------------------------------------------------------- the checks the correct code passes


def check_outputs(runner, x=X) -> None:
    """The stand-in engine computes y[b] = mean(x[b])."""
    out = runner.run({"x": x})
    want = x.reshape(x.shape[0], -1).astype(np.float64).mean(axis=1)
    np.testing.assert_allclose(out["y"].reshape(x.shape[0], -1)[:, 0], want, rtol=1e-2, atol=1e-2)


def check_timing(runner, x=X, iters=4, warmup=2) -> None:
    """Each timed sample is one warm enqueue, nothing else."""
    times = runner.timed_run({"x": x}, iters=iters, warmup=warmup)
    assert times == [fake.KERNEL_MS] * iters, times
    assert fake.CUDA.spans[-iters:] == [["kernel"]] * iters, fake.CUDA.spans[-iters:]


def check_graph(runner, x=X) -> None:
    """A graph was really captured and is replayed."""
    before = len(fake.CUDA.calls.find("launch"))
    check_outputs(runner, x)
    assert runner.graph_error is None, runner.graph_error
    assert runner.use_graph and runner._graph is not None
    assert len(fake.CUDA.calls.find("launch")) == before + 1


class Backend:
    """A CUDA buffer backend wrapping the fake one, with some methods replaced (a mistake in a backend)."""

    def __init__(self, **replace):
        self.__dict__.update(replace)

    def __getattr__(self, name):
        return getattr(fake.CUDA, name)


def test_the_correct_runner_passes_every_check(engine):
    before = len(fake.CUDA.violations)
    check_outputs(TensorRTRunner(engine))
    check_timing(TensorRTRunner(engine))
    check_graph(TensorRTRunner(engine, cuda_graph=True))
    assert len(fake.CUDA.violations) == before and fake.CUDA.pending_copies() == 0


# ------------------------------------------------------------------------------------------ 1. no sync


def test_1_outputs_read_without_synchronising(engine):
    class NoSync(TensorRTRunner):
        def _fetch(self):
            for name, host in self._outputs.items():
                self.cuda.dtoh(host, self._buffers[name], self.stream)
            return {name: host.astype(np.float32) for name, host in self._outputs.items()}  # no synchronize

    runner = NoSync(engine)
    with pytest.raises(AssertionError):
        check_outputs(runner)
    assert np.isnan(runner._outputs["y"]).all() and fake.CUDA.pending_copies() > 0


# ------------------------------------------------------------------------------------ 2. other streams


def test_2a_input_copies_on_another_stream(engine):
    class UploadElsewhere(TensorRTRunner):
        def _bind(self, feeds):
            main, self.stream = self.stream, self.cuda.stream()
            try:
                super()._bind(feeds)     # the uploads go to a second stream that nothing waits for
            finally:
                self.stream = main

    with pytest.raises(fake.CudaOrderError, match="host-to-device copy on stream .* may still be writing it"):
        check_outputs(UploadElsewhere(engine))


def test_2b_output_copies_on_another_stream(engine):
    class DownloadElsewhere(TensorRTRunner):
        def _fetch(self):
            main, self.stream = self.stream, self.cuda.stream()
            try:
                return super()._fetch()  # the downloads race with the enqueue still running on the main stream
            finally:
                self.stream = main

    with pytest.raises(fake.CudaOrderError, match=r"device-to-host copy on stream .*\(execute_async_v3\)"):
        check_outputs(DownloadElsewhere(engine))


def test_2c_timing_events_on_another_stream(engine):
    side = fake.CUDA.stream()
    backend = Backend(record=lambda event, stream: fake.CUDA.record(event, side))
    with pytest.raises(AssertionError, match=r"\[0\.0, 0\.0"):
        check_timing(TensorRTRunner(engine, cuda_backend=backend))  # the events time a stream without the work
    split = Backend(record=lambda event, stream, n=iter(range(10**6)): fake.CUDA.record(
        event, side if next(n) % 2 else stream))
    with pytest.raises(fake.CudaOrderError, match="start event is on stream .* end event on stream"):
        check_timing(TensorRTRunner(engine, cuda_backend=split))


# -------------------------------------------------------------------------- 3. copies in the timed region


def test_3_device_to_host_copies_inside_the_timed_region(engine):
    class CopiesTimed(TensorRTRunner):
        def _enqueue(self):
            super()._enqueue()
            for name, host in self._outputs.items():
                self.cuda.dtoh(host, self._buffers[name], self.stream)

    with pytest.raises(AssertionError):
        check_timing(CopiesTimed(engine))
    assert fake.CUDA.spans[-1] == ["kernel", "dtoh"]


# ----------------------------------------------------------------------------------- 4. base __init__


def test_4a_logger_without_the_base_init(trt):
    mod = trt()

    class Forgetful(mod.ILogger):
        def __init__(self):
            self.messages = []       # ILogger.__init__(self) forgotten

        def log(self, severity, msg):
            self.messages.append(msg)

    with pytest.raises(TypeError, match=r"tensorrt\.tensorrt\.ILogger\.__init__\(\) must be called when overriding"):
        Forgetful()
    from edgelstm.artifacts.trt import make_logger

    logger = make_logger(mod)        # edgelstm's logger calls the base __init__
    assert mod.Builder(logger) is not None


def test_4b_calibrator_without_the_base_init(trt):
    mod = trt("10.3.0")

    class Forgetful(mod.IInt8EntropyCalibrator2):
        def __init__(self, feeder):
            self.feeder = feeder     # IInt8EntropyCalibrator2.__init__(self) forgotten

    with pytest.raises(TypeError, match=r"IInt8EntropyCalibrator2\.__init__\(\) must be called"):
        Forgetful(None)
    from calibration.trt_calibrator import make_calibrator

    calib = make_calibrator(mod, calib_data(), method="entropy")
    mod.Builder(mod.Logger()).create_builder_config().int8_calibrator = calib   # a real calibrator is accepted
    with pytest.raises(TypeError, match="incompatible function arguments"):
        mod.Builder(mod.Logger()).create_builder_config().int8_calibrator = object()


# ----------------------------------------------------------------------------------- 5. array as shape


def test_5_numpy_array_as_a_shape(engine):
    runner = TensorRTRunner(engine)
    shape = np.array(X.shape)
    with pytest.raises(TypeError, match=r"set_input_shape\(\): incompatible function arguments"):
        runner.context.set_input_shape("x", shape)
    for ok in (X.shape, list(X.shape), runner.trt.Dims(list(X.shape))):
        assert runner.context.set_input_shape("x", ok)
    profile = runner.trt.Builder(runner.trt.Logger()).create_optimization_profile()
    with pytest.raises(TypeError, match=r"set_shape\(\): incompatible function arguments"):
        profile.set_shape("x", shape, shape, shape)
    with pytest.raises(TypeError):
        runner.context.set_input_shape("x", (2.0, 12, 1))   # float dims fail too


# ----------------------------------------------------------------------------- 6. float32 whatever dtype


def test_6_float32_host_buffers_for_an_fp16_engine(trt, tmp_path):
    trt()
    src = onnx_model(tmp_path / "fp16.onnx", x_type=TensorProto.FLOAT16)
    plan = build_engine(src, tmp_path / "fp16.plan", BuildOptions(batch=(1, 2, 4), seq=(1, 4, 8))).path
    x = np.array([[[1.0, 2.0], [3.0, 4.0]]], np.float32)

    class Float32Everywhere(TensorRTRunner):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._dtypes = {name: np.dtype(np.float32) for name in self._dtypes}

    check_outputs(TensorRTRunner(plan), x)
    with pytest.raises(AssertionError):
        check_outputs(Float32Everywhere(plan), x)


# -------------------------------------------------------------------------- 7. capture before an enqueue


def test_7_graph_capture_without_a_prior_enqueue(engine):
    class CaptureFirst(TensorRTRunner):
        def _enqueue(self):
            if self.use_graph and self._graph is None:
                try:
                    self.cuda.begin_capture(self.stream)      # no plain enqueue after the shape change
                    try:
                        self._execute()
                    finally:
                        self._graph = self.cuda.end_capture(self.stream)
                except Exception as exc:  # noqa: BLE001 - the runner's own fallback
                    self.graph_error = f"{type(exc).__name__}: {exc}"
                    self.use_graph = False
                    self._drop_graph()
                    return
            if self.use_graph:
                self.cuda.launch(self._graph, self.stream)
                return
            self._execute()

    runner = CaptureFirst(engine, cuda_graph=True)
    with pytest.raises(AssertionError):
        check_graph(runner)
    assert "enqueue once before capturing" in runner.graph_error


# ------------------------------------------------------------------------------------- 8. no warm-up


def test_8_ignored_warm_up(engine):
    class NoWarmup(TensorRTRunner):
        def timed_run(self, feeds=None, iters=100, warmup=10):
            return super().timed_run(feeds, iters, warmup=0)

    with pytest.raises(AssertionError, match=rf"\[{fake.KERNEL_MS + fake.COLD_MS}, "):
        check_timing(NoWarmup(engine))


# ---------------------------------------------------------------------------------- 9. stream handles


def test_9_a_non_int_stream_handle(engine):
    class TorchLikeStream:  # what torch.cuda.Stream() is: an object with a .cuda_stream int, no __int__
        cuda_stream = 0

    runner = TensorRTRunner(engine)
    runner.run({"x": X})
    for bad in (TorchLikeStream(), 1.0, str(runner.stream), None):
        with pytest.raises(TypeError, match=r"execute_async_v3\(\): incompatible function arguments"):
            runner.context.execute_async_v3(bad)
        with pytest.raises(TypeError, match="stream handle is a plain int"):
            fake.CUDA.synchronize(bad)
    assert runner.context.execute_async_v3(np.int64(runner.stream))   # an integer of any kind is fine
    objects = Backend(stream=lambda: TorchLikeStream())                 # a backend handing out stream objects
    with pytest.raises(TypeError):
        check_outputs(TensorRTRunner(engine, cuda_backend=objects))


# ------------------------------------------------------------------------------- more the binding refuses


def test_host_memory_or_a_float_as_a_device_pointer(engine):
    runner = TensorRTRunner(engine)
    runner.run({"x": X})
    ctx = runner.context
    with pytest.raises(TypeError, match=r"set_tensor_address\(\): incompatible function arguments"):
        ctx.set_tensor_address("x", X)                      # the array itself
    with pytest.raises(TypeError):
        ctx.set_tensor_address("x", float(runner._buffers["x"].ptr))
    assert ctx.set_tensor_address("x", X.ctypes.data)       # an int, but host memory: the enqueue faults
    assert not ctx.execute_async_v3(runner.stream)
    assert "illegal memory access" in runner._logger.errors()[-1]


def test_enum_values_are_not_enum_members_and_removed_apis_are_gone(trt):
    mod = trt("11.4.0.106")
    config = mod.Builder(mod.Logger()).create_builder_config()
    with pytest.raises(TypeError, match=r"set_flag\(\): incompatible function arguments"):
        config.set_flag(6)                                  # the int value of TF32, not the member
    config.set_flag(mod.BuilderFlag.TF32)
    with pytest.raises(AttributeError):
        mod.BuilderFlag.INT8                                # noqa: B018 - removed in 11
    with pytest.raises(AttributeError, match="has no attribute 'int8_calibrator'"):
        config.int8_calibrator = None                       # removed in 11
    with pytest.raises(AttributeError, match="has no attribute 'DLA_cor'"):
        config.DLA_cor = 0                                  # a typo is not a new attribute
    with pytest.raises(AttributeError, match="has no setter"):
        config.num_optimization_profiles = 3                # read-only
    with pytest.raises(TypeError, match="No constructor defined"):
        mod.IBuilderConfig()


def test_a_calibration_batch_that_was_not_synchronised(trt, models, tmp_path, monkeypatch):
    """edgelstm's CalibrationFeeder uploads each batch on its own stream and synchronises before handing the
    pointers to TensorRT; without that synchronisation TensorRT would read a batch still being copied."""
    trt("10.3.0")
    monkeypatch.setattr(fake.CUDA, "synchronize", lambda stream, _real=fake.CUDA.synchronize: None
                        if stream != fake.cuda.TRT_INTERNAL_STREAM else _real(stream))  # the feeder's sync is a no-op
    with pytest.raises(fake.CudaOrderError, match="TensorRT's calibration pass on stream"):
        build_engine(models["lstm"], tmp_path / "i.plan", BuildOptions(precision="int8", batch=(1, 8, 8),
                                                                      seq=(1, 6, 6)), calib=calib_data())
