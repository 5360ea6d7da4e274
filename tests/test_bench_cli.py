"""`edgelstm bench` CLI: --json schema, report files, exit codes 0/1/2/3, one-line errors."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from edgelstm.converters.export.torch_to_onnx import ExportOptions, export_onnx
from edgelstm.models import zoo
from edgelstm.models.loading import from_module

FAST = ["--warmup", "2", "--iters", "10"]


@pytest.fixture(scope="module")
def arts(tmp_path_factory, tiny_lstm):
    d = tiny_lstm.copy_to(tmp_path_factory.mktemp("bench_cli"))
    m = tiny_lstm.model
    quick = dict(seq_len=6, verify_seqs=(6,), verify_batches=(2,))

    class RepeatedWork(torch.nn.Module):  # the same model doing 4x the recurrent work
        def __init__(self, base):
            super().__init__()
            self.base = base
            self.extra = torch.nn.ModuleList([torch.nn.LSTM(1, 8, batch_first=True) for _ in range(3)])

        def forward(self, x):
            y = self.base(x)
            for lstm in self.extra:
                y = y + 0.0 * lstm(x)[0][:, -1, :1]
            return y

    slow = from_module(RepeatedWork(m).eval())
    slow.path = d / "m.pt"
    (d / "slow").mkdir()
    export_onnx(slow, d / "slow" / "m.onnx", ExportOptions(**quick))
    return d


def _one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_json_schema_and_report_files(cli, arts, tmp_path):
    code, stdout, stderr = cli("bench", arts / "m.onnx", arts / "m.pt", "--batch", "1,2", "--seq", "4,8",
                               "--threads", "1", *FAST, "--json", "--report", tmp_path / "r.json",
                               "--csv", tmp_path / "r.csv", "--plot", tmp_path / "r.png")
    assert code == 0, stderr
    payload = json.loads(stdout)
    assert {"device", "results"} <= set(payload) and payload["device"]["cpu"]["model"]
    assert len(payload["results"]) == 2 * 2 * 2
    for row in payload["results"]:
        assert {"artifact", "backend", "precision", "batch", "seq", "threads", "iters", "latency_ms",
                "throughput_seq_per_s"} <= set(row)
        assert set(row["latency_ms"]) >= {"p50", "p90", "p99", "mean", "min"} and row["iters"] == 10
        assert row["threads"] == 1 and row["model_size_bytes"] > 0
    assert {r["backend"] for r in payload["results"]} == {"onnxruntime", "torch"}
    assert json.loads((tmp_path / "r.json").read_text())["results"] == payload["results"]
    assert len((tmp_path / "r.csv").read_text().strip().splitlines()) == 1 + 8
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    assert "latency" in stderr


def test_stream_reports_step_vs_window(cli, arts):
    code, stdout, stderr = cli("bench", arts / "m.stateful.onnx", "--stream", "--batch", "1", "--seq", "12",
                               "--threads", "1", *FAST, "--json")
    assert code == 0, stderr
    payload = json.loads(stdout)
    (s,) = payload["stream"]
    assert s["window"] == 12 and s["speedup"] == pytest.approx(s["window_p50_ms"] / s["step_p50_ms"], rel=1e-3)
    assert [r["mode"] for r in payload["results"]] == ["window", "step"]
    assert "one step" in stderr


def test_stream_needs_a_stateful_artifact(cli, arts):
    code, _, stderr = cli("bench", arts / "m.onnx", "--stream", *FAST)
    assert code == 2
    assert "--stateful" in _one_error_line(stderr)


def test_fixed_shape_outside_is_one_line_bad_input(cli, arts):
    code, stdout, stderr = cli("bench", arts / "m.static.onnx", "--batch", "1,4", "--seq", "6", *FAST, "--json")
    assert code == 2 and json.loads(stdout)["kind"] == "bad_input"  # --json: the outcome, not a result
    line = _one_error_line(stderr)
    assert "m.static.onnx" in line and "batch [4]" in line


def test_unknown_and_missing_backends(cli, arts):
    code, _, stderr = cli("bench", arts / "m.onnx", "--backend", "tflite", *FAST)
    assert code == 2 and "unknown backend 'tflite'" in _one_error_line(stderr)
    if importlib.util.find_spec("tensorrt") is None:
        code, _, stderr = cli("bench", arts / "m.onnx", "--backend", "tensorrt", *FAST)
        line = _one_error_line(stderr)
        assert code == 3 and "tensorrt" in line and "install" in line
    code, _, stderr = cli("bench", arts / "m.onnx", "--backend", "torch", *FAST)
    assert code == 2 and "torch backend runs torch models" in _one_error_line(stderr)


def test_usage_errors(cli, arts, tmp_path):
    code, _, stderr = cli("bench", arts / "m.onnx", "--iters", "5", "--min-time", "1")
    assert code == 2 and "either --iters or --min-time" in _one_error_line(stderr)
    code, _, stderr = cli("bench", arts / "m.onnx", "--batch", "0")
    assert code == 2 and "--batch" in _one_error_line(stderr)
    code, _, stderr = cli("bench", tmp_path / "missing.onnx", *FAST)
    assert code == 2 and "does not exist" in _one_error_line(stderr)
    code, _, stderr = cli("bench", arts / "m.onnx", "--report", tmp_path / "r.txt", *FAST)
    assert code == 2 and "--report must end in .json" in _one_error_line(stderr)


def _virtual_machine(monkeypatch):
    """tests/test_bench_regression.py's fake clock and machine probe: latency = the artifact's LSTM work."""
    try:
        from test_bench_regression import VirtualMachine
    except ImportError:
        from tests.test_bench_regression import VirtualMachine  # type: ignore[no-redef]
    return VirtualMachine().install(monkeypatch)


def test_baseline_gate_exit_codes(cli, arts, tmp_path, monkeypatch):
    vm = _virtual_machine(monkeypatch)  # no wall time: the verdicts hold on a loaded machine
    base = tmp_path / "base.json"
    common = ["--batch", "1", "--seq", "20", "--threads", "1", "--warmup", "10", "--iters", "50"]
    code, _, stderr = cli("bench", arts / "m.onnx", *common, "--report", base)
    assert code == 0, stderr
    code, stdout, stderr = cli("bench", arts / "m.onnx", *common, "--baseline", base, "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["regression"]["passed"] is True and "no latency regression" in stderr
    vm.set(load=0.6)  # background load: p50 looks 2x slower, re-measuring clears it
    code, stdout, stderr = cli("bench", arts / "m.onnx", *common, "--baseline", base, "--json")
    assert code == 0, stderr
    assert "1 suspect(s) cleared as noise" in " ".join(stderr.split())
    vm.set()
    code, stdout, stderr = cli("bench", arts / "slow" / "m.onnx", *common, "--baseline", base, "--json",
                               "--report", tmp_path / "after.json")
    assert code == 1, stderr
    reg = json.loads(stdout)["regression"]
    assert reg["passed"] is False and reg["regressed"][0]["confirmed_ratio"] == pytest.approx(4.0)
    assert "latency regression" in _one_error_line(stderr) and (tmp_path / "after.json").exists()
    # another model (no common parent) and another device are refused before timing
    other = zoo.build("lstm_regressor", {"hidden_size": 8}, seed=1)
    export_onnx(other, tmp_path / "m.onnx", ExportOptions(seq_len=6, verify_seqs=(6,), verify_batches=(2,)))
    code, _, stderr = cli("bench", tmp_path / "m.onnx", *common, "--baseline", base)
    assert code == 2 and "another model" in _one_error_line(stderr)
    data = json.loads(base.read_text())
    data["device"]["cpu"]["model"] = "Some Other CPU"
    (tmp_path / "other_device.json").write_text(json.dumps(data))
    code, _, stderr = cli("bench", arts / "m.onnx", *common, "--baseline", tmp_path / "other_device.json")
    assert code == 2 and "another device" in _one_error_line(stderr)


def test_baseline_without_a_matching_row_is_bad_input(cli, arts, tmp_path, monkeypatch):
    """Comparing nothing is not a pass: a run whose rows all miss the baseline (another batch/seq/threads)
    exits 2 with one line naming what differs, before anything is timed."""
    base = tmp_path / "base.json"
    code, _, stderr = cli("bench", arts / "m.onnx", "--batch", "1", "--seq", "20", "--threads", "1", *FAST,
                          "--report", base)
    assert code == 0, stderr
    from edgelstm.latency import Bencher

    monkeypatch.setattr(Bencher, "measure", lambda *a, **k: pytest.fail("timed before checking the baseline"))
    code, stdout, stderr = cli("bench", arts / "m.onnx", "--batch", "2,4", "--seq", "20", "--threads", "1", *FAST,
                               "--baseline", base, "--json")
    assert code == 2 and json.loads(stdout)["exit_code"] == 2
    line = _one_error_line(stderr)
    assert "base.json has no row to compare with this run" in line and "batch 2, 4 here vs 1 in the baseline" in line
    assert "0 row(s) within" not in stderr
    code, _, stderr = cli("bench", arts / "m.onnx", "--batch", "1", "--seq", "20", *FAST, "--baseline", base)
    assert code == 2 and "threads default here vs 1 in the baseline" in _one_error_line(stderr)


def test_engine_rows_through_the_tensorrt_stand_in(cli, arts, monkeypatch, tmp_path):
    """The bench path for engines, against tests/fakes (no GPU here): the runner's own
    CUDA-event timing is used, the profile bounds the grid before timing, streaming carries the state."""
    try:
        import fakes as fake
    except ImportError:
        from tests import fakes as fake  # type: ignore[no-redef]
    from edgelstm.converters.tensorrt import BuildOptions, build_engine

    fake.install(monkeypatch, "10.14.1.48")
    plan = build_engine(arts / "m.onnx", tmp_path / "m.plan", BuildOptions(batch=(1, 2, 4), seq=(1, 8, 16))).path
    splan = build_engine(arts / "m.stateful.onnx", tmp_path / "s.plan",
                         BuildOptions(batch=(1, 1, 2), seq=(1, 8, 16))).path
    code, stdout, stderr = cli("bench", plan, "--batch", "1,4", "--seq", "8", *FAST, "--json")
    assert code == 0, stderr
    rows = json.loads(stdout)["results"]
    assert [(r["backend"], r["device"], r["batch"]) for r in rows] == [("tensorrt", "cuda", 1), ("tensorrt", "cuda", 4)]
    assert all(r["iters"] == 10 and r["timing_path"] is None and r["timer"] == "cuda-event" for r in rows)
    # the runner's own timing: CUDA events around each enqueue, inputs staged once, outputs not copied back
    assert all(r["clock"] == "cuda-events" and r["copies_included"] is False for r in rows)
    assert "cuda-events" in stderr  # the table says how each row was timed
    code, _, stderr = cli("bench", plan, "--batch", "8", "--seq", "8", *FAST)
    assert code == 2 and "optimization profile" in _one_error_line(stderr)
    code, stdout, stderr = cli("bench", splan, "--stream", "--batch", "1", "--seq", "8", *FAST, "--json")
    assert code == 0, stderr
    payload = json.loads(stdout)
    assert payload["stream"][0]["window"] == 8
    # streaming steps go through run(): the wall clock, with the host<->device copies inside
    assert [(r["mode"], r["clock"], r["copies_included"]) for r in payload["results"]] == [
        ("window", "cuda-events", False), ("step", "wall", True)]
