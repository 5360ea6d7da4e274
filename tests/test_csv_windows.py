"""CSV data: windows every --stride rows, labels --horizon rows ahead, no window across a --group boundary, and a
label column left among the features is named with what to pass."""

from __future__ import annotations

import numpy as np
import pytest

from edgelstm.artifacts.iospec import IOSpec, TensorSpec
from edgelstm.data import load_dataset
from edgelstm.errors import BadInput

SPEC = IOSpec((TensorSpec("x", shape=("batch", "seq", 2)),), (TensorSpec("y", shape=("batch", 1)),))


def _csv(path, rows, header="unit,a,b,label"):
    path.write_text(header + "\n" + "\n".join(",".join(str(c) for c in r) for r in rows) + "\n")
    return path


@pytest.fixture
def fleet(tmp_path):
    """Two units: u1 rows 0..5, u2 rows 6..9 (a = row number, b = -row, label = 100 + row)."""
    rows = [("u1" if i < 6 else "u2", i, -i, 100 + i) for i in range(10)]
    return _csv(tmp_path / "fleet.csv", rows)


def _x(ds):
    return ds.inputs["x"]


def test_stride_and_horizon(fleet):
    ds = load_dataset(fleet, SPEC, window=3, features="a,b", target="label", stride=2, horizon=2)
    assert _x(ds)[:, 0, 0].tolist() == [0, 2, 4]  # starts every 2 rows; the last window ends at row 6 (label row 8)
    assert ds.labels.tolist() == [104, 106, 108]    # the label 2 rows after each window's last row
    no_target = load_dataset(fleet, SPEC, window=3, features="a,b", stride=2, horizon=2)
    assert _x(no_target)[:, 0, 0].tolist() == [0, 2, 4, 6]  # without a label the horizon changes nothing


def test_windows_never_cross_a_group(fleet):
    ds = load_dataset(fleet, SPEC, window=3, group="unit", target="label")  # features: all but unit and label
    starts = _x(ds)[:, 0, 0].tolist()
    assert starts == [0, 1, 2, 3, 6, 7]  # u1: 0..3 (ends at row 5), u2: 6, 7; none spans rows 5 and 6
    assert all(np.diff(w[:, 0]).tolist() == [1, 1] for w in _x(ds))
    ds = load_dataset(fleet, SPEC, window=3, group="unit", target="label", horizon=2)
    assert _x(ds)[:, 0, 0].tolist() == [0, 1] and ds.labels.tolist() == [104, 105]  # u2 (4 rows) has no room


def test_a_group_that_comes_back_is_refused(tmp_path):
    rows = [("u1", 0, 0, 0), ("u2", 1, 1, 1), ("u1", 2, 2, 2)]
    with pytest.raises(BadInput, match=r"'u1' comes back on line 4 .*sort the file"):
        load_dataset(_csv(tmp_path / "x.csv", rows), SPEC, window=1, group="unit", features="a,b")


def test_too_short_groups_say_so(fleet):
    with pytest.raises(BadInput, match=r"6 row\(s\) are too few for one window of 7 \(the longest of 2 sequences"):
        load_dataset(fleet, SPEC, window=7, group="unit", features="a,b")


def test_a_label_column_among_the_features_names_features_and_target(tmp_path):
    path = _csv(tmp_path / "x.csv", [(i, -i, i % 2) for i in range(8)], header="a,b,label")
    with pytest.raises(BadInput) as exc:
        load_dataset(path, SPEC, window=4)
    msg = str(exc.value)
    assert "3 feature column(s) (a, b, label) but 'x' takes 2 features per step" in msg
    assert "--features" in msg and "--target" in msg
    assert load_dataset(path, SPEC, window=4, target="label").labels.tolist() == [1, 0, 1, 0, 1]
    with pytest.raises(BadInput, match="--features names 3 column"):
        load_dataset(path, SPEC, window=4, features="a,b,label")


def test_text_in_an_unused_column_is_fine_but_not_in_a_feature(tmp_path):
    path = _csv(tmp_path / "x.csv", [("u1", 1, 2, "ok"), ("u1", 3, 4, "ok")])
    assert _x(load_dataset(path, SPEC, window=2, features="a,b")).shape == (1, 2, 2)
    with pytest.raises(BadInput, match=r"column 'label' on line 2 is not a number"):
        load_dataset(path, SPEC, window=2, features="a,label")


def test_cli_passes_the_csv_options(cli, tmp_path, tiny_lstm):
    """validate --stride/--group/--horizon reach the loader (tiny_lstm takes one feature)."""
    rows = [("u1" if i < 12 else "u2", i / 10, 0, (i + 1) / 10) for i in range(20)]
    data = _csv(tmp_path / "d.csv", rows)
    code, stdout, stderr = cli("validate", "-r", tiny_lstm.pt, "-c", tiny_lstm.onnx, "--data", data, "--window", "6",
                               "--stride", "3", "--group", "unit", "--features", "a", "--target", "label",
                               "--horizon", "1", "--json")
    assert code == 0, stderr
    import json

    assert json.loads(stdout)["samples"] == 3  # u1: starts 0, 3 (12 rows, horizon 1); u2: start 12 (8 rows)
    code, _, stderr = cli("validate", "-r", tiny_lstm.pt, "-c", tiny_lstm.onnx, "--data", data, "--window", "6")
    assert code == 2 and "--features" in stderr and "--target" in stderr
