"""Bench harness: timing loop, percentiles, runner timing protocol, fast paths, streaming, fixed shapes,
device block, memory, report writers. Logic only: no assertion about absolute speed."""

from __future__ import annotations

import csv
import json

import numpy as np
import onnx
import pytest

from edgelstm.latency import (BenchGrid, BenchOptions, BenchReport, BenchTarget, Bencher, TimingPolicy,
                                   bench_artifacts, latency_stats, planned_rows, plot_report, summarize,
                                   time_callable, time_runner, write_csv, write_json, write_markdown)
from edgelstm.machine import device as device_mod
from edgelstm.latency import harness
from edgelstm.latency.preflight import check_grid, shape_limits
from edgelstm.latency.memory import peak_during
from edgelstm.latency.stream import check_streamable, step_path, zero_state
from edgelstm.errors import BadInput
from edgelstm.artifacts.iospec import IOSpec, TensorSpec
from edgelstm.runners import open_runner

FAST = TimingPolicy(warmup=2, iters=8)


@pytest.fixture(scope="module")
def arts(tmp_path_factory, tiny_lstm):
    return tiny_lstm.copy_to(tmp_path_factory.mktemp("bench_harness"))


# ------------------------------------------------------------------------------------------- timing


def test_latency_stats_percentiles():
    s = latency_stats([float(v) for v in range(1, 101)])
    assert s["p50"] == pytest.approx(50.5) and s["p90"] == pytest.approx(90.1) and s["p99"] == pytest.approx(99.01)
    assert s["mean"] == pytest.approx(50.5) and s["min"] == 1.0 and s["max"] == 100.0
    with pytest.raises(ValueError):
        latency_stats([])


def test_policy_validation():
    for bad in (dict(warmup=-1), dict(iters=0), dict(min_time=0.0), dict(min_time=-1.0)):
        with pytest.raises(BadInput):
            TimingPolicy(**bad)
    assert "iterations" in TimingPolicy(iters=5).describe()


def test_time_callable_counts_warmup_and_iters():
    calls = []
    t = time_callable(lambda: calls.append(1), TimingPolicy(warmup=3, iters=7))
    assert len(calls) == 10 and t.iters == 7 and t.timer == "wall"
    assert all(v >= 0 for v in t.samples_ms)


class FakeClock:
    """A clock (nanoseconds) that moves only when the code under test says so: no wall time involved."""

    def __init__(self):
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def advance_ms(self, ms: float) -> None:
        self.now += int(round(ms * 1e6))


def test_time_callable_min_time_runs_until_budget(monkeypatch):
    clock = FakeClock()
    calls = []

    def work():  # each call "takes" 3 ms on the fake clock
        calls.append(1)
        clock.advance_ms(3.0)

    # 20 ms budget: the loop stops at the first iteration that ends at or after 20 ms (the 7th, at 21 ms);
    # the 2 warm-up calls (6 ms) are not part of the budget
    t = time_callable(work, TimingPolicy(warmup=2, min_time=0.02, min_iters=4), clock=clock)
    assert t.iters == 7 and t.samples_ms == [3.0] * 7 and len(calls) == 2 + 7
    # min_iters wins over a budget that is already spent (5 ms is over after 2 iterations)
    assert time_callable(work, TimingPolicy(warmup=0, min_time=0.005, min_iters=4), clock=clock).iters == 4
    # max_iters caps a budget that is never reached
    capped = time_callable(work, TimingPolicy(warmup=0, min_time=60.0, min_iters=1, max_iters=5), clock=clock)
    assert capped.iters == 5
    # the module's clock is what bench rows are timed with: replacing it reaches the loop
    monkeypatch.setattr(harness, "clock_ns", clock)
    assert time_callable(work, TimingPolicy(warmup=0, min_time=0.0095, min_iters=1)).samples_ms == [3.0] * 4


class _SelfTimedRunner:
    """A runner implementing the timing protocol (like the TensorRT runner: CUDA-event milliseconds). Each
    iteration, warm-up included, takes 2 ms on `clock` when one is given."""

    timer = "cuda-event"

    def __init__(self, clock: FakeClock | None = None):
        self.calls = []
        self.clock = clock

    def timed_run(self, feeds, iters, warmup=10):
        self.calls.append((iters, warmup))
        if self.clock is not None:
            self.clock.advance_ms(2.0 * (iters + warmup))
        return [2.0] * iters

    def run(self, feeds):  # pragma: no cover - must not be used when timed_run exists
        raise AssertionError("run() used although timed_run exists")


def test_time_runner_prefers_timed_run_and_passes_warmup(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(harness, "clock_ns", clock)
    r = _SelfTimedRunner(clock)
    t = time_runner(r, {"x": np.zeros((1, 2, 1), np.float32)}, TimingPolicy(warmup=4, iters=6))
    assert t.timer == "cuda-event" and t.samples_ms == [2.0] * 6
    assert r.calls == [(6, 4)]  # warm-up handed to the runner, not run separately
    # min_time: chunks of min_iters, doubling, until the budget is spent; warm-up only with the first chunk.
    # On the fake clock: 3 iterations + 1 warm-up = 8 ms < 20 ms, then 6 more (20 ms in all): stop.
    t2 = time_runner(r, {}, TimingPolicy(warmup=1, min_time=0.02, min_iters=3))
    assert r.calls[1:] == [(3, 1), (6, 0)] and t2.iters == 9


def test_time_runner_uses_bind():
    class Bindable:
        backend = "custom"

        def __init__(self):
            self.bound = None
            self.n = 0

        def bind(self, feeds):
            self.bound = feeds

            def call():
                self.n += 1
            return call

        def run(self, feeds):  # pragma: no cover
            raise AssertionError("run() used although bind exists")

    r = Bindable()
    t = time_runner(r, {"x": 1}, TimingPolicy(warmup=2, iters=5))
    assert r.bound == {"x": 1} and r.n == 7 and t.extras["path"] == "bind"


# --------------------------------------------------------------------------------------- fast paths


def test_ort_and_torch_fast_paths(arts):
    report = bench_artifacts([arts / "m.onnx", arts / "m.pt"], BenchGrid((1, 3), (4,), (1,)), BenchOptions(policy=FAST))
    assert len(report.results) == planned_rows(2, BenchGrid((1, 3), (4,), (1,)), False) == 4
    paths = {r.backend: r.timing_path for r in report.results}
    assert paths == {"onnxruntime": "ort-iobinding", "torch": "torch-eager"}
    for r in report.results:
        assert r.iters == 8 and r.threads == 1 and r.mode == "window"
        assert r.throughput_seq_per_s == pytest.approx(r.batch / (r.p50 / 1e3), rel=1e-6)
        assert r.throughput_steps_per_s == pytest.approx(r.throughput_seq_per_s * r.seq, rel=1e-6)
        assert r.latency_ms["min"] <= r.p50 <= r.latency_ms["p99"] <= r.latency_ms["max"]
        assert r.model_size_bytes and r.model_size_bytes > 1000 and len(r.sha256) == 64
    onnx_row = report.find(backend="onnxruntime")[0]
    assert onnx_row.parent_sha256 is None or len(onnx_row.parent_sha256) == 64
    # the speed-up summary pairs each row with the torch row of the same shape
    s = {(x["artifact"], x["batch"]): x for x in summarize(report)}
    torch_row = report.find(backend="torch", batch=3)[0]
    assert s[("m.onnx", 3)]["speedup"] == pytest.approx(
        torch_row.p50 / report.find(backend="onnxruntime", batch=3)[0].p50, rel=1e-3)
    assert s[("m.pt", 1)]["speedup"] == pytest.approx(1.0)


def test_torch_threads_restored(arts):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        bench_artifacts([arts / "m.pt"], BenchGrid((1,), (3,), (1,)), BenchOptions(policy=FAST))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_in_memory_module_target(tiny_model):
    m = tiny_model("gru")
    report = bench_artifacts([BenchTarget(m, name="gru-eager", extras={"note": "x"})], BenchGrid((2,), (5,)),
                             BenchOptions(policy=FAST, measure_memory=False))
    (row,) = report.results
    assert row.artifact == "gru-eager" and row.backend == "torch" and row.extras == {"note": "x"}
    assert row.sha256 and row.model_size_bytes == sum(p.numel() * 4 for p in m.state_dict().values())


# ------------------------------------------------------------------------------------------ streaming


def test_stream_pingpong_carries_state_like_the_full_sequence(arts):
    runner = open_runner(arts / "m.stateful.onnx", threads=1)
    x_step = np.random.default_rng(0).standard_normal((2, 1, 1)).astype(np.float32)
    state0 = zero_state(runner.io, 2)
    path = step_path(runner, x_step, state0)
    assert path.name == "ort-iobinding-pingpong"
    for _ in range(5):
        path.call()
    full = runner.run({"x": np.repeat(x_step, 5, axis=1), **state0})
    state = path.call.current_state()
    np.testing.assert_allclose(state["h0"], full["hn"], atol=1e-5)
    np.testing.assert_allclose(state["c0"], full["cn"], atol=1e-5)
    assert not np.allclose(state["h0"], 0)

    class Plain:  # any runner without a session carries the state through run()
        io, backend = runner.io, "custom"
        run = staticmethod(runner.run)

    generic = step_path(Plain(), x_step, state0)
    for _ in range(5):
        generic.call()
    np.testing.assert_allclose(generic.call.state["h0"], full["hn"], atol=1e-5)


def test_stream_rows_and_ratio(arts):
    report = bench_artifacts([arts / "m.stateful.onnx"], BenchGrid((1,), (6, 12), (1,)),
                             BenchOptions(policy=FAST, stream=True))
    steps = [r for r in report.results if r.mode == "step"]
    assert len(report.results) == planned_rows(1, BenchGrid((1,), (6, 12), (1,)), True) == 3
    assert len(steps) == 1 and steps[0].seq == 1
    assert [s["window"] for s in report.stream] == [6, 12]
    for s in report.stream:
        win = report.find(mode="window", seq=s["window"])[0]
        assert s["speedup"] == pytest.approx(win.p50 / steps[0].p50)


def test_stream_on_a_stateless_artifact_is_bad_input(arts):
    with pytest.raises(BadInput, match="--stateful"):
        bench_artifacts([arts / "m.onnx"], BenchGrid((1,), (4,)), BenchOptions(policy=FAST, stream=True))
    with pytest.raises(BadInput, match="--stateful"):
        check_streamable(IOSpec((TensorSpec("x", shape=("batch", "seq", 1)),)), "a.onnx")


# ---------------------------------------------------------------------------------------- fixed shapes


def test_static_onnx_outside_its_shape_fails_before_timing(arts, monkeypatch):
    timed = []
    monkeypatch.setattr(Bencher, "measure", lambda *a, **k: timed.append(a))
    with pytest.raises(BadInput) as err:
        bench_artifacts([arts / "m.onnx", arts / "m.static.onnx"], BenchGrid((1, 8), (6, 60)),
                        BenchOptions(policy=FAST))
    msg = str(err.value)
    assert "m.static.onnx" in msg and "batch [8]" in msg and "seq [60]" in msg and "static" in msg
    assert timed == []  # nothing was timed, not even the first (valid) artifact


def test_engine_profile_limits():
    io = IOSpec((TensorSpec("x", shape=("batch", "seq", 4)),))

    class FakeEngine:
        profiles = {"x": ((1, 1, 4), (4, 64, 4), (8, 128, 4))}

    assert shape_limits(io, FakeEngine())["seq"][:2] == (1, 128)
    check_grid("e.plan", io, [1, 8], [1, 128], FakeEngine())
    with pytest.raises(BadInput, match="optimization profile"):
        check_grid("e.plan", io, [16], [60], FakeEngine())


# -------------------------------------------------------------------------------------- device, memory


def test_device_block_and_jetson(tmp_path, monkeypatch):
    d = device_mod.describe_device(gpu=False)
    assert d["cpu"]["logical_cores"] and d["os"] and d["machine"] and d["versions"]["numpy"]
    assert d["jetson"] is None or isinstance(d["jetson"], dict)
    rel = tmp_path / "nv_tegra_release"
    rel.write_text("# R36 (release), REVISION: 3.0, GCID: 36106755, BOARD: generic, EABI: aarch64\n")
    model = tmp_path / "model"
    model.write_bytes(b"NVIDIA Jetson Orin Nano Developer Kit\x00")
    monkeypatch.setattr(device_mod, "TEGRA_RELEASE", rel)
    monkeypatch.setattr(device_mod, "DEVICE_TREE_MODEL", model)
    jet = device_mod.jetson_block()
    assert jet == {"model": "NVIDIA Jetson Orin Nano Developer Kit", "l4t": "36.3.0",
                   "nv_tegra_release": "# R36 (release), REVISION: 3.0, GCID: 36106755, BOARD: generic, EABI: aarch64"}
    assert device_mod.machine_slug({"jetson": jet}) == "nvidia-jetson-orin-nano-developer-kit"
    ok, why = device_mod.same_device(d, {**d, "cpu": {**d["cpu"], "model": "Other CPU"}})
    assert not ok and "Other CPU" in why
    assert device_mod.same_device(d, json.loads(json.dumps(d)))[0]


def test_peak_memory_sees_a_large_allocation():
    def alloc():
        a = np.ones(8 * 1024 * 1024, np.float64)  # 64 MiB, touched
        return float(a[-1])

    out = peak_during(alloc, repeat=1)
    assert out["peak_run_mb"] >= 48, out


# -------------------------------------------------------------------------------------------- reports


def test_report_writers(arts, tmp_path):
    report = bench_artifacts([arts / "m.stateful.onnx", arts / "m.pt"], BenchGrid((1,), (4, 8), (1,)),
                             BenchOptions(policy=FAST))
    assert isinstance(report, BenchReport)
    data = json.loads(write_json(report, tmp_path / "r.json").read_text())
    assert data["schema"] == "edgelstm-bench/1" and {"cpu", "os", "memory_gb"} <= set(data["device"])
    for row in data["results"]:  # ARCHITECTURE.md's bench schema, exactly these keys at least
        assert {"artifact", "backend", "precision", "batch", "seq", "threads", "iters", "latency_ms",
                "throughput_seq_per_s"} <= set(row)
        assert set(row["latency_ms"]) >= {"p50", "p90", "p99", "mean", "min"}
    with open(write_csv(report, tmp_path / "r.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and float(rows[0]["p50_ms"]) == pytest.approx(data["results"][0]["latency_ms"]["p50"])
    md = write_markdown(report, tmp_path / "r.md", title="t").read_text()
    assert md.count("| m.pt |") == 2 and "speed-up" in md
    png = plot_report(report, tmp_path / "r.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_static_artifact_shape_is_read_from_the_onnx(arts):
    """bench reads a static export's fixed batch/seq from the artifact itself (its ONNX input shape), feeds
    exactly that shape, and a dynamic export has no limits."""
    x = onnx.load(str(arts / "m.static.onnx")).graph.input[0]
    assert [d.dim_value for d in x.type.tensor_type.shape.dim] == [1, 6, 1]
    with Bencher(BenchOptions(policy=FAST, measure_memory=False), BenchGrid((1,), (6,), (1,))) as bencher:
        static, dynamic = bencher.add(arts / "m.static.onnx"), bencher.add(arts / "m.onnx")
        assert shape_limits(static.io) == {"batch": (1, 1, "a fixed shape (static export)"),
                                           "seq": (6, 6, "a fixed shape (static export)")}
        assert shape_limits(dynamic.io) == {}
        assert bencher.feeds(static, 1, 6)["x"].shape == (1, 6, 1)
        row = bencher.measure(static, 1, 6, 1)
    assert (row.artifact, row.batch, row.seq, row.iters) == ("m.static.onnx", 1, 6, 8)


def test_per_target_stream_and_manifest_ort_level(arts, tmp_path):
    import shutil

    from edgelstm.artifacts.manifest import write_manifest

    plain = tmp_path / "plain.onnx"
    shutil.copy(arts / "m.onnx", plain)
    write_manifest(plain, kind="onnx", details={"ort_opt_level": "basic"})
    report = bench_artifacts([BenchTarget(arts / "m.stateful.onnx", stream=True), plain],
                             BenchGrid((1,), (4,), (1,)), BenchOptions(policy=FAST, measure_memory=False))
    modes = [(r.artifact, r.mode) for r in report.results]
    assert modes == [("m.stateful.onnx", "window"), ("m.stateful.onnx", "step"), ("plain.onnx", "window")]
    assert report.find(artifact="plain.onnx")[0].extras["ort_opt_level"] == "basic"
    assert report.find(artifact="m.stateful.onnx")[0].extras["ort_opt_level"] == "all"


def test_summaries_compare_within_a_model_and_suite_plot(tmp_path):
    from edgelstm.latency import plot_speedups, speedup

    def row(model, kind, p50, backend="onnxruntime"):
        return {"artifact": f"{model}:{kind}", "backend": backend, "precision": "fp32", "batch": 1, "seq": 60,
                "threads": 1, "iters": 10, "mode": "window", "model_size_bytes": 1024,
                "latency_ms": {"p50": p50, "p90": p50, "p99": p50, "mean": p50, "min": p50},
                "throughput_seq_per_s": 1e3 / p50, "extras": {"model": model, "kind": kind, "drift": {"rel_l2": 0.02}}}

    data = {"device": {"machine": "test"}, "results": [
        row("a", "torch-eager", 1.0, "torch"), row("a", "onnx-fp32", 0.25),
        row("b", "torch-eager", 4.0, "torch"), row("b", "onnx-fp32", 2.0)]}
    s = {x["artifact"]: x for x in summarize(data)}
    assert s["a:onnx-fp32"]["speedup"] == pytest.approx(4.0) and s["b:onnx-fp32"]["speedup"] == pytest.approx(2.0)
    assert s["b:onnx-fp32"]["reference"] == "b:torch-eager"
    assert speedup(data, "b:onnx-fp32", "b:torch-eager") == pytest.approx(2.0)
    assert plot_speedups(data, tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def _fake_timed(monkeypatch, tmp_path, timings, probes):
    """bench on a runner whose latencies (`timings`, one list per measurement) and machine probe (`probes`,
    one value per call; bench probes before and after each row) are scripted: no wall clock decides
    anything. Returns the artifact path and the list of probe calls."""
    runs, probe_values, probe_calls = iter(timings), iter(probes), []

    class Fake:
        backend, precision, label, timer = "custom", "fp32", "fake", "fake-clock"
        io = IOSpec((TensorSpec("x", shape=("batch", "seq", 1)),), (TensorSpec("y", shape=("batch", 1)),))

        def timed_run(self, feeds, iters, warmup=0):
            return next(runs)

        def run(self, feeds):
            return {"y": np.zeros((1, 1), np.float32)}

        def close(self):
            pass

    def fake_probe(blocks: int = 5) -> float:
        probe_calls.append(blocks)
        return next(probe_values)

    art = tmp_path / "fake.onnx"
    art.write_bytes(b"\x08\x07")
    monkeypatch.setattr(Bencher, "_open", lambda self, res, threads: Fake())
    monkeypatch.setattr(harness, "speed_probe", fake_probe)
    monkeypatch.setattr(harness, "clock_ns", lambda: pytest.fail("a fixed-iteration timed_run row read the clock"))
    return art, probe_calls


def test_disturbed_rows_are_remeasured_keeping_the_lowest_p50(monkeypatch, tmp_path):
    """A runner whose first measurement was preempted (p50 far above min) is measured again; the machine
    probe is steady (fake), so only the spread decides."""
    art, probe_calls = _fake_timed(monkeypatch, tmp_path, [[1.0] * 3 + [6.0] * 7, [1.1] * 10, [9.0] * 10],
                                   [0.5] * 100)
    opts = BenchOptions(policy=TimingPolicy(warmup=0, iters=10), measure_memory=False, retry_noisy=2)
    (row,) = bench_artifacts([art], BenchGrid((1,), (4,)), opts).results
    assert row.p50 == pytest.approx(1.1) and row.extras["attempts_p50_ms"] == [6.0, 1.1]
    assert row.timer == "fake-clock" and row.probe_ms == 0.5
    assert len(probe_calls) == 4  # before and after each of the two measurements: the fake probe was used
    with pytest.raises(BadInput):
        BenchOptions(retry_noisy=-1)


def test_rows_measured_while_the_machine_probe_was_slow_are_remeasured(monkeypatch, tmp_path):
    """Steady latencies, but the probe around the second row's first attempt is 1.3x the best seen (> 1.15x):
    that attempt is repeated; a steady probe is not; with retry_noisy=0 nothing is repeated."""
    timings = [[1.0] * 10, [1.3] * 10, [1.2] * 10]
    probes = [0.50, 0.50, 0.50, 0.65, 0.50, 0.52]  # row 1 | row 2 (slow probe) | row 2 again (within 1.15x)
    art, _ = _fake_timed(monkeypatch, tmp_path, timings, probes)
    opts = BenchOptions(policy=TimingPolicy(warmup=0, iters=10), measure_memory=False, retry_noisy=2)
    first, second = bench_artifacts([art], BenchGrid((1,), (4, 8)), opts).results
    assert "attempts_p50_ms" not in first.extras and first.probe_ms == 0.5
    assert second.extras["attempts_p50_ms"] == [1.3, 1.2] and second.p50 == pytest.approx(1.2)
    assert second.probe_ms == pytest.approx(0.52)
    art, _ = _fake_timed(monkeypatch, tmp_path, timings, probes)
    rows = bench_artifacts([art], BenchGrid((1,), (4, 8)), BenchOptions(
        policy=TimingPolicy(warmup=0, iters=10), measure_memory=False)).results
    assert [r.p50 for r in rows] == [pytest.approx(1.0), pytest.approx(1.3)]
    assert all("attempts_p50_ms" not in r.extras for r in rows)
