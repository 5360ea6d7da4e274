"""Deliberate TensorRT/CUDA mistakes against the stand-in. The mistakes themselves are a table of source patches
(tests/trt_mutants.py) that tests/test_trt_mutants.py applies to copies of the product code; the checks here are
what catches them: each passes on the correct code and fails on at least one mutant.

This module also shows how the stand-in catches each kind of mistake (issue 14's nine, issue 21's three):
outputs read without synchronising see the poison pattern (NaN); copies or events on another stream are a race
(CudaOrderError) or time nothing; device->host copies in the timed region show in the times; a logger or
calibrator subclass without the base __init__ is a TypeError (as pybind11 raises); float dimensions are refused
(integer sequences, numpy integer arrays included, are accepted, as the real binding does: issue 21.7); float32
host buffers for an FP16 engine give wrong values; CUDA-graph capture without a prior enqueue is refused; an
ignored warm-up shows in the first sample; a non-int stream handle is a TypeError; and a few more the real binding
refuses (a host array or float as a device pointer, an int for an enum, a removed or misspelt attribute,
constructing a class that has no constructor, a calibration batch not synchronised).
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

from edgelstm.converters.tensorrt import BuildOptions, build_engine
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


# ---------------------------------------------------------------- the checks the mutant table runs


def test_runner_outputs(engine):
    """The outputs are the engine's (not the poison pattern of an unsynchronised copy, not a race)."""
    before = len(fake.CUDA.violations)
    check_outputs(TensorRTRunner(engine))
    assert len(fake.CUDA.violations) == before and fake.CUDA.pending_copies() == 0


def test_runner_timing(engine):
    check_timing(TensorRTRunner(engine))


def test_runner_cuda_graph(engine):
    check_graph(TensorRTRunner(engine, cuda_graph=True))


def test_runner_fp16_engine(trt, tmp_path):
    """An engine with FP16 I/O: host buffers in FP16, outputs as float32."""
    trt()
    src = onnx_model(tmp_path / "fp16.onnx", x_type=TensorProto.FLOAT16)
    plan = build_engine(src, tmp_path / "fp16.plan", BuildOptions(batch=(1, 2, 4), seq=(1, 4, 8))).path
    check_outputs(TensorRTRunner(plan), np.array([[[1.0, 2.0], [3.0, 4.0]]], np.float32))


# ------------------------------------------------------------------ how the stand-in catches each kind


def test_1_outputs_read_without_synchronising_are_poison(engine):
    runner = TensorRTRunner(engine)
    prepared = runner._prepare({"x": X})
    runner._set_shapes(prepared)
    runner._bind(prepared)
    runner._enqueue()
    for name, host in runner._outputs.items():
        runner.cuda.dtoh(host, runner._buffers[name], runner.stream)     # no synchronize
    assert np.isnan(runner._outputs["y"]).all() and fake.CUDA.pending_copies() > 0
    runner.cuda.synchronize(runner.stream)
    assert not np.isnan(runner._outputs["y"]).any()


def test_2a_copies_on_another_stream_are_a_race(engine):
    runner = TensorRTRunner(engine)
    runner.run({"x": X})
    side = runner.cuda.stream()
    runner.cuda.htod(runner._buffers["x"], X, side)                      # nothing orders `side` and the enqueue
    with pytest.raises(fake.CudaOrderError, match="may still be writing it"):
        runner._execute()


def test_2b_timing_events_on_another_stream(engine):
    side = fake.CUDA.stream()
    backend = Backend(record=lambda event, stream: fake.CUDA.record(event, side))
    with pytest.raises(AssertionError, match=r"\[0\.0, 0\.0"):
        check_timing(TensorRTRunner(engine, cuda_backend=backend))  # the events time a stream without the work
    split = Backend(record=lambda event, stream, n=iter(range(10**6)): fake.CUDA.record(
        event, side if next(n) % 2 else stream))
    with pytest.raises(fake.CudaOrderError, match="start event is on stream .* end event on stream"):
        check_timing(TensorRTRunner(engine, cuda_backend=split))


def test_7_capture_without_a_prior_enqueue_is_refused(engine):
    runner = TensorRTRunner(engine)
    runner.run({"x": X})
    runner.context.set_input_shape("x", (1, 12, 1))                     # a shape change: the next enqueue is cold
    runner.cuda.begin_capture(runner.stream)
    assert not runner.context.execute_async_v3(runner.stream)
    runner.cuda.end_capture(runner.stream)
    assert "enqueue once before capturing" in runner._logger.errors()[-1]


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
    from edgelstm.calibration.trt_calibrator import make_calibrator

    calib = make_calibrator(mod, calib_data(), method="entropy")
    mod.Builder(mod.Logger()).create_builder_config().int8_calibrator = calib   # a real calibrator is accepted
    with pytest.raises(TypeError, match="incompatible function arguments"):
        mod.Builder(mod.Logger()).create_builder_config().int8_calibrator = object()


def test_5_shapes_integer_sequences_yes_floats_no(engine):
    """Issue 21.7: the real binding converts any sequence of integers to Dims (TensorRT declares
    py::implicitly_convertible<std::vector<int>, Dims>, and pybind11's list caster takes a numpy integer array); the
    old "numpy array as a shape" mistake was not one. Float dimensions are refused."""
    runner = TensorRTRunner(engine)
    for ok in (X.shape, list(X.shape), runner.trt.Dims(list(X.shape)), np.array(X.shape), np.array(X.shape, np.int32)):
        assert runner.context.set_input_shape("x", ok)
    profile = runner.trt.Builder(runner.trt.Logger()).create_optimization_profile()
    shape = np.array(X.shape)
    profile.set_shape("x", shape, shape, shape)
    assert runner.trt.Dims(shape) == X.shape
    for bad in ((2.0, 12, 1), np.array(X.shape, np.float64), "2,12,1", np.zeros((2, 3), np.int64)):
        with pytest.raises(TypeError, match=r"set_input_shape\(\): incompatible function arguments"):
            runner.context.set_input_shape("x", bad)


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
