"""The latency regression gate: matching, identity checks (device, model), noise handling (re-measure,
min confirmation, machine-speed probe), and on real artifacts: no false alarm on a re-run, a failure on an
artifact that really got slower."""

from __future__ import annotations

import copy
from pathlib import Path

import onnx
import pytest

from converters.torch_to_onnx import ExportOptions, export_onnx
from edgelstm import zoo
from edgelstm.benchmarking import BenchGrid, BenchOptions, TimingPolicy, bench_artifacts, compare_reports
from edgelstm.benchmarking.regression import load_baseline, precheck_baseline
from edgelstm.errors import BadInput
from edgelstm.loading import from_module

DEVICE = {"cpu": {"model": "Test CPU"}, "gpu": None, "jetson": None}


def _row(artifact="m.onnx", p50=1.0, mn=None, sha="a" * 64, parent=None, probe=None, **kw):
    row = {"artifact": artifact, "backend": "onnxruntime", "precision": "fp32", "batch": 1, "seq": 60, "threads": 1,
           "iters": 100, "latency_ms": {"p50": p50, "p90": p50, "p99": p50, "mean": p50, "min": mn or p50 * 0.95},
           "throughput_seq_per_s": 1e3 / p50, "sha256": sha, "parent_sha256": parent, "probe_ms": probe}
    row.update(kw)
    return row


def _report(*rows, device=DEVICE):
    return {"device": copy.deepcopy(device), "results": list(rows)}


# ------------------------------------------------------------------------------------------ logic


def test_within_limit_passes_and_slower_without_remeasure_fails():
    base = _report(_row(p50=1.0), _row(p50=2.0, batch=8))
    cur = _report(_row(p50=1.05), _row(p50=2.5, batch=8))
    res = compare_reports(cur, base, max_slowdown=1.10)
    assert not res.passed and len(res.comparisons) == 2
    (bad,) = res.regressed
    assert bad.key[6] == 8 and bad.ratio == pytest.approx(1.25) and bad.note == "not re-measured"
    d = res.to_dict()
    assert d["passed"] is False and d["regressed"][0]["ratio"] == pytest.approx(1.25)
    assert "batch 8" in d["regressed"][0]["row"]


def test_suspect_is_remeasured_and_noise_is_cleared():
    calls = []

    def remeasure(row):
        calls.append(row["batch"])
        return {"p50": 1.02, "min": 0.97}

    res = compare_reports(_report(_row(p50=1.5), _row(p50=1.0, batch=8)),
                          _report(_row(p50=1.0), _row(p50=1.0, batch=8)), max_slowdown=1.10, remeasure=remeasure)
    assert res.passed and calls == [1, 1]  # only the suspect, stopped once a majority of 3 was fast
    (c,) = [c for c in res.comparisons if c.suspected]
    assert not c.regressed and "noise" in c.note and c.confirmed_ratio == pytest.approx(1.02)


def test_slowdown_that_holds_is_a_regression():
    res = compare_reports(_report(_row(p50=1.5)), _report(_row(p50=1.0)), max_slowdown=1.10,
                          remeasure=lambda row: {"p50": 1.4, "min": 1.3}, repeats=3)
    (c,) = res.regressed
    assert c.repeats_p50 == [1.4, 1.4] and c.confirmed_ratio == pytest.approx(1.4)


def test_slow_p50_with_fast_min_is_background_load():
    # p50 inflated by load, but the best times are as fast as ever: not a slower model
    res = compare_reports(_report(_row(p50=1.5, mn=0.96)), _report(_row(p50=1.0, mn=0.95)), max_slowdown=1.10,
                          remeasure=lambda row: {"p50": 1.4, "min": 0.96})
    assert res.passed and res.comparisons[0].suspected


def test_machine_probe_excuses_a_slower_machine_but_not_a_slower_model():
    base = _report(_row(p50=1.0, probe=0.40))
    # the whole machine is 1.6x slower now (probe), the row 1.5x: no regression
    res = compare_reports(_report(_row(p50=1.5, probe=0.64)), base, max_slowdown=1.10,
                          remeasure=lambda row: {"p50": 1.5, "min": 1.45, "probe_ms": 0.64})
    assert res.passed and res.comparisons[0].machine_factor(0.64) == pytest.approx(1.6)
    # same machine speed, 1.5x slower row: regression
    res = compare_reports(_report(_row(p50=1.5, probe=0.40)), base, max_slowdown=1.10,
                          remeasure=lambda row: {"p50": 1.5, "min": 1.45, "probe_ms": 0.41})
    assert not res.passed
    # a faster machine never makes the limit stricter
    res = compare_reports(_report(_row(p50=1.05, probe=0.20)), base, max_slowdown=1.10)
    assert res.passed


def test_other_device_or_other_model_is_bad_input():
    base = _report(_row(p50=1.0))
    other_cpu = {**DEVICE, "cpu": {"model": "Another CPU"}}
    with pytest.raises(BadInput, match="another device"):
        compare_reports(_report(_row(p50=1.0), device=other_cpu), base)
    with pytest.raises(BadInput, match="another device"):
        compare_reports(_report(_row(p50=1.0), device={**DEVICE, "gpu": {"name": "NVIDIA H100"}}), base)
    with pytest.raises(BadInput, match="another model"):
        compare_reports(_report(_row(p50=1.0, sha="b" * 64)), base)
    with pytest.raises(BadInput, match="no rows for"):
        compare_reports(_report(_row(artifact="other.onnx", sha="c" * 64)), base)
    with pytest.raises(BadInput, match="max-slowdown"):
        compare_reports(_report(_row(p50=1.0)), base, max_slowdown=0.9)


def test_rebuilt_artifact_of_the_same_model_and_renamed_file_match():
    base = _report(_row(p50=1.0, sha="a" * 64, parent="p" * 64))
    res = compare_reports(_report(_row(p50=1.0, sha="b" * 64, parent="p" * 64)), base)
    assert res.passed and res.comparisons[0].artifact_changed
    res = compare_reports(_report(_row(artifact="renamed.onnx", p50=1.0)), base)
    assert res.passed and len(res.comparisons) == 1
    # rows the baseline lacks (another batch) are listed, not compared
    res = compare_reports(_report(_row(p50=1.0), _row(p50=1.0, batch=4)), base)
    assert len(res.comparisons) == 1 and len(res.unmatched_current) == 1


def test_load_baseline_errors(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        load_baseline(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(BadInput, match="not valid JSON"):
        load_baseline(tmp_path / "bad.json")
    (tmp_path / "wrong.json").write_text('{"results": 3}')
    with pytest.raises(BadInput, match="not an edgelstm bench report"):
        load_baseline(tmp_path / "wrong.json")
    with pytest.raises(BadInput, match="another device"):
        precheck_baseline(_report(_row()), {"cpu": {"model": "x"}}, [{"artifact": "m.onnx", "sha256": "a" * 64}])


# ---------------------------------------------------------------------------------- real artifacts


@pytest.fixture(scope="module")
def fast_and_slow(tmp_path_factory):
    """The same model (same checkpoint = same parent) exported twice: as is, and with repeated work (three
    extra LSTMs whose outputs are multiplied by zero): a real artifact that got slower, same file name."""
    import torch

    d = tmp_path_factory.mktemp("bench_regression")
    m = zoo.build("lstm_regressor", {"hidden_size": 8}, seed=0)
    zoo.save_checkpoint(m, d / "m.pt")

    class RepeatedWork(torch.nn.Module):
        def __init__(self, base, k=3):
            super().__init__()
            self.base = base
            self.extra = torch.nn.ModuleList([torch.nn.LSTM(1, 8, batch_first=True) for _ in range(k)])

        def forward(self, x):
            y = self.base(x)
            for lstm in self.extra:
                y = y + 0.0 * lstm(x)[0][:, -1, :1]
            return y

    quick = ExportOptions(seq_len=6, verify_seqs=(6,), verify_batches=(2,))
    paths = {}
    for name, module in (("fast", m), ("slow", RepeatedWork(m).eval())):
        loaded = from_module(module)
        loaded.path = d / "m.pt"
        (d / name).mkdir()
        paths[name] = export_onnx(loaded, d / name / "m.onnx", quick).path
    lstms = [n for n in onnx.load(str(paths["slow"])).graph.node if n.op_type == "LSTM"]
    assert len(lstms) == 4  # the repeated work survived export and simplification
    return paths


GRID = BenchGrid((1,), (60,), (1,))  # ~50 µs rows: long enough that timer noise stays small
OPTS = BenchOptions(policy=TimingPolicy(warmup=30, iters=300), measure_memory=False)


def test_rerun_of_the_same_artifact_never_fails_the_gate(fast_and_slow):
    baseline = bench_artifacts([fast_and_slow["fast"]], GRID, OPTS).to_dict()
    verdicts, alarms = [], []
    for _ in range(10):
        report = bench_artifacts([fast_and_slow["fast"]], GRID, OPTS, baseline=baseline, max_slowdown=1.10)
        verdicts.append(report.regression["passed"])
        assert report.regression["compared"] == 1
        if not report.regression["passed"]:
            alarms.append(report.regression["rows"][0])
    assert verdicts == [True] * 10, (baseline["results"][0]["latency_ms"], baseline["results"][0]["probe_ms"], alarms)


def test_a_slower_artifact_of_the_same_model_fails_the_gate(fast_and_slow):
    baseline = bench_artifacts([fast_and_slow["fast"]], GRID, OPTS).to_dict()
    report = bench_artifacts([fast_and_slow["slow"]], GRID, OPTS, baseline=baseline, max_slowdown=1.10)
    reg = report.regression
    assert reg["passed"] is False
    (row,) = reg["regressed"]
    assert row["artifact_changed"] and row["ratio"] > 1.5 and row["confirmed_ratio"] > 1.5
    assert row["regressed"] and "confirmed" in row["note"]


def test_baseline_checks_run_before_timing(fast_and_slow, monkeypatch):
    from edgelstm.benchmarking import Bencher

    baseline = bench_artifacts([fast_and_slow["fast"]], GRID, OPTS).to_dict()
    baseline["device"]["cpu"]["model"] = "Some Other CPU"
    monkeypatch.setattr(Bencher, "measure", lambda *a, **k: pytest.fail("timed before checking the baseline"))
    with pytest.raises(BadInput, match="another device"):
        bench_artifacts([fast_and_slow["fast"]], GRID, OPTS, baseline=baseline)
    assert isinstance(Path(fast_and_slow["fast"]), Path)
