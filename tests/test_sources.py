"""Calibration / validation data sources: npz, npy, csv windows, synthetic; re-iterable; checked early."""

from __future__ import annotations

import numpy as np
import pytest

from edgelstm.data import (BatchSource, Dataset, as_calibration_source, calibration_source, dataset_from_arrays,
                                 load_dataset, parse_features, require_min_samples, synthetic_dataset,
                                 with_default_state)
from edgelstm.errors import BadInput
from edgelstm.artifacts.iospec import IOSpec, TensorSpec

SPEC = IOSpec((TensorSpec("x", "float32", ("batch", "seq", 3)),), (TensorSpec("y", "float32", ("batch", 1)),))
STATEFUL = IOSpec((TensorSpec("x", "float32", ("batch", "seq", 3)),
                   TensorSpec("h0", "float32", (2, "batch", 4), True),
                   TensorSpec("c0", "float32", (2, "batch", 4), True)),
                  (TensorSpec("y", "float32", ("batch", 1)), TensorSpec("hn", "float32", (2, "batch", 4), True),
                   TensorSpec("cn", "float32", (2, "batch", 4), True)))
TWO_INPUTS = IOSpec((TensorSpec("a", "float32", ("batch", "seq", 2)), TensorSpec("b", "float32", ("batch", 5))))


def _x(n=10, t=6, f=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, t, f)).astype(np.float32)


def test_npz_single_array_and_labels(tmp_path):
    x, y = _x(), np.arange(10, dtype=np.float32).reshape(10, 1)
    np.savez(tmp_path / "d.npz", inputs=x, y=y)          # single array, any name -> the data input
    ds = load_dataset(tmp_path / "d.npz", SPEC)
    assert ds.n == 10 and ds.seq == 6 and set(ds.inputs) == {"x"}
    np.testing.assert_array_equal(ds.inputs["x"], x)
    np.testing.assert_array_equal(ds.labels, y)


def test_npz_named_inputs(tmp_path):
    a, b = _x(4, 3, 2), np.ones((4, 5), np.float64)
    np.savez(tmp_path / "d.npz", a=a, b=b)
    ds = load_dataset(tmp_path / "d.npz", TWO_INPUTS)
    assert ds.inputs["b"].dtype == np.float32 and ds.labels is None and ds.n == 4


def test_npy(tmp_path):
    np.save(tmp_path / "d.npy", _x(7).astype(np.float64))
    ds = load_dataset(tmp_path / "d.npy", SPEC)
    assert ds.n == 7 and ds.inputs["x"].dtype == np.float32


def _write_csv(path, rows=12, header=True):
    lines = ["time,a,b,c,label"] if header else []
    for i in range(rows):
        lines.append(f"{i},{i * 0.5},{-i},{i * i},{i % 3}")
    path.write_text("\n".join(lines) + "\n")


def test_csv_window_features_by_name_and_target(tmp_path):
    _write_csv(tmp_path / "d.csv")
    ds = load_dataset(tmp_path / "d.csv", SPEC, window=4, features="a,b,c", target="label")
    assert ds.n == 9 and ds.inputs["x"].shape == (9, 4, 3)       # 12 rows, windows of 4, stride 1
    np.testing.assert_allclose(ds.inputs["x"][2, :, 0], [1.0, 1.5, 2.0, 2.5])  # rows 2..5 of column a
    np.testing.assert_allclose(ds.inputs["x"][2, :, 2], [4, 9, 16, 25])
    assert ds.labels.dtype == np.int64 and list(ds.labels[:4]) == [0, 1, 2, 0]  # target at each window's last row


def test_csv_features_by_index_without_header(tmp_path):
    _write_csv(tmp_path / "d.csv", header=False)
    ds = load_dataset(tmp_path / "d.csv", SPEC, window=5, features=[1, 2, 3], target=4)
    assert ds.inputs["x"].shape == (8, 5, 3)
    assert ds.inputs["x"][0, 4, 1] == -4.0 and ds.labels[0] == 4 % 3


def test_csv_default_features_are_all_but_target(tmp_path):
    _write_csv(tmp_path / "d.csv")
    with pytest.raises(BadInput, match=r"4 feature column\(s\) \(time, a, b, c\) but 'x' takes 3 .*--features"):
        load_dataset(tmp_path / "d.csv", SPEC, window=4, target="label")   # time,a,b,c = 4 features


@pytest.mark.parametrize("kwargs, needle", [
    ({"window": 4, "features": "a,zz"}, "no feature column named 'zz'"),
    ({"window": 4, "features": "a,b,c", "target": "lbl"}, "no target column named 'lbl'"),
    ({"window": 4, "features": [1, 2, 9]}, "index 9 is out of range"),
    ({"window": 40, "features": "a,b,c"}, "too few for one window of 40"),
    ({"features": "a,b,c"}, "needs --window"),
])
def test_csv_errors(tmp_path, kwargs, needle):
    _write_csv(tmp_path / "d.csv")
    with pytest.raises(BadInput, match=needle):
        load_dataset(tmp_path / "d.csv", SPEC, **kwargs)


def test_csv_bad_cells_name_the_column(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,c\n1,2,3\n4,,6\n7,8,9\n")
    with pytest.raises(BadInput, match=r"column 'b' has 1 empty/NaN/inf value\(s\) \(first on line 3\)"):
        load_dataset(tmp_path / "d.csv", SPEC, window=2)
    (tmp_path / "e.csv").write_text("a,b,c\n1,2,3\n4,oops,6\n")
    with pytest.raises(BadInput, match="column 'b' on line 3 is not a number"):
        load_dataset(tmp_path / "e.csv", SPEC, window=1)


def test_synthetic_is_seeded_and_shaped():
    a, b = synthetic_dataset(SPEC, 5, seq=7, seed=3), synthetic_dataset(SPEC, 5, seq=7, seed=3)
    assert a.inputs["x"].shape == (5, 7, 3) and a.inputs["x"].dtype == np.float32
    np.testing.assert_array_equal(a.inputs["x"], b.inputs["x"])
    assert not np.array_equal(a.inputs["x"], synthetic_dataset(SPEC, 5, seq=7, seed=4).inputs["x"])
    with pytest.raises(BadInput, match="at least 1 sample"):
        synthetic_dataset(SPEC, 0)


def test_reiterable_twice_same_batches():
    ds = synthetic_dataset(STATEFUL, 10, seq=4)
    src = as_calibration_source(ds, 4)
    assert isinstance(src, BatchSource) and len(src) == 3
    first, second = list(src), list(src)
    assert len(first) == 3 and [b["x"].shape[0] for b in first] == [4, 4, 2]
    for b1, b2 in zip(first, second):
        assert set(b1) == {"x", "h0", "c0"}
        for k in b1:
            np.testing.assert_array_equal(b1[k], b2[k])
    assert first[2]["h0"].shape == (2, 2, 4)          # state split along axis 1
    np.testing.assert_array_equal(np.concatenate([b["x"] for b in first]), ds.inputs["x"])
    assert len(as_calibration_source(ds, 4, drop_last=True)) == 2


def test_stateful_needs_only_x_and_state_defaults_to_zero(tmp_path):
    np.savez(tmp_path / "d.npz", x=_x(6, 4))
    ds = load_dataset(tmp_path / "d.npz", STATEFUL)
    assert ds.inputs["h0"].shape == (2, 6, 4) and not ds.inputs["c0"].any()
    h0 = np.ones((2, 6, 4), np.float32)
    np.savez(tmp_path / "e.npz", x=_x(6, 4), h0=h0)   # provided state is kept
    ds = load_dataset(tmp_path / "e.npz", STATEFUL)
    np.testing.assert_array_equal(ds.inputs["h0"], h0)
    assert ds.axes == {"x": 0, "h0": 1, "c0": 1}
    feeds = with_default_state(STATEFUL, {"x": _x(3, 2)})
    assert feeds["c0"].shape == (2, 3, 4)
    assert set(with_default_state(SPEC, {"x": _x(3, 2), "h0": h0})) == {"x"}   # stateless spec drops state


@pytest.mark.parametrize("arrays, needle", [
    ({"x": np.full((4, 3, 3), np.nan, np.float32)}, "'x' contains 36 NaN/inf"),
    ({"x": np.array([[[np.inf, 0, 0]]], np.float32)}, "'x' contains 1 NaN/inf"),
    ({"inp": _x(), "other": _x()}, r"missing input\(s\) \['x'\]"),
    ({"x": _x(), "z": _x()}, r"unknown input\(s\) \['z'\]"),
    ({"x": np.zeros((4, 3), np.float32)}, "'x' has shape \\[4, 3\\] \\(rank 2\\), expected rank 3"),
    ({"x": _x(4, 3, 5)}, "'x' has 5 on axis 2, the model needs 3"),
    ({"x": np.full((2, 3, 3), "a")}, "'x' has dtype <U1"),
    ({"x": np.zeros((0, 3, 3), np.float32)}, "'x' is empty"),
])
def test_bad_arrays_name_the_array(arrays, needle):
    with pytest.raises(BadInput, match=needle):
        dataset_from_arrays(arrays, SPEC, source="d.npz")


def test_bad_files(tmp_path):
    x = _x()
    np.savez(tmp_path / "d.npz", x=x, y=np.ones(3))
    with pytest.raises(BadInput, match="disagree on the number of samples"):
        load_dataset(tmp_path / "d.npz", SPEC)
    np.savez(tmp_path / "n.npz", x=x, y=np.full(10, np.nan))
    with pytest.raises(BadInput, match="labels 'y' contain 10 NaN"):
        load_dataset(tmp_path / "n.npz", SPEC)
    np.save(tmp_path / "o.npy", np.array([object()], dtype=object))
    with pytest.raises(BadInput, match="o.npy is not a readable"):
        load_dataset(tmp_path / "o.npy", SPEC)
    with pytest.raises(BadInput, match="does not exist"):
        load_dataset(tmp_path / "nope.npz", SPEC)
    (tmp_path / "d.parquet").write_bytes(b"x")
    with pytest.raises(BadInput, match="unknown data format .parquet"):
        load_dataset(tmp_path / "d.parquet", SPEC)
    with pytest.raises(BadInput, match="apply to .csv data"):
        load_dataset(tmp_path / "d.npz", SPEC, window=3)
    with pytest.raises(BadInput, match="one array per input"):
        np.save(tmp_path / "a.npy", x)
        load_dataset(tmp_path / "a.npy", TWO_INPUTS)


def test_min_samples():
    ds = synthetic_dataset(SPEC, 3)
    assert require_min_samples(ds, 3) == 3
    with pytest.raises(BadInput, match="has 3 sample\\(s\\); it needs at least 8"):
        require_min_samples(ds, 8)
    with pytest.raises(BadInput, match="is empty"):
        require_min_samples(0)
    with pytest.raises(BadInput, match="needs at least 16"):
        as_calibration_source(ds, 4, min_samples=16)
    with pytest.raises(BadInput, match="fewer than one batch"):
        as_calibration_source(ds, 4, drop_last=True)


def test_calibration_source_convenience(tmp_path):
    np.save(tmp_path / "d.npy", _x(9))
    src = calibration_source(SPEC, data=tmp_path / "d.npy", batch_size=4)
    assert [b["x"].shape[0] for b in src] == [4, 4, 1]
    src = calibration_source(STATEFUL, synthetic=5, seq=3, batch_size=5)
    assert set(next(iter(src))) == {"x", "h0", "c0"}
    with pytest.raises(BadInput, match="no calibration data"):
        calibration_source(SPEC)
    with pytest.raises(BadInput, match="not both"):
        calibration_source(SPEC, data=tmp_path / "d.npy", synthetic=3)


def test_dataset_head_and_features_parsing():
    ds = Dataset({"x": _x(5), "h0": np.zeros((1, 5, 2), np.float32)}, np.arange(5))
    h = ds.head(2)
    assert h.n == 2 and h.inputs["h0"].shape == (1, 2, 2) and list(h.labels) == [0, 1]
    assert parse_features("a, 2,b") == ["a", 2, "b"] and parse_features(None) is None
    with pytest.raises(BadInput, match="--features is empty"):
        parse_features(" , ")
