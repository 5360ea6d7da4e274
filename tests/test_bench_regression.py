"""The latency regression gate: matching, identity checks (device, model), noise handling (re-measure,
min confirmation, machine-speed probe), and on real artifacts: no false alarm on a re-run, a failure on an
artifact that really got slower.

No test here depends on wall time: the logic tests feed latencies in; the real-artifact tests run the real
bench path (real ONNX files, manifests, runners, the harness's timing loop) on a `VirtualMachine`, a fake
clock and fake machine probe on which a model's latency is a function of its graph."""

from __future__ import annotations

import copy

import onnx
import pytest

from edgelstm.converters.export.torch_to_onnx import ExportOptions, export_onnx
from edgelstm.models import zoo
from edgelstm.latency import (BenchGrid, BenchOptions, Bencher, TimingPolicy, bench_artifacts,
                                   compare_reports, harness, regression)
from edgelstm.latency.regression import load_baseline, planned_keys, precheck_baseline
from edgelstm.errors import BadInput
from edgelstm.models.loading import from_module


class VirtualMachine:
    """A fake clock and machine probe for the bench harness (installed with `install(monkeypatch)`).

    Time moves only when a model runs: by its cost — 1 µs per LSTM node of its ONNX graph per time step per
    sequence in the batch — times `slowness` (the whole machine slower: a lower clock, a busy SMT sibling;
    the probe reports it too). `load` is the share of iterations preempted by another process (each such
    iteration takes twice as long): it inflates p50, never the best (min) time. The models really run (the
    real runner, through the harness's timing loop); only the time they take is made up."""

    US_PER_LSTM_STEP = 1.0
    PROBE_MS = 0.4

    def __init__(self):
        self.now_ns = 0
        self.slowness = 1.0
        self.load = 0.0
        self.iterations = 0
        self.pauses: list[float] = []

    def clock_ns(self) -> int:
        return self.now_ns

    def speed_probe(self, blocks: int = 5) -> float:
        return self.PROBE_MS * self.slowness

    def run(self, cost_ns: float) -> None:
        self.iterations += 1
        t = cost_ns * self.slowness
        if (self.iterations % 10) < round(self.load * 10):  # a fixed share of every 10 iterations
            t *= 2
        self.now_ns += int(t)

    def set(self, *, slowness: float = 1.0, load: float = 0.0) -> "VirtualMachine":
        self.slowness, self.load = slowness, load
        return self

    def install(self, monkeypatch) -> "VirtualMachine":
        """The real runners, timed through bind() (the harness's own loop) on the virtual clock."""
        from fake_machine import cost_runners_by_lstm

        cost_runners_by_lstm(monkeypatch, lambda cost_us: self.run(cost_us * 1e3), self.US_PER_LSTM_STEP)
        monkeypatch.setattr(harness, "clock_ns", self.clock_ns)
        monkeypatch.setattr(harness, "speed_probe", self.speed_probe)
        monkeypatch.setattr(regression, "sleep", self.pauses.append)
        return self

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
                          _report(_row(p50=1.0), _row(p50=1.0, batch=8)), max_slowdown=1.10, remeasure=remeasure,
                          pause_s=0.0)
    assert res.passed and calls == [1, 1]  # only the suspect, stopped once a majority of 3 was fast
    (c,) = [c for c in res.comparisons if c.suspected]
    assert not c.regressed and "noise" in c.note and c.confirmed_ratio == pytest.approx(1.02)


def test_slowdown_that_holds_is_a_regression():
    res = compare_reports(_report(_row(p50=1.5)), _report(_row(p50=1.0)), max_slowdown=1.10,
                          remeasure=lambda row: {"p50": 1.4, "min": 1.3}, repeats=3, pause_s=0.0)
    (c,) = res.regressed
    assert c.repeats_p50 == [1.4, 1.4] and c.confirmed_ratio == pytest.approx(1.4)


def test_slow_p50_with_fast_min_is_background_load():
    # p50 inflated by load, but the best times are as fast as ever: not a slower model
    res = compare_reports(_report(_row(p50=1.5, mn=0.96)), _report(_row(p50=1.0, mn=0.95)), max_slowdown=1.10,
                          remeasure=lambda row: {"p50": 1.4, "min": 0.96}, pause_s=0.0)
    assert res.passed and res.comparisons[0].suspected


def test_machine_probe_excuses_a_slower_machine_but_not_a_slower_model():
    base = _report(_row(p50=1.0, probe=0.40))
    # the whole machine is 1.6x slower now (probe), the row 1.5x: no regression
    res = compare_reports(_report(_row(p50=1.5, probe=0.64)), base, max_slowdown=1.10,
                          remeasure=lambda row: {"p50": 1.5, "min": 1.45, "probe_ms": 0.64}, pause_s=0.0)
    assert res.passed and res.comparisons[0].machine_factor(0.64) == pytest.approx(1.6)
    # same machine speed, 1.5x slower row: regression
    res = compare_reports(_report(_row(p50=1.5, probe=0.40)), base, max_slowdown=1.10,
                          remeasure=lambda row: {"p50": 1.5, "min": 1.45, "probe_ms": 0.41}, pause_s=0.0)
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


GRID = BenchGrid((1,), (60,), (1,))
OPTS = BenchOptions(policy=TimingPolicy(warmup=10, iters=50), measure_memory=False)


@pytest.fixture
def vm(monkeypatch):
    return VirtualMachine().install(monkeypatch)


def test_rerun_of_the_same_artifact_never_fails_the_gate(fast_and_slow, vm):
    """The same artifact re-measured on a quiet, a loaded, a slower, and a loaded slower machine: never a
    regression; load is cleared as noise by re-measuring (min stays fast), a slower machine by its probe."""
    baseline = bench_artifacts([fast_and_slow["fast"]], GRID, OPTS).to_dict()
    (brow,) = baseline["results"]
    assert brow["latency_ms"]["p50"] == brow["latency_ms"]["min"] == pytest.approx(0.060)  # 1 LSTM x 60 steps
    conditions = {"quiet": {}, "loaded": {"load": 0.6}, "slower": {"slowness": 1.5},
                  "loaded and slower": {"load": 0.6, "slowness": 1.3}}
    rows = {}
    for name, condition in conditions.items():
        vm.set(**condition)
        report = bench_artifacts([fast_and_slow["fast"]], GRID, OPTS, baseline=baseline, max_slowdown=1.10)
        assert report.regression["passed"], (name, report.regression)
        assert report.regression["compared"] == 1 and report.regression["regressed"] == []
        (rows[name],) = report.regression["rows"]
    assert not rows["quiet"]["suspected"] and rows["quiet"]["ratio"] == pytest.approx(1.0)
    assert not rows["slower"]["suspected"] and rows["slower"]["machine_factor"] == pytest.approx(1.5)
    for name in ("loaded", "loaded and slower"):  # p50 looked slow: re-measured, then cleared
        row = rows[name]
        assert row["suspected"] and row["ratio"] > 1.10 * row["machine_factor"], row
        assert "cleared as noise" in row["note"] and len(row["repeats_p50_ms"]) == 2
    assert rows["loaded"]["current_min_ms"] == pytest.approx(brow["latency_ms"]["min"])
    assert vm.pauses == [0.2] * 4  # re-measurements are spaced out (2 suspects x 2 repeats)


@pytest.mark.parametrize("condition", [{}, {"load": 0.6}, {"slowness": 1.5}], ids=["quiet", "loaded", "slower"])
def test_a_slower_artifact_of_the_same_model_fails_the_gate(fast_and_slow, vm, condition):
    """4x the recurrent work (same checkpoint, same file name): a confirmed regression on a quiet machine,
    and neither background load nor a slower machine excuses it."""
    baseline = bench_artifacts([fast_and_slow["fast"]], GRID, OPTS).to_dict()
    vm.set(**condition)
    report = bench_artifacts([fast_and_slow["slow"]], GRID, OPTS, baseline=baseline, max_slowdown=1.10)
    reg = report.regression
    assert reg["passed"] is False
    (row,) = reg["regressed"]
    factor = condition.get("slowness", 1.0)
    assert row["artifact_changed"] and row["machine_factor"] == pytest.approx(factor)
    assert row["confirmed_min_ratio"] == pytest.approx(4.0 * factor)
    assert row["confirmed_ratio"] == pytest.approx(4.0 * factor * (2 if condition.get("load") else 1))
    assert row["regressed"] and row["note"] == "confirmed: 2 of 2 re-measurements slower than the limit"


def test_baseline_checks_run_before_timing(fast_and_slow, monkeypatch):
    """A baseline from another device, from another model, or without a single row this run would measure
    is refused before the first measurement."""
    baseline = {"device": {}, "results": [{
        "artifact": "m.onnx", "backend": "onnxruntime", "device": "cpu", "precision": "fp32", "variant": "",
        "mode": "window", "batch": 1, "seq": 60, "threads": 1, "iters": 50,
        "latency_ms": {"p50": 0.06, "min": 0.06}, "sha256": "0" * 64, "parent_sha256": None}]}
    timed, opened = [], []
    real_open = Bencher._open
    monkeypatch.setattr(Bencher, "measure", lambda *a, **k: timed.append(a))
    monkeypatch.setattr(Bencher, "_open", lambda self, res, threads: opened.append(res.path.name) or real_open(
        self, res, threads))
    from edgelstm.machine.device import describe_device

    here = describe_device(gpu=False)
    cases = {  # what the baseline says -> what the error says
        "another device": {"device": {**here, "cpu": {**here["cpu"], "model": "Some Other CPU"}}},
        "another model": {"device": here},  # sha256 0000… and no common parent
        "no row to compare": {"device": here, "sha": True, "batch": 8},
    }
    from edgelstm.fileio import sha256_file
    from edgelstm.artifacts.manifest import read_manifest

    manifest = read_manifest(fast_and_slow["fast"], verify=False)
    sha = manifest.sha256 if manifest is not None else sha256_file(fast_and_slow["fast"])
    for match, case in cases.items():
        base = copy.deepcopy(baseline)
        base["device"] = case["device"]
        if case.get("sha"):
            base["results"][0]["sha256"] = sha
        base["results"][0]["batch"] = case.get("batch", 1)
        with pytest.raises(BadInput, match=match):
            bench_artifacts([fast_and_slow["fast"]], GRID, OPTS, baseline=base)
    assert opened == ["m.onnx"] * 3  # each run got as far as opening the artifact (the checks need it) ...
    assert timed == []  # ... and none timed anything


# ---------------------------------------------------------------------------------- nothing to compare


def test_no_matching_row_is_bad_input_naming_what_differs():
    base = _report(_row(batch=1, seq=60), _row(batch=1, seq=256))
    with pytest.raises(BadInput) as err:
        compare_reports(_report(_row(batch=8, seq=60), _row(batch=8, seq=256)), base)
    assert str(err.value).startswith("the baseline has no row to compare with this run (batch 8 here vs 1 in the "
                                     "baseline) (rows match on artifact, backend, device, precision, variant, mode, "
                                     "batch, seq, threads;")
    assert err.value.exit_code == 2 and "\n" not in str(err.value)
    # only the fields that cannot match are named (seq 60 is in the baseline: not a cause)
    with pytest.raises(BadInput, match=r"\(backend torch here vs onnxruntime in the baseline; threads default here "
                                       r"vs 1 in the baseline\)"):
        compare_reports(_report(_row(seq=60, threads=None, backend="torch")), base)
    # the same values in other combinations: the rows are listed
    with pytest.raises(BadInput, match=r"this run: m.onnx \[onnxruntime/fp32\] batch 1, seq 256.* / the baseline: "):
        compare_reports(_report(_row(batch=1, seq=256), _row(batch=8, seq=60)),
                        _report(_row(batch=1, seq=60), _row(batch=8, seq=256)))
    # a renamed artifact is matched first; what differs is then the shape
    with pytest.raises(BadInput, match="seq 20 here vs 60, 256 in the baseline"):
        compare_reports(_report(_row(artifact="renamed.onnx", seq=20)), base)
    # one matching row is enough: the rest are listed as unmatched
    res = compare_reports(_report(_row(batch=1, seq=60), _row(batch=8, seq=60)), base)
    assert res.passed and len(res.comparisons) == 1 and len(res.unmatched_current) == 1
    # the same check before timing, on the rows a run plans to measure
    with pytest.raises(BadInput, match="batch 8 here vs 1"):
        precheck_baseline(base, DEVICE, [{"artifact": "m.onnx", "sha256": "a" * 64}],
                          planned=[{**_row(batch=8), "mode": "window", "device": "cpu", "variant": ""}])


def test_planned_keys_are_the_rows_a_run_measures(fast_and_slow, vm):
    from edgelstm.latency.schema import row_key

    grid = BenchGrid((1, 2), (6, 12), (1,))
    with Bencher(OPTS, grid) as bencher:
        report = bencher.run([fast_and_slow["fast"]])
        planned = planned_keys(bencher.resolved, grid)
    assert [row_key(p) for p in planned] == [r.key() for r in report.results]
