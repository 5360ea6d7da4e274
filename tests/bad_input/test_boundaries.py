"""The fixes behind the campaign, at the library boundary where each class of bug is made impossible:
numbers checked where options are made, allocations sized before they happen, outputs that may not replace
inputs, output folders that a failure does not leave behind, manifests checked field by field, models that
onnxruntime cannot run refused as the user's input, every input of a model fed by bench."""

from __future__ import annotations

import errno
import json
import math

import numpy as np
import pytest

from edgelstm.errors import BadInput

from .conftest import case, run_case


@pytest.mark.parametrize("value,kw,ok", [
    (1, {}, True), (0, {}, False), (-1, {}, False), (True, {}, False), (1.0, {}, False), ("1", {}, False),
    (None, {"optional": True}, True), (None, {}, False), (0, {"minimum": 0}, True), (9, {"maximum": 8}, False),
])
def test_check_int(value, kw, ok):
    from edgelstm.options import check_int

    if ok:
        check_int(value, "threads", **kw)
    else:
        with pytest.raises(BadInput, match="--threads must be an integer"):
            check_int(value, "threads", **kw)


@pytest.mark.parametrize("value,kw,ok", [
    (0.0, {}, True), (-0.1, {}, False), (math.nan, {}, False), (math.inf, {}, False), (0.0, {"strict": True}, False),
    (1.1, {"minimum": 1.0}, True), (True, {}, False), (None, {"optional": True}, True),
])
def test_check_float(value, kw, ok):
    from edgelstm.options import check_float

    if ok:
        check_float(value, "max_slowdown", **kw)
    else:
        with pytest.raises(BadInput, match="--max-slowdown must be a finite number"):
            check_float(value, "max_slowdown", **kw)


def test_check_alloc_refuses_before_allocating_and_the_limit_is_configurable(monkeypatch):
    from edgelstm.options import MAX_ARRAY_ENV, check_alloc, max_array_bytes

    assert max_array_bytes() > 0
    check_alloc([4, 16, 8], 8, what="x")
    with pytest.raises(BadInput, match=r"x would take 32\.0 TiB \(shape \[1099511627776, 8\]\)"):
        check_alloc([1 << 40, 8], 4, what="x")
    monkeypatch.setenv(MAX_ARRAY_ENV, "1000")
    check_alloc([10, 100], 1, what="x")
    with pytest.raises(BadInput, match=MAX_ARRAY_ENV):
        check_alloc([10, 101], 1, what="x")
    with pytest.raises(BadInput, match="not a list of non-negative integers"):
        check_alloc([-1, 4], 4, what="x")


def test_make_parents_creates_and_removes_only_its_own_folders(tmp_path):
    from edgelstm.fileio import atomic_path, make_parents, remove_dirs

    (tmp_path / "a").mkdir()
    created = make_parents(tmp_path / "a" / "b" / "c" / "f.txt")
    assert created == [tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"]
    remove_dirs(created)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(BadInput, match="is a file, not a directory"):
        make_parents(tmp_path / "file" / "sub" / "f.txt")
    with pytest.raises(BadInput, match="is a directory"):
        make_parents(tmp_path / "a")
    with pytest.raises(OSError):
        with atomic_path(tmp_path / "x" / "y" / "f.txt") as tmp:
            tmp.write_text("half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "file"]


def test_an_output_may_not_replace_an_input_or_its_manifest(tmp_path):
    from edgelstm.fileio import refuse_overwriting_inputs

    m = tmp_path / "m.onnx"
    refuse_overwriting_inputs({"report": tmp_path / "r.json", "csv": None}, [m, None])
    with pytest.raises(BadInput, match="--report .* would overwrite the input"):
        refuse_overwriting_inputs({"report": tmp_path / "m.onnx.json"}, [m])
    with pytest.raises(BadInput, match="--report and --junit name the same file"):
        refuse_overwriting_inputs({"report": tmp_path / "r", "junit": tmp_path / "r"}, [m])


@pytest.mark.parametrize("manifest,needle", [
    ([], "not an object"), ({"kind": "onnx", "file": "m.onnx"}, "'sha256'"),
    ({"kind": "onnx", "file": "m.onnx", "sha256": "0", "details": []}, "'details'"),
    ({"kind": "onnx", "file": "m.onnx", "sha256": "0", "io": {"inputs": [{"name": ["x"]}]}}, "non-empty 'name'"),
    ({"kind": "onnx", "file": "m.onnx", "sha256": "0", "io": {"inputs": [{"name": "x", "shape": [-1]}]}}, "shape"),
    ({"kind": "onnx", "file": "m.onnx", "sha256": "0", "io": {"inputs": [{"name": "x", "dtype": 1}]}}, "dtype"),
])
def test_a_manifest_is_checked_field_by_field(tmp_path, manifest, needle):
    import json

    from edgelstm.artifacts.manifest import read_manifest

    (tmp_path / "m.onnx").write_bytes(b"x")
    (tmp_path / "m.onnx.json").write_text(json.dumps(manifest))
    with pytest.raises(BadInput, match="not a valid edgelstm manifest") as err:
        read_manifest(tmp_path / "m.onnx", verify=False)
    assert needle in str(err.value)


def test_values_beyond_the_models_dtype_are_bad_input():
    from edgelstm.artifacts.iospec import IOSpec, TensorSpec, check_feeds

    spec = IOSpec((TensorSpec("x", "float32", ("batch", "seq", 1)),))
    with pytest.raises(BadInput, match="beyond the range of float32"):
        check_feeds(spec, {"x": np.full((1, 2, 1), 1e300)})
    ids = IOSpec((TensorSpec("t", "int32", ("batch", "seq")),))
    with pytest.raises(BadInput, match="beyond the range of int32"):
        check_feeds(ids, {"t": np.full((1, 2), 1 << 40, np.int64)})


def test_bench_feeds_every_data_input(ws):
    from edgelstm.latency import BenchGrid, BenchOptions, TimingPolicy, bench_artifacts

    report = bench_artifacts([ws / "three.onnx"], BenchGrid((1,), (3,), (None,)),
                             BenchOptions(policy=TimingPolicy(warmup=0, iters=2)))
    assert [(r.batch, r.seq) for r in report.results] == [(1, 3)]


def test_a_model_onnxruntime_cannot_run_is_the_users_input(cli, w, ws, monkeypatch):
    """Past the custom-domain check (say a standard op at an opset onnxruntime lacks): the input is probed when
    the result does not run, and a failing input is bad input (2), not an internal error (4)."""
    import edgelstm.artifacts.onnx_graph as graph

    monkeypatch.setattr(graph, "unknown_domain_ops", lambda model: [])
    run_case(case("custom-op-past-the-domain-check", "quantize", "{ws}/custom.onnx", "-p", "fp16", "-o",
                  "{w}/good.onnx", needles="does not run in onnxruntime"), cli, w, ws, monkeypatch)


def test_a_failed_command_removes_the_empty_folders_it_made(cli, w, ws, monkeypatch):
    """The CLI's safety net: whatever fails after an output folder was made, the empty folders go again."""
    import edgelstm.pipeline.lock as lock

    def busy(self):
        raise BadInput("the output directory is in use (simulated)")

    monkeypatch.setattr(lock.OutputLock, "__enter__", busy)
    run_case(case("demo-lock-refused", "demo", "--out", "{w}/a/b/demo", "--steps", "2", needles="in use"),
             cli, w, ws, monkeypatch)


def test_a_static_shape_whose_activations_do_not_fit_is_refused_before_the_model_runs(tiny_lstm, cli, monkeypatch):
    """Found by the contracts fuzzer: `inspect m.pt --static 1x100000000` ran an LSTM over 1e8 steps (a 1.2 GB input,
    fine by the one-array rule, but ~24 GB of activations: the kernel's out-of-memory killer ended the test run).
    The model's activations at a static shape are checked like an array (here with the limit lowered, so that the
    same check runs at a size this test can afford without the fix)."""
    from edgelstm.models.loading import load_model
    from edgelstm.models.calling import check_activations
    from edgelstm.options import MAX_ARRAY_ENV

    module = load_model(tiny_lstm.pt).module
    check_activations(module, 1, 6)
    with pytest.raises(BadInput, match=r"running the model at batch 1 x seq 100000000 would take .* GiB"):
        check_activations(module, 1, 100_000_000)
    monkeypatch.setenv(MAX_ARRAY_ENV, str(1 << 20))
    code, out, err = cli("inspect", tiny_lstm.pt, "--static", "--batch", "1", "--seq", "20000", "--json")
    assert code == 0 and "running the model at batch 1 x seq 20000 would take" in json.loads(out)["note"]
