"""Range statistics (pure numpy) and the onnxruntime calibration adapter."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import quant_models as qm
from edgelstm.calibration.ort_reader import OrtCalibrationReader, check_calibration, collect_activation_ranges
from edgelstm.calibration.ranges import (
    RangeCollector, abs_histogram, collect_ranges, entropy_threshold, minmax, percentile_threshold,
)
from edgelstm.errors import BadInput
from edgelstm.artifacts.iospec import IOSpec, TensorSpec, iospec_from_onnx
from edgelstm.options import CalibMethod

IO = IOSpec((TensorSpec("x", "float32", ("batch", "seq", 2)),))


def test_minmax_and_histogram():
    a = np.array([[-3.0, 0.5], [2.0, 1.0]])
    assert minmax(a) == (-3.0, 2.0)
    h = abs_histogram(a, 3.0, bins=3)
    assert h.tolist() == [1, 1, 2]  # |x| = 0.5 | 1.0 | 2.0, 3.0 (the max falls in the last bin)
    assert abs_histogram(np.zeros(5), 0.0, bins=4).tolist() == [5, 0, 0, 0]


def test_percentile_threshold_on_uniform_data():
    a = np.linspace(-1, 1, 100001)
    h = abs_histogram(a, 1.0, 2048)
    assert percentile_threshold(h, 1.0, 99.0) == pytest.approx(0.99, abs=2e-3)
    assert percentile_threshold(h, 1.0, 100.0) == pytest.approx(1.0)
    with pytest.raises(BadInput):
        percentile_threshold(h, 1.0, 0)


def test_entropy_clips_outliers_but_not_a_uniform_range():
    rng = np.random.default_rng(0)
    gauss = np.concatenate([rng.standard_normal(200_000), [40.0, -35.0]])  # two far outliers
    amax = float(np.abs(gauss).max())
    t = entropy_threshold(abs_histogram(gauss, amax), amax)
    assert 4.0 < t < 6.0  # the outliers are clipped, the bulk (|x| < ~4.6) kept
    uni = rng.uniform(-1, 1, 200_000)
    tu = entropy_threshold(abs_histogram(uni, 1.0), 1.0)
    assert tu > 0.97  # nothing to clip in a uniform distribution
    assert entropy_threshold(np.zeros(2048), 0.0) == 0.0


def test_collector_two_passes_match_one_shot_and_keep_nonnegative_lower_bound():
    rng = np.random.default_rng(1)
    batches = [{"a": rng.standard_normal((8, 5)), "r": np.abs(rng.standard_normal((8, 5))),
                "i": np.arange(3)} for _ in range(4)]
    allx = np.concatenate([b["a"] for b in batches])
    mm = collect_ranges(batches, CalibMethod.minmax)
    assert (mm["a"].lo, mm["a"].hi) == minmax(allx)
    assert "i" not in mm  # integer tensors have no range
    pc = collect_ranges(batches, CalibMethod.percentile, percentile=90.0)
    t = percentile_threshold(abs_histogram(allx, float(np.abs(allx).max())), float(np.abs(allx).max()), 90.0)
    assert pc["a"].hi == pytest.approx(min(mm["a"].hi, t)) and pc["a"].lo == pytest.approx(max(mm["a"].lo, -t))
    assert pc["r"].lo >= 0.0 and pc["r"].method == "percentile"
    en = collect_ranges(batches, CalibMethod.entropy)
    assert en["a"].absmax <= mm["a"].absmax
    with pytest.raises(BadInput, match="empty"):
        collect_ranges([], CalibMethod.minmax)
    c = RangeCollector(CalibMethod.minmax)
    with pytest.raises(BadInput, match="NaN"):
        c.observe({"a": np.array([1.0, np.nan])})


def _src(n=3):
    rng = np.random.default_rng(0)
    return [{"x": rng.standard_normal((4, 5, 2)).astype(np.float32)} for _ in range(n)]


def test_ort_reader_protocol():
    src = _src()
    r = OrtCalibrationReader(src, io=IO)
    got = []
    while (b := r.get_next()) is not None:
        got.append(b)
    assert len(got) == 3 and np.array_equal(got[0]["x"], src[0]["x"])
    assert r.get_next() is None
    r.rewind()
    assert np.array_equal(r.get_next()["x"], src[0]["x"])
    r.set_range(1, 3)
    assert np.array_equal(r.get_next()["x"], src[1]["x"]) and len(r) == 3
    from onnxruntime.quantization import CalibrationDataReader

    assert isinstance(r, CalibrationDataReader)
    bad = OrtCalibrationReader([{"x": np.full((4, 5, 2), np.nan, np.float32)}], io=IO)
    with pytest.raises(BadInput, match="NaN"):
        bad.get_next()


def test_check_calibration():
    assert check_calibration(_src(), IO, min_samples=12) == (12, 3)
    with pytest.raises(BadInput, match="needs at least 13"):
        check_calibration(_src(), IO, min_samples=13)
    with pytest.raises(BadInput, match="empty"):
        check_calibration([], IO)
    with pytest.raises(BadInput, match="re-iterable"):
        check_calibration(iter(_src()), IO)
    with pytest.raises(BadInput, match="rank"):
        check_calibration([{"x": np.zeros((4, 2), np.float32)}], IO)


def test_activation_minmax_ranges_equal_onnxruntime_minmax_calibrator(tmp_path):
    """Our min/max over every activation equals onnxruntime's MinMaxCalibrater on the same data."""
    from onnxruntime.quantization.calibrate import MinMaxCalibrater

    src = qm.exported("bilstm_attention", tmp_path)
    io = iospec_from_onnx(onnx.load(str(src)))
    rng = np.random.default_rng(4)
    batches = [{"x": rng.standard_normal((4, 6, 5)).astype(np.float32)} for _ in range(3)]
    ours = collect_activation_ranges(src, batches, io=io, method=CalibMethod.minmax)
    cal = MinMaxCalibrater(str(src), augmented_model_path=str(tmp_path / "aug.onnx"))
    cal.augment_graph()
    cal.create_inference_session()
    cal.collect_data(OrtCalibrationReader(batches, io=io))
    theirs = cal.compute_data()
    assert set(ours) == set(theirs.data) and len(ours) >= 10
    for name in ours:
        lo, hi = (float(np.ravel(v)[0]) for v in theirs.data[name].range_value)
        assert (ours[name].lo, ours[name].hi) == (pytest.approx(lo, abs=1e-7), pytest.approx(hi, abs=1e-7)), name
