"""INT8 against the TensorRT stand-in: the 10.x calibrator route (calibrator, calibration profile, cache reuse,
on every 10.x), the strongly typed Q/DQ route (11.x), and the calibration feeder itself."""

from __future__ import annotations

import numpy as np
import pytest

try:
    import fakes as fake
    from fakes.fixtures import calib_data, calls, models, trt  # noqa: F401 - pytest fixtures
except ImportError:  # tests/ is a package in some layouts
    from tests import fakes as fake  # type: ignore[no-redef]
    from tests.fakes.fixtures import calib_data, calls, models, trt  # type: ignore[no-redef] # noqa: F401

from edgelstm.converters.tensorrt import BuildOptions, build_engine
from edgelstm.errors import BadInput


class Exploding:
    def __iter__(self):
        raise AssertionError("the calibration data must not be read when the cache exists")


@pytest.mark.parametrize("version", ["10.3.0.26", "10.14.1.48", "11.0.0.9"])
def test_int8_without_calibration_or_qdq_is_bad_input(trt, models, tmp_path, version):
    trt(version)
    with pytest.raises(BadInput, match="INT8 needs calibration data or a Q/DQ ONNX"):
        build_engine(models["lstm"], tmp_path / "m.plan", BuildOptions(precision="int8"))
    assert not (tmp_path / "m.plan").exists()


def test_int8_10_3_calibrates_then_reuses_the_cache(trt, models, tmp_path):
    mod = trt("10.3.0.26")
    cache = tmp_path / "model.calib"
    res = build_engine(models["lstm"], tmp_path / "a.plan", BuildOptions(precision="int8", calib_cache=cache),
                       calib=calib_data())
    assert ("INT8",) in [a for a, _ in calls(mod, "IBuilderConfig.set_flag")]
    assert [type(a[0]).__name__ for a, _ in calls(mod, "IBuilderConfig.int8_calibrator=")] == [
        "EdgeLSTMInt8MinMaxCalibrator"]  # minmax: the one calibration default (edgelstm.options)
    cprof = calls(mod, "IBuilderConfig.set_calibration_profile")[0][0][0]
    assert cprof["x"] == ((8, 6, 1), (8, 6, 1), (8, 6, 1))  # one fixed calibration shape: the batch's
    assert len(calls(mod, "calibrator.get_batch")) == 6  # 3 batches, walked twice
    assert cache.read_bytes() == b"TRT-FAKE-CALIBRATION-CACHE v1"
    assert res.calibration["cache_written"] and res.calibration["passes"] == 2
    # issue 21.7: the 10.3 binding marks int8_calibrator/set_calibration_profile deprecated since 10.1; the
    # precision flags only from 10.12
    assert any("deprecates IBuilderConfig.int8_calibrator and set_calibration_profile (since 10.1" in w
               for w in res.warnings), res.warnings
    assert not any("BuilderFlag" in w for w in res.warnings)
    assert res.layer_precision["groups"]["dense"] == {"INT8": 1}
    assert set(res.layer_precision["groups"]["recurrent"]) == {"FP32"}  # the LSTM loop stays float

    mod2 = trt("10.3.0.26")
    res2 = build_engine(models["lstm"], tmp_path / "b.plan", BuildOptions(precision="int8", calib_cache=cache),
                        calib=Exploding())
    assert calls(mod2, "calibrator.read_calibration_cache") == [((True,), {})]
    assert calls(mod2, "calibrator.get_batch") == []
    assert res2.calibration["cache_read"] and not res2.calibration["cache_written"]
    # a cache alone (no data) is enough too
    build_engine(models["lstm"], tmp_path / "c.plan", BuildOptions(precision="int8", calib_cache=cache))


@pytest.mark.parametrize("version", ["10.12.0.36", "10.13.2.6", "10.14.1.48"])
def test_calib_cache_is_honoured_on_every_10x(trt, models, tmp_path, version):
    """Issue 14.3: 10.12+ deprecates the calibrators but still has them; --calib-cache is written and reused."""
    mod = trt(version)
    cache = tmp_path / "model.calib"
    res = build_engine(models["lstm"], tmp_path / "a.plan", BuildOptions(precision="int8", calib_cache=cache),
                       calib=calib_data())
    assert res.route == "builder-flags" and res.flags == ["INT8"] and calls(mod, "IBuilderConfig.int8_calibrator=")
    assert cache.read_bytes() == b"TRT-FAKE-CALIBRATION-CACHE v1" and res.calibration["cache_written"]
    assert not any("cache is not used" in w for w in res.warnings)
    assert any("deprecates BuilderFlag.INT8" in w for w in res.warnings)
    assert any("deprecates IBuilderConfig.int8_calibrator" in w for w in res.warnings)
    mod2 = trt(version)
    res2 = build_engine(models["lstm"], tmp_path / "b.plan", BuildOptions(precision="int8", calib_cache=cache),
                        calib=Exploding())
    assert calls(mod2, "calibrator.read_calibration_cache") == [((True,), {})] and res2.calibration["cache_read"]


def test_calibrator_feeds_the_same_batches_on_every_pass(monkeypatch):
    from edgelstm.calibration.trt_calibrator import CalibrationFeeder

    feeder = CalibrationFeeder(calib_data(n=20), cuda=fake.CUDA)
    passes = []
    for _ in range(2):
        seen = []
        while (ptrs := feeder.next_pointers(["x"])) is not None:
            seen.append(np.frombuffer(bytes(fake.MEMORY[ptrs[0]][: 8 * 6 * 4]), np.float32).copy())
        passes.append(seen)
    assert len(passes[0]) == 2 and feeder.skipped == 2  # the short last batch (4 of 20) is skipped each pass
    assert all(np.array_equal(a, b) for a, b in zip(*passes))
    assert feeder.passes == 2 and feeder.batches_fed == 4


def test_feeder_close_frees_buffers_and_destroys_its_stream():
    from edgelstm.calibration.trt_calibrator import CalibrationFeeder

    feeder = CalibrationFeeder(calib_data(n=16), cuda=fake.CUDA)
    ptrs = feeder.next_pointers(["x"])
    stream = feeder._stream
    assert stream in fake.CUDA.live["stream"] and ptrs[0] in fake.MEMORY
    feeder.close()
    feeder.close()  # twice is fine
    assert stream not in fake.CUDA.live["stream"] and ptrs[0] not in fake.MEMORY


def test_int8_strongly_typed_builds_from_a_qdq_onnx(trt, models, tmp_path):
    mod = trt("11.1.0.5")
    res = build_engine(models["lstm"], tmp_path / "q.plan", BuildOptions(precision="int8"), calib=calib_data(n=32))
    assert calls(mod, "IBuilderConfig.set_flag") == [] and not calls(mod, "IBuilderConfig.int8_calibrator=")
    assert res.built_from.name == "lstm.int8.onnx"
    assert res.layer_precision["groups"]["dense"] == {"INT8": 1}
    assert "INT8" not in res.layer_precision["groups"]["recurrent"]


def test_trt_11_calibrator_route_does_not_exist(trt, models, tmp_path):
    """On 11.x INT8 from a float ONNX goes through Q/DQ; the calibrator API is never touched."""
    mod = trt("11.0.0.9")
    res = build_engine(models["lstm"], tmp_path / "q.plan", BuildOptions(precision="int8", calib_cache=tmp_path / "c"),
                       calib=calib_data(n=32))
    assert res.route == "strongly-typed" and not calls(mod, "IBuilderConfig.int8_calibrator=")
    assert any("cache is not used" in w for w in res.warnings) and not (tmp_path / "c").exists()


# ------------------------------------------------------------------- integer inputs (lengths, token ids)


def test_int8_calibration_feeds_every_input_with_its_own_dtype(trt, tmp_path):
    """Issue 21.1: TensorRT reads each calibration buffer with its input's dtype; an int64 `lengths` or `tokens`
    sent as float32 is read out of bounds. Checks the bytes the stand-in TensorRT reads, name by name."""
    from fakes.fixtures import multi_input_data, multi_input_model

    mod = trt("10.3.0")
    arrays, source = multi_input_data()
    res = build_engine(multi_input_model(tmp_path / "m.onnx"), tmp_path / "m.plan",
                       BuildOptions(precision="int8", batch=(1, 8, 8), seq=(1, 6, 6)), calib=source)
    assert res.calibration["batches_fed"] == 4 and res.calibration["passes"] == 2
    reads = calls(mod, "calibrator.read")
    assert [a[:2] for a, _ in reads[:3]] == [("x", "FLOAT"), ("tokens", "INT64"), ("lengths", "INT64")]
    for batch in range(2):
        for i, name in enumerate(("x", "tokens", "lengths")):
            got = reads[3 * batch + i][0][2]
            assert got == arrays[name][8 * batch: 8 * batch + 8].tobytes(), (batch, name)


def test_int8_calibration_refuses_fractional_data_for_an_integer_input(trt, tmp_path):
    from edgelstm.data import BatchSource
    from fakes.fixtures import multi_input_data, multi_input_model

    trt("10.3.0")
    arrays, _ = multi_input_data()
    arrays["lengths"] = arrays["lengths"] + 0.5
    with pytest.raises(BadInput, match="'lengths' is int64 in the model, but the data holds non-integer values"):
        build_engine(multi_input_model(tmp_path / "m.onnx"), tmp_path / "m.plan",
                     BuildOptions(precision="int8", batch=(1, 8, 8), seq=(1, 6, 6)),
                     calib=BatchSource(arrays, {k: 0 for k in arrays}, 16, 8))
    assert not (tmp_path / "m.plan").exists()


def test_a_failed_calibration_is_blamed_on_the_calibration_data(trt, tmp_path, monkeypatch):
    """When TensorRT cannot read a calibration batch, the message points at --calib, not at the profile ranges and
    --workspace (which were fine). The old float32-for-every-input feeder is replayed here to make it fail."""
    from edgelstm.calibration.trt_calibrator import CalibrationFeeder
    from edgelstm.converters.tensorrt.calibrate import failure_hint
    from fakes.fixtures import multi_input_data, multi_input_model

    trt("10.3.0")
    monkeypatch.setattr(CalibrationFeeder, "_host", lambda self, name, v: np.ascontiguousarray(v, np.float32))
    with pytest.raises(BadInput) as err:
        build_engine(multi_input_model(tmp_path / "m.onnx"), tmp_path / "m.plan",
                     BuildOptions(precision="int8", batch=(1, 8, 8), seq=(1, 6, 6)), calib=multi_input_data()[1])
    assert "the INT8 calibration step failed" in str(err.value) and "--calib" in str(err.value)
    assert "--workspace" not in str(err.value)
    assert "{opt:workspace}" in failure_hint(False, "out of memory") and "{opt:workspace}" in failure_hint(True, "oom")
