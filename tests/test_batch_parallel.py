"""Batch-parallel execution (edgelstm.runners.batch_parallel): one single-threaded copy of an onnxruntime or
OpenVINO artifact per thread, each call's batch split into contiguous shards. Outputs must be the plain runner's
(relative to their scale, at lengths far from the export example), state inputs split along their own batch axis,
the bench times it as a variant row at threads >= 2 only, and what it cannot run is refused in one line."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from edgelstm.artifacts.iospec import IOSpec, TensorSpec
from edgelstm.errors import BadInput
from edgelstm.runners import open_runner
from edgelstm.runners.batch_parallel import BatchParallelRunner, shard_bounds
from edgelstm.runners.contract import RunnerBase


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


@pytest.mark.parametrize("batch,workers", [(1, 2), (2, 2), (5, 2), (7, 3), (64, 4), (3, 8)])
def test_shards_cover_the_batch_in_order_and_differ_by_at_most_one(batch, workers):
    bounds = shard_bounds(batch, workers)
    assert len(bounds) == min(batch, workers)
    assert bounds[0][0] == 0 and bounds[-1][1] == batch
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [stop - start for start, stop in bounds]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


def _x(batch: int, seq: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((batch, seq, 1)) * 3).astype(np.float32)


@pytest.mark.parametrize("batch,seq", [(5, 97), (2, 1), (1, 40), (9, 250)])
def test_onnxruntime_batch_parallel_matches_the_plain_runner(tiny_lstm, batch, seq):
    plain = open_runner(tiny_lstm.onnx, threads=1)
    par = open_runner(tiny_lstm.onnx, threads=2, batch_parallel=True)
    try:
        assert isinstance(par, BatchParallelRunner) and "batch-parallel ×2" in par.label
        assert par.copies_included  # bind calls onnxruntime workers through run ...
        from edgelstm.latency.adapters import fast_path

        path = fast_path(par, {"x": _x(batch, seq)})  # ... the bench stages each shard with IO binding
        assert path.name == "batch-parallel:ort-iobinding" and not path.copies_included
        path.call()
        assert par.io.input_names == plain.io.input_names and par.backend == "onnxruntime"
        x = _x(batch, seq)
        want, got = plain.run({"x": x}), par.run({"x": x})
        assert set(got) == set(want)
        for name in want:
            assert got[name].shape == want[name].shape
            assert rel(got[name], want[name]) < 1e-5
        # rows are not mixed up: each output row is the plain runner's output for that row alone
        for i in (0, batch - 1):
            alone = plain.run({"x": x[i:i + 1]})
            for name in want:
                assert rel(got[name][i:i + 1], alone[name]) < 1e-5
    finally:
        plain.close()
        par.close()


def test_state_inputs_are_split_along_their_own_batch_axis(tiny_lstm):
    """A stateful file's h0/c0 are [layers, batch, hidden]: axis 1 is split, and hn/cn come back joined there."""
    plain = open_runner(tiny_lstm.stateful, threads=1)
    par = open_runner(tiny_lstm.stateful, threads=3, batch_parallel=True)
    try:
        feeds = {"x": _x(7, 33, seed=1)}
        for t in plain.io.state_inputs:
            shape = list(t.resolve(batch=7, seq=33))
            feeds[t.name] = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
        want, got = plain.run(feeds), par.run(feeds)
        assert {t.name for t in plain.io.state_inputs} and set(got) == set(want)
        for name in want:
            assert got[name].shape == want[name].shape and rel(got[name], want[name]) < 1e-5
    finally:
        plain.close()
        par.close()


def test_openvino_batch_parallel_runs_one_compiled_model_with_a_stream_per_worker(tmp_path, tiny_lstm):
    pytest.importorskip("openvino")
    from edgelstm.stages import OpenVinoOptions, build_openvino

    xml = build_openvino(tiny_lstm.onnx, tmp_path / "m.xml", OpenVinoOptions()).path
    plain = open_runner(xml, threads=1)
    par = open_runner(xml, threads=2, batch_parallel=True)
    try:
        first, second = par.workers
        assert first.compiled is second.compiled and first.request is not second.request
        assert not par.copies_included  # each lane stages its shard once (OpenVINO's own binding)
        assert int(first.compiled.get_property("NUM_STREAMS")) == 2
        x = _x(6, 120)
        want, got = plain.run({"x": x}), par.run({"x": x})
        for name in want:
            assert rel(got[name], want[name]) < 1e-5
        from edgelstm.latency.adapters import fast_path

        fast_path(par, {"x": x}).call()  # the bench's bound call runs both shards
    finally:
        plain.close()
        par.close()


class _Recording(RunnerBase):
    """A worker that records the shard it got and the thread it ran on; with ``meet``, it waits there for the
    other worker (a barrier: the shards can only pass it if they run at the same time — no clock involved)."""

    backend = "onnxruntime"

    def __init__(self, log: list, extra_inputs: tuple = (), meet: threading.Barrier | None = None):
        self.io = IOSpec((TensorSpec("x", "float32", ("batch", "seq", 1)), *extra_inputs),
                         (TensorSpec("y", "float32", ("batch", 1)),))
        self.log, self.meet = log, meet

    def run(self, feeds):
        if self.meet is not None:
            self.meet.wait(timeout=60)  # BrokenBarrierError if the other shard never runs alongside
        self.log.append((threading.get_ident(), feeds["x"][:, 0, 0].tolist()))
        return {"y": feeds["x"][:, -1, :] * 2}


def test_shards_run_concurrently_on_separate_threads_and_join_in_order():
    log: list = []
    meet = threading.Barrier(2)
    runner = BatchParallelRunner([_Recording(log, meet=meet), _Recording(log, meet=meet)])
    try:
        x = np.arange(5, dtype=np.float32).reshape(5, 1, 1)
        y = runner.run({"x": x})
        assert y["y"].ravel().tolist() == [0, 2, 4, 6, 8]
        assert sorted(entry[1] for entry in log) == [[0, 1, 2], [3, 4]]
        assert len({entry[0] for entry in log}) == 2
        log.clear()
        runner.bind({"x": x})()   # no worker binding: the bound call runs each worker on its staged shard
        assert sorted(entry[1] for entry in log) == [[0, 1, 2], [3, 4]]
    finally:
        runner.close()
    with pytest.raises(BadInput, match="closed"):
        runner.run({"x": x})


def test_inputs_with_different_batch_sizes_are_refused():
    z = (TensorSpec("z", "float32", ("batch", 2)),)
    runner = BatchParallelRunner([_Recording([], z), _Recording([], z)])
    try:
        with pytest.raises(BadInput, match="one batch size"):
            runner.run({"x": np.zeros((4, 3, 1), np.float32), "z": np.zeros((3, 2), np.float32)})
    finally:
        runner.close()


def test_what_batch_parallel_cannot_run_is_refused(tiny_lstm, tmp_path):
    with pytest.raises(BadInput, match="onnxruntime and openvino artifacts on the CPU, not torch"):
        open_runner(tiny_lstm.pt, threads=2, batch_parallel=True)
    with pytest.raises(BadInput, match="not a model in memory"):
        open_runner(tiny_lstm.model, threads=2, batch_parallel=True)
    with pytest.raises(BadInput, match="on the CPU, not onnxruntime on cuda"):
        open_runner(tiny_lstm.onnx, threads=2, device="cuda", batch_parallel=True)
    with pytest.raises(BadInput, match="at least 2 workers"):
        BatchParallelRunner([_Recording([])])
    # one thread is plain execution
    one = open_runner(tiny_lstm.onnx, threads=1, batch_parallel=True)
    assert not isinstance(one, BatchParallelRunner)
    one.close()


def test_variant_checks():
    from edgelstm.latency.targets import check_variant

    check_variant("batch-parallel", "onnxruntime", "cpu")
    check_variant("batch-parallel", "openvino", "cpu")
    for backend, device in (("torch", "cpu"), ("tensorrt", "cuda"), ("onnxruntime", "cuda")):
        with pytest.raises(BadInput, match="batch-parallel"):
            check_variant("batch-parallel", backend, device)


def test_bench_times_the_variant_beside_the_plain_rows_at_two_threads_only(tiny_lstm):
    from edgelstm.latency import BenchGrid, BenchOptions, TimingPolicy, bench_artifacts
    from edgelstm.latency.schema import planned_rows

    grid = BenchGrid(batches=(1, 8), seqs=(30,), threads=(1, 2))
    options = BenchOptions(policy=TimingPolicy(warmup=1, iters=3), measure_memory=False, batch_parallel=True)
    report = bench_artifacts([tiny_lstm.onnx], grid, options).to_dict()
    rows = report["results"]
    plain = [r for r in rows if not r.get("variant")]
    par = [r for r in rows if r.get("variant") == "batch-parallel"]
    assert {(r["batch"], r["threads"]) for r in plain} == {(1, 1), (8, 1), (1, 2), (8, 2)}
    assert {(r["batch"], r["threads"]) for r in par} == {(1, 2), (8, 2)}
    assert len(rows) == planned_rows(1, grid, False, parallel=1)
    assert report["options"]["batch_parallel"] is True
    # seq 30 is beyond the lengths the tiny export was verified at: the file's warning is said once, not per variant
    warnings = [w for w in report["warnings"] if "outside the lengths" in w]
    assert len(warnings) == 1, report["warnings"]
    at_two = [f for f in report["fastest"] if f["threads"] == 2 and f["batch"] == 8]
    assert at_two and at_two[0]["candidates"] == 2 and "variant" in at_two[0]


def test_cli_bench_batch_parallel(cli, tiny_lstm, tmp_path):
    import json

    code, out, err = cli("bench", tiny_lstm.onnx, "--batch", "4", "--seq", "20", "--threads", "2", "--iters", "3",
                         "--batch-parallel", "--json")
    assert code == 0, err
    rows = json.loads(out)["results"]
    assert sorted(r.get("variant", "") for r in rows) == ["", "batch-parallel"]
    code, out, err = cli("bench", "--help")
    assert "--batch-parallel" in out


def test_cli_validate_measures_the_batch_parallel_candidate(cli, tiny_lstm, tmp_path):
    import json

    code, out, err = cli("validate", "-r", tiny_lstm.pt, "-c", tiny_lstm.onnx, "--synthetic", "9", "--seq", "70",
                         "--batch", "9", "--threads", "2", "--batch-parallel", "--json")
    assert code == 0, err
    report = json.loads(out)
    info = report.get("info", report)
    assert "batch-parallel ×2" in info["candidate_info"]["label"]
    assert all(o["rel_l2"] < 1e-5 for o in report["outputs"].values())
    code, _, err = cli("validate", "-r", tiny_lstm.pt, "-c", tiny_lstm.pt, "--synthetic", "4", "--batch-parallel",
                       "--threads", "2")
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "batch-parallel runs onnxruntime and openvino" in errors[0]
    assert "Traceback" not in err


def test_a_check_bundle_carries_batch_parallel_to_the_device_bench(tiny_lstm):
    """The pipeline's [bench] batch_parallel goes into the bundle's plan, and the device's bench times the
    batch-parallel rows after the plain ones (the fleet table reads the first, plain, window row)."""
    from edgelstm.bundle.check_inputs import resolve_plan
    from edgelstm.bundle.types import CheckOptions
    from edgelstm.fleet.device_artifacts import bench_on_device

    plan = resolve_plan(CheckOptions(), {"bench": {"batch": [4], "seq": [12], "threads": [2], "iters": 3,
                                                   "batch_parallel": True}})["bench"]
    assert plan["batch_parallel"] is True
    assert resolve_plan(CheckOptions(), {"bench": {}})["bench"]["batch_parallel"] is False
    rows = bench_on_device(tiny_lstm.onnx, plan, None)
    assert [r["variant"] for r in rows if r["mode"] == "window"] == ["", "batch-parallel"]
    assert all(r["threads"] == 2 and r["latency_ms"]["p50"] > 0 for r in rows)
