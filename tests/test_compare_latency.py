"""The same-run latency comparison (edgelstm.latency.compare): the statistics, the schedule and the verdicts on
a fake clock (tests/fake_machine.py: time moves only when a model runs), so every outcome here is exact and
holds on a loaded machine. No wall-clock assertion anywhere."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edgelstm.errors import BadInput
from edgelstm.latency import BenchGrid, BenchOptions
from edgelstm.latency.clock import ManualClock
from edgelstm.latency.compare import (CompareOptions, LatencyComparison, compare_latency, compare_point, judge,
                                      overall_verdict)
from edgelstm.latency.paired import RatioInterval, hodges_lehmann, ratio_interval, signed_rank_cdf
from edgelstm.options import OnInconclusive, Verdict
from fake_machine import FakeMachine, costed_open
from slowdown_models import pr_versions

WHERE = (1, 60, 1)


def run_point(machine: FakeMachine, new_ms: float, old_ms: float, options: CompareOptions, fresh_log=None):
    def make_timers(fresh: bool):
        if fresh_log is not None:
            fresh_log.append(fresh)
        return machine.timer(new_ms), machine.timer(old_ms)

    return compare_point(make_timers, options, where=WHERE, clock=machine.clock)


# ------------------------------------------------------------------------------------------ statistics


def test_signed_rank_distribution_and_critical_values():
    cdf = signed_rank_cdf(10)
    assert cdf[-1] == pytest.approx(1.0) and cdf[0] == pytest.approx(2 ** -10)
    # Wilcoxon's table, two-sided 5%: T <= 8 for n = 10, T <= 52 for n = 20
    assert cdf[8] <= 0.025 < cdf[9]
    assert signed_rank_cdf(20)[52] <= 0.025 < signed_rank_cdf(20)[53]


def test_hodges_lehmann_centre_and_interval():
    d = [0.1 + e for e in (-0.03, -0.02, -0.01, 0.0, 0.01, 0.02, 0.03, -0.015, 0.015, 0.005)]
    est, lo, hi = hodges_lehmann(d, 0.95)
    assert est == pytest.approx(0.1, abs=2e-3) and lo < 0.1 < hi and hi - lo < 0.04
    # five values: no interval reaches 95% (2 * 2^-5 > 5%): unbounded, i.e. inconclusive, never a verdict
    _, lo, hi = hodges_lehmann(d[:5], 0.95)
    assert lo == -math.inf and hi == math.inf


def test_one_wild_pair_moves_the_interval_by_a_rank_not_by_its_size():
    rng = np.random.default_rng(3)
    new = list(1.0 + 0.01 * rng.standard_normal(20))
    old = list(1.0 + 0.01 * rng.standard_normal(20))
    calm = ratio_interval(new, old, 0.95)
    new[4] *= 50.0  # a 50x spike on one NEW block
    spiked = ratio_interval(new, old, 0.95)
    assert calm.high < 1.05 and spiked.high < 1.05 and spiked.estimate < 1.02


def test_judge_needs_the_whole_interval_on_one_side():
    assert judge(RatioInterval(2.0, 1.9, 2.1, 0.95, 16), 1.10) == Verdict.slower
    assert judge(RatioInterval(1.0, 0.98, 1.02, 0.95, 16), 1.10) == Verdict.not_slower
    assert judge(RatioInterval(1.1, 1.05, 1.15, 0.95, 16), 1.10) == Verdict.inconclusive
    assert judge(RatioInterval(1.0, 0.0, math.inf, 0.95, 3), 1.10) == Verdict.inconclusive
    assert overall_verdict([Verdict.not_slower, Verdict.inconclusive]) == Verdict.inconclusive
    assert overall_verdict([Verdict.inconclusive, Verdict.slower]) == Verdict.slower
    assert overall_verdict([]) == Verdict.inconclusive


def test_options_are_checked_and_looks_double():
    assert CompareOptions(min_pairs=16, max_pairs=128).looks() == [16, 32, 64, 128]
    assert CompareOptions(min_pairs=10, max_pairs=30).looks() == [10, 20, 30]
    assert CompareOptions(min_pairs=8, max_pairs=8).looks() == [8]
    with pytest.raises(BadInput, match="--max-slowdown"):
        CompareOptions(max_slowdown=0.9)
    with pytest.raises(BadInput, match="--min-pairs"):
        CompareOptions(min_pairs=3)
    with pytest.raises(BadInput, match="--max-pairs"):
        CompareOptions(min_pairs=16, max_pairs=8)
    with pytest.raises(BadInput, match="--on-inconclusive must be one of fail, warn, pass"):
        CompareOptions(on_inconclusive="maybe")
    assert CompareOptions(on_inconclusive="warn").on_inconclusive == OnInconclusive.warn


# ------------------------------------------------------------------------------------------ the schedule


def test_unchanged_model_is_not_flagged():
    point = run_point(FakeMachine(seed=1), 1.0, 1.0, CompareOptions())
    assert point.verdict == Verdict.not_slower and point.stopped == "decided"
    assert point.interval.low < 1.0 < point.interval.high < 1.10
    assert len(point.new_block_ms) == 16 and 29 <= point.new_iters <= 31 and 29 <= point.old_iters <= 31  # 30 ms / 1 ms


def test_doubled_latency_is_flagged():
    point = run_point(FakeMachine(seed=2), 2.0, 1.0, CompareOptions())
    assert point.verdict == Verdict.slower and point.interval.low > 1.9 and point.ratio == pytest.approx(2.0, rel=0.02)
    assert 14 <= point.new_iters <= 16 and 29 <= point.old_iters <= 31 and len(point.looks) == 1  # blocks of 30 ms


def test_order_inside_pairs_is_random_or_balanced():
    rand = run_point(FakeMachine(seed=1), 1.0, 1.0, CompareOptions(seed=7))
    again = run_point(FakeMachine(seed=1), 1.0, 1.0, CompareOptions(seed=7))
    assert rand.new_first == again.new_first and 0 < sum(rand.new_first) < len(rand.new_first)
    balanced = run_point(FakeMachine(seed=1), 1.0, 1.0, CompareOptions(order="balanced"))
    assert balanced.new_first[:4] == [True, False, True, False]


def test_a_long_burst_fools_before_after_but_not_the_interleaved_run():
    # another job starts now and then for 400 ms and makes everything 2x slower
    fooled = FakeMachine(burst_p=0.35, burst_factor=2.0, window_ms=400, seed=5).naive_ratio(1.0, 1.0)
    assert not 0.9 < fooled < 1.1  # a before/after p50 comparison sees a 2x change in an unchanged model
    point = run_point(FakeMachine(burst_p=0.35, burst_factor=2.0, window_ms=400, seed=5), 1.0, 1.0, CompareOptions())
    assert point.verdict == Verdict.not_slower


@pytest.mark.parametrize("seed", range(12))
def test_noise_bursts_never_give_a_wrong_verdict(seed):
    """Short bursts (one block or two) that make 40% of the time 3x slower: the unchanged model is never called
    slower and the doubled one never called not slower, at any seed; at worst the answer is inconclusive."""
    noisy = dict(burst_p=0.4, burst_factor=3.0, window_ms=25, jitter=0.05, seed=seed)
    options = CompareOptions(max_pairs=64)
    same = run_point(FakeMachine(**noisy), 1.0, 1.0, options)
    doubled = run_point(FakeMachine(**noisy), 2.0, 1.0, options)
    assert same.verdict != Verdict.slower
    assert doubled.verdict != Verdict.not_slower


def test_noise_without_budget_to_resolve_it_is_inconclusive():
    noisy = FakeMachine(burst_p=0.5, burst_factor=4.0, window_ms=25, jitter=0.05, seed=15)
    point = run_point(noisy, 1.0, 1.0, CompareOptions(min_pairs=8, max_pairs=8))
    assert point.verdict == Verdict.inconclusive and point.stopped == "max_pairs"
    assert point.interval.low < 1.10 < point.interval.high


def test_an_inconclusive_look_extends_the_run_with_fresh_runners():
    log: list[bool] = []
    # 1.10x exactly at the tolerance: no look can clear it; the run extends to max_pairs, then gives up
    point = run_point(FakeMachine(jitter=0.05, seed=4), 1.10, 1.0, CompareOptions(min_pairs=8, max_pairs=32), log)
    assert point.verdict == Verdict.inconclusive and [look["pairs"] for look in point.looks] == [8, 16, 32]
    assert log == [False, True, True] and point.stopped == "max_pairs"


def test_the_time_budget_stops_the_extension():
    point = run_point(FakeMachine(jitter=0.05, seed=4), 1.10, 1.0, CompareOptions(min_pairs=8, max_pairs=64,
                                                                                    max_time=1.0))
    assert point.verdict == Verdict.inconclusive and point.stopped == "max_time" and point.seconds < 1.2
    assert len(point.looks) == 1  # 8 pairs took ~0.5 s: the next look (16 pairs) would not fit


def test_on_inconclusive_decides_whether_the_gate_passes():
    def result(verdicts, on):
        r = LatencyComparison({}, {}, CompareOptions(on_inconclusive=on), {})
        r.points = [type("P", (), {"verdict": v})() for v in verdicts]
        return r

    assert not result([Verdict.inconclusive], "fail").passed
    assert result([Verdict.inconclusive], "warn").passed and result([Verdict.inconclusive], "pass").passed
    assert not result([Verdict.slower, Verdict.inconclusive], "pass").passed
    assert result([Verdict.not_slower, Verdict.not_slower], "fail").passed


# ------------------------------------------------------------------------------- real artifacts, fake clock


@pytest.fixture
def pair(tiny_lstm, tmp_path):
    v = pr_versions(tiny_lstm, tmp_path)
    return v.old, v.same, v.doubled


def test_onnx_artifacts_on_the_bench_path(pair, monkeypatch):
    old, same, doubled = pair
    machine = FakeMachine(jitter=0.03, seed=0)
    costed_open(monkeypatch, machine)
    grid = BenchGrid((1, 2), (6,), (1,))
    ok = compare_latency(same, old, CompareOptions(), grid=grid, clock=machine.clock)
    assert ok.verdict == Verdict.not_slower and ok.passed and len(ok.points) == 2
    assert ok.notes and "same model" in ok.notes[0]
    slow = compare_latency(doubled, old, CompareOptions(), grid=grid, clock=machine.clock)
    assert slow.verdict == Verdict.slower and not slow.passed
    assert all(p.verdict == Verdict.slower and p.ratio == pytest.approx(2.0, rel=0.05) for p in slow.points)
    # per look: 95% for the run split over 1 look x 2 points... with 4 looks: (1 - 0.95) / (4 * 2)
    assert slow.per_look_confidence == pytest.approx(1 - 0.05 / 8)
    payload = json.loads(json.dumps(slow.to_json()))
    assert payload["verdict"] == "slower" and payload["passed"] is False
    assert payload["new"]["path"].endswith("doubled.onnx") and payload["new"]["timing_path"] == "bind"
    assert [p["batch"] for p in payload["points"]] == [1, 2] and payload["points"][0]["pairs"] == 16
    md = slow.to_markdown()
    assert "❌ slower" in md and "| 1 × 6 × 1 |" in md and "doubled.onnx" in md


def test_a_torch_model_against_its_onnx_export(tiny_lstm, monkeypatch):
    """Any pair the harness runs: NEW an in-memory torch model, OLD its ONNX export; the report warns that the
    backends differ. The torch model advances the fake clock itself (its forward is the cost)."""
    import torch

    machine = FakeMachine(seed=3)
    costed_open(monkeypatch, machine)

    class Costed(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            machine.run(x.shape[0] * x.shape[1] * 0.5)  # the same cost as the ONNX model's one LSTM
            return self.inner(x)

    res = compare_latency(Costed(tiny_lstm.model), tiny_lstm.onnx, CompareOptions(), grid=BenchGrid((1,), (6,), (1,)),
                          clock=machine.clock)
    assert res.verdict == Verdict.not_slower
    assert any("backend torch, OLD with onnxruntime" in w for w in res.warnings)


def test_problems_are_refused_before_any_timing(pair, monkeypatch):
    old, same, _ = pair
    machine = FakeMachine()
    costed_open(monkeypatch, machine)
    with pytest.raises(BadInput, match="does not exist"):
        compare_latency(same, old.with_name("nope.onnx"), clock=machine.clock)
    with pytest.raises(BadInput, match="--stream"):
        compare_latency(same, old, bench=BenchOptions(stream=True), clock=machine.clock)
    assert machine.iterations == 0


def test_manual_clock_moves_only_forward():
    clock = ManualClock(start_ns=10)
    clock.advance(1.5e6)
    assert clock.now_ns() == 1_500_010
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_engines_are_timed_by_their_own_device_timer(tiny_lstm, monkeypatch, tmp_path):
    """TensorRT engines (through the stand-in in tests/fakes: no GPU here) go through the runner's timed_run, CUDA
    events on its stream; the stand-in GPU charges every enqueue the same, so two engines are exactly alike."""
    try:
        import fakes as fake
    except ImportError:
        from tests import fakes as fake  # type: ignore[no-redef]
    from edgelstm.converters.tensorrt import BuildOptions, build_engine

    fake.install(monkeypatch, "10.14.1.48")
    plans = [build_engine(tiny_lstm.onnx, tmp_path / f"{name}.plan", BuildOptions(batch=(1, 1, 2), seq=(1, 8, 16))).path
             for name in ("main", "pr")]
    res = compare_latency(plans[1], plans[0], CompareOptions(block_iters=5), grid=BenchGrid((1, 2), (8,), (None,)),
                          clock=ManualClock())
    assert res.verdict == Verdict.not_slower and [p.ratio for p in res.points] == [1.0, 1.0]
    assert res.new["backend"] == "tensorrt" and res.new["timing_path"] == "timed_run"
    assert res.new["clock"] == "cuda-events" and res.old["clock"] == "cuda-events"
