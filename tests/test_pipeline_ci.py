"""The pipeline in CI: the file checked up front (data kinds, model options, calibration), gates on regressions
(drift against an earlier run's reports, latency against a baseline), one verdict for `run --json`, junit.xml
and the reports, a report a reviewer reads in ten seconds, progress as each stage starts, paths relative to the
pipeline file, streaming by default only where the model supports it, and no silent calibration on noise."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgelstm.errors import BadInput
from edgelstm.pipeline.config import load_pipeline

TINY = """
[model]
zoo = "lstm_regressor"
train_steps = 5
config = {{ hidden_size = 8 }}
[export]
seq = 12
[quantize]
precisions = ["int8-dynamic"]
[data]
synthetic = 32
seq = 12
[validate]
gates = ["rel_l2<=0.05"]
{validate}
[bench]
seq = [6, 12]
iters = 3
warmup = 1
{bench}
[output]
dir = "out"
"""


def write(folder: Path, validate: str = "", bench: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pipeline.toml"
    path.write_text(TINY.format(validate=validate, bench=bench))
    return path


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """The tiny zoo pipeline run once through the CLI (2-point bench grid): (folder, exit code, stdout, stderr)."""
    from typer.testing import CliRunner

    from edgelstm.cli.app import app

    folder = tmp_path_factory.mktemp("ci_run")
    res = CliRunner().invoke(app, ["run", str(write(folder)), "--json"])
    return SimpleNamespace(dir=folder, out=folder / "out", code=res.exit_code, stdout=res.stdout, stderr=res.stderr)


# ------------------------------------------------------------------------------- the file, checked up front


@pytest.mark.parametrize("extra,culprit", [
    ('[data]\nvalidation = "v.npz"\ncalibration = "c.csv"\n', "[data].calibration: a .csv file needs [data].window"),
    ('[data]\nvalidation = "v.npz"\nwindow = 6\n', "[data].window applies to a .csv"),
    ('[data]\nvalidation = "v.npz"\ntarget = "y"\n', "[data].target names the label column of a .csv validation"),
    ('[model]\nsource = "m.pt"\nfactory = "nope.py:build"\n', "[model].factory file 'nope.py' does not exist"),
    ('[model]\nsource = "m.pt"\nfactory = "no_colon"\n', "[model].factory must look like"),
    ('[model]\nsource = "m.pt"\ninput = ["x:float32[batch"]\n', "[model].input 'x:float32[batch' is not NAME:DTYPE"),
    ('[model]\nsource = "m.pt"\n[quantize]\nprecisions = ["int8-static"]\n', "calibration_synthetic = 128"),
    ('[model]\nsource = "m.pt"\n[quantize]\nprecisions = ["int8-dynamic"]\n[data]\ncalibration_synthetic = 8\n',
     "[data].calibration_synthetic applies to int8-static"),
    ('[model]\nzoo = "gru"\nstatic = true\n[export]\nstateful = true\n', "[export].stateful = true and [model].static"),
    ('[model]\nzoo = "gru"\n[validate]\nbaseline = "nowhere"\n', "[validate].baseline 'nowhere'"),
    ('[model]\nzoo = "gru"\n[bench]\nbaseline = "v.npz"\n', "[bench].baseline 'v.npz' must be an earlier bench.json"),
    ('[model]\nzoo = "gru"\n[bench]\nmax_slowdown = 0.9\n', "[bench].max_slowdown must be a number >= 1"),
])
def test_the_whole_file_is_checked_before_anything_runs(cli, tmp_path, extra, culprit):
    (tmp_path / "v.npz").write_bytes(b"x")
    (tmp_path / "c.csv").write_text("a\n1\n")
    (tmp_path / "m.pt").write_bytes(b"x")
    text = extra if extra.startswith("[model]") else '[model]\nzoo = "lstm_regressor"\n' + extra
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(BadInput) as exc:
        load_pipeline(path)
    assert culprit in str(exc.value)
    code, _, stderr = cli("run", path)
    assert code == 2 and culprit in stderr and not (tmp_path / "edgelstm-out").exists()


def test_npz_validation_and_csv_calibration_combine(tmp_path):
    """CSV options apply to the .csv file only: an .npz validation set and a .csv calibration set load together."""
    from edgelstm.artifacts.iospec import IOSpec, TensorSpec
    from edgelstm.pipeline import steps

    np.savez(tmp_path / "v.npz", x=np.zeros((4, 6, 1), np.float32), y=np.zeros((4, 1), np.float32))
    np.savetxt(tmp_path / "c.csv", np.arange(40.0)[:, None], delimiter=",", header="v", comments="")
    path = tmp_path / "p.toml"
    path.write_text('[model]\nzoo = "lstm_regressor"\n[quantize]\nprecisions = ["int8-static"]\n'
                    '[data]\nvalidation = "v.npz"\ncalibration = "c.csv"\nwindow = 6\n')
    p = load_pipeline(path)
    spec = IOSpec((TensorSpec("x", "float32", ("batch", "seq", 1)),), (TensorSpec("y", "float32", ("batch", 1)),))
    val, calib, _ = steps.datasets(p, spec)
    assert val.n == 4 and calib.n == 35 and calib.source == "c.csv"


# ------------------------------------------------------------------------------ one verdict, junit, --json


def test_run_json_is_one_object_with_every_gate(first_run):
    assert first_run.code == 0, first_run.stderr
    result = json.loads(first_run.stdout)  # the whole of stdout is one JSON object
    assert result["passed"] and result["verdict"] == "all 3 gates passed" and result["failed_gates"] == []
    assert [g["suite"] for g in result["gates"]] == ["validate fp32", "validate fp32-stateful", "validate int8-dynamic"]
    prov = result["provenance"]
    assert prov["model"]["sha256"] and prov["machine"]["isa"] and prov["edgelstm"] and prov["date"]
    assert result["data"]["validation"] == "32 sequences of the lstm_regressor task (synthetic)"
    suites = ET.parse(first_run.out / "junit.xml").getroot()
    assert suites.get("tests") == "3" and suites.get("failures") == "0"


def test_each_stage_is_announced_when_it_starts_and_timed_when_done(first_run):
    lines = [ln for ln in first_run.stderr.splitlines() if ln.startswith("• ")]
    started = [ln[2:-2] for ln in lines if ln.endswith(" …")]
    assert started[:4] == ["train", "data", "convert", "convert --stateful"] and started[-1] == "report"
    for name in started:
        if name == "data":
            continue
        first_start = lines.index(f"• {name} …")
        done = next(i for i, ln in enumerate(lines) if re.fullmatch(rf"• {re.escape(name)}: done in \d+\.\ds", ln))
        assert first_start < done


def test_stage_progress_hooks_wrap_each_stage(tmp_path, monkeypatch):
    """on_stage(name) is entered before the stage's work and left after it (the CLI's spinner)."""
    import contextlib

    from edgelstm.pipeline import flow, steps

    events: list[tuple[str, str]] = []

    @contextlib.contextmanager
    def on_stage(name):
        events.append(("start", name))
        yield
        events.append(("end", name))

    real = steps.train_model
    monkeypatch.setattr(steps, "train_model", lambda *a: (events.append(("work", "train")), real(*a))[1])
    path = tmp_path / "p.toml"
    path.write_text('[model]\nzoo = "lstm_regressor"\ntrain_steps = 2\nconfig = { hidden_size = 4 }\n[export]\n'
                    'seq = 6\nstateful = false\n[quantize]\nprecisions = []\n[data]\nsynthetic = 8\nseq = 6\n'
                    '[bench]\nenabled = false\n[output]\ndir = "out"\n')
    flow.run_pipeline(load_pipeline(path), on_stage=on_stage)
    assert events[:3] == [("start", "train"), ("work", "train"), ("end", "train")]
    assert [e for e in events if e[0] == "start"] == [("start", s) for s in ("train", "data", "convert",
                                                                             "validate fp32", "report")]
    assert events[-1] == ("end", "report")


def test_a_run_s_reports_commit_all_or_nothing(tmp_path, monkeypatch):
    """report.md, report.html, junit.xml and the plots commit together (safe_files.all_or_nothing): when the last
    one cannot be written, the earlier run's reports are all still there, unchanged, and no temp is left."""
    from edgelstm.pipeline import flow
    from edgelstm.validation.reports import junit

    path = tmp_path / "p.toml"
    text = ('[model]\nzoo = "lstm_regressor"\ntrain_steps = 2\nconfig = { hidden_size = 4 }\n[export]\nseq = 6\n'
            'stateful = false\n[quantize]\nprecisions = []\n[data]\nsynthetic = 8\nseq = 6\n[validate]\n'
            'gates = ["rel_l2<=0.01"]\n[bench]\nenabled = false\n[output]\ndir = "out"\n')
    path.write_text(text)
    flow.run_pipeline(load_pipeline(path))
    out = tmp_path / "out"
    names = ("report.md", "report.html", "junit.xml", "drift_per_step.png")
    before = {n: (out / n).read_bytes() for n in names}

    def full_disk(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(junit, "junit_document", full_disk)
    path.write_text(text.replace("rel_l2<=0.01", "rel_l2<=0.02"))  # validate and report run again
    with pytest.raises(OSError, match="No space left"):
        flow.run_pipeline(load_pipeline(path))
    assert {n: (out / n).read_bytes() for n in names} == before
    assert not [p.name for p in out.iterdir() if p.name.endswith((".tmp", ".bak"))]


def test_a_failed_device_check_is_a_failed_gate_of_the_run(tmp_path):
    """[devices]' verdict is one of the run's gates: run --json lists it (as junit.xml would, were it written after
    the check), and the run fails with it."""
    from edgelstm.pipeline.flow import PipelineResult
    from edgelstm.pipeline.report import pipeline_suites
    from edgelstm.pipeline.schema import ModelSection, Pipeline

    res = PipelineResult(Pipeline(model=ModelSection(zoo="gru")), tmp_path)
    res.devices = {"passed": False, "exit_code": 3, "headline": "did not finish: dev2", "devices": ["dev1", "dev2"]}
    assert not res.passed
    assert [(g["suite"], g["passed"], g["message"]) for g in res.gates] == [("devices", False, "did not finish: dev2")]
    assert pipeline_suites(res)[0]["cases"][0]["failure"] == "did not finish: dev2"
    res.devices = {**res.devices, "passed": True, "exit_code": 0}
    assert res.passed and res.gates[0]["name"] == "every device passes its check (dev1, dev2)"


# ------------------------------------------------------------------------------------------------ reports


def test_the_report_top_says_when_what_and_where(first_run):
    md = (first_run.out / "report.md").read_text()
    head = md.split("## ")[0]
    sha = json.loads(first_run.stdout)["provenance"]["model"]["sha256"]
    for needle in ("# edgelstm report — ✅ all 3 gates passed", "**Date** ", "**edgelstm** ", "**commit** ",
                   f"**Model** `model.pt` · sha256 `{sha}`", "(ISA class ", "**Data** validated on 32 sequences"):
        assert needle in head, needle
    assert "](" not in md and "<img" not in md  # nothing a job summary cannot show
    html = (first_run.out / "report.html").read_text()
    top = html.split("<h2>")[0]
    assert "id='provenance'" in top and sha in top and "ISA class" in top


def test_counts_match_rows_and_every_latency_says_where(first_run):
    md = (first_run.out / "report.md").read_text()
    table = md.split("## Artifacts")[1].split("## ")[0]
    rows = [ln for ln in table.splitlines() if ln.startswith("| ") and not ln.startswith("| artifact")]
    assert "3 artifacts and the torch model they are compared with: 5 rows" in table and len(rows) == 5
    assert "p50 ms (batch 1 × seq 6 × 1 thread)" in table
    bench = json.loads((first_run.out / "bench.json").read_text())
    grid = md.split("## Latency over the whole bench grid")[1].split("## ")[0]
    grid_rows = [ln for ln in grid.splitlines() if ln.startswith("| ") and "batch ×" not in ln]
    assert f"{len(bench['results'])} measurements" in grid and len(grid_rows) == len(bench["results"])
    assert all(re.search(r"batch \d+ × (seq \d+|one step) × \d+ threads?", ln) for ln in grid_rows)
    assert (first_run.out / "latency_grid.png").exists()  # an artifact was timed at two points: its own panel


def test_notes_are_plain_words():
    from edgelstm.pipeline.steps import quantize_notes, quantize_remarks

    q = {"precision": "int8", "fallback": {"metric": "rel_l2", "budget": 0.009, "drift": 0.0075,
                                           "drift_all_quantized": 0.0075, "kept_float": []},
         "calibration": {"samples": 100, "data": "synthetic data (seeded N(0,1) noise)", "method": "minmax"}}
    notes = quantize_notes(q)
    assert "calibrated on 100 sequences of synthetic data (seeded N(0,1) noise), minmax ranges" in notes
    assert "every quantizable node kept INT8 within the 0.9% rel_l2 budget vs the FP32 ONNX (rel_l2 0.75%)" in notes
    assert quantize_remarks(q) == ["calibrated on synthetic data"]
    q["fallback"].update(kept_float=["/rnn/LSTM"], drift_all_quantized=0.081, drift=0.004)
    assert "kept 1 node(s) float to fit the 0.9% rel_l2 budget vs the FP32 ONNX (/rnn/LSTM): rel_l2 8.1% with " \
           "every node INT8, 0.4% now" in quantize_notes(q)


# ---------------------------------------------------------------------------------- gates on regressions


def test_drift_may_not_grow_beyond_an_earlier_runs_reports(first_run, tmp_path, cli):
    """[validate].baseline: an earlier run's validate/ reports; drift that grew beyond the tolerance fails the run,
    junit.xml names the gate, and artifacts with no earlier report are said to be new."""
    base = tmp_path / "main-run"
    shutil.copytree(first_run.out / "validate", base / "validate")
    better = json.loads((base / "validate" / "int8-dynamic.json").read_text())
    for m in better["outputs"].values():
        m.update({k: v / 100 for k, v in m.items() if isinstance(v, float) and k != "cosine"})
    (base / "validate" / "int8-dynamic.json").write_text(json.dumps(better))
    (base / "validate" / "fp32-stateful.json").unlink()
    work = tmp_path / "pr"
    shutil.copytree(first_run.dir, work, ignore=shutil.ignore_patterns("junit.xml", "report.*"))
    path = write(work, validate=f'baseline = "{base}"\nmax_growth = 1.1')
    code, stdout, stderr = cli("run", path, "--json")
    assert code == 1, stderr
    result = json.loads(stdout)
    failed = result["failed_gates"]
    assert failed and {g["suite"] for g in failed} == {"validate int8-dynamic"}
    assert all(g["kind"] == "drift baseline" for g in failed)
    assert any("fp32-stateful: no baseline report" in n for n in result["notes"])
    names = {c.get("name") for c in ET.parse(work / "out" / "junit.xml").getroot().iter("testcase")
             if c.find("failure") is not None}
    assert names and all("(baseline " in n for n in names)
    assert "gate failed (validate int8-dynamic)" in stderr


def test_latency_gates_join_the_verdict():
    """[bench].baseline: each compared row is a gate; a confirmed regression fails the run and names the row."""
    from edgelstm.pipeline.report import pipeline_suites
    from edgelstm.pipeline.verdict import collect_gates

    row = {"artifact": "model.onnx", "row": "model.onnx [onnxruntime/fp32] batch 1, seq 60, threads 1",
           "ratio": 2.1, "confirmed_ratio": 2.05, "regressed": True, "current_p50_ms": 0.2, "baseline_p50_ms": 0.1,
           "note": "confirmed: 2 of 2 re-measurements slower than the limit"}
    ok = {**row, "artifact": "model.pt", "row": "torch row", "ratio": 1.0, "confirmed_ratio": None, "regressed": False}
    res = SimpleNamespace(validations={}, bench={"regression": {"max_slowdown": 1.1, "rows": [row, ok]}})
    gates = collect_gates(res)
    assert [g["passed"] for g in gates] == [False, True]
    assert gates[0]["message"].startswith("model.onnx [onnxruntime/fp32] batch 1, seq 60, threads 1: p50 0.2 ms vs "
                                          "0.1 ms in the baseline = 2.05x, limit 1.1x (confirmed")
    (suite,) = pipeline_suites(SimpleNamespace(gates=gates))
    assert suite["name"] == "bench baseline" and suite["cases"][0]["failure"] == gates[0]["message"]


@pytest.mark.slow
def test_a_latency_baseline_from_this_machine_is_compared(first_run, tmp_path, cli):
    work = tmp_path / "again"
    shutil.copytree(first_run.dir, work)
    shutil.copy(first_run.out / "bench.json", work / "main-bench.json")
    path = write(work, bench='baseline = "main-bench.json"\nmax_slowdown = 1000.0')  # relative to the file
    code, stdout, stderr = cli("run", path, "--json")
    assert code == 0, stderr
    latency = [g for g in json.loads(stdout)["gates"] if g["kind"] == "latency baseline"]
    assert len(latency) == len(json.loads((first_run.out / "bench.json").read_text())["results"])


# ------------------------------------------------- a user's model: factory paths, streaming, calibration

FACTORY = """
import torch


class SeqFirstGRU(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.GRU(3, 8)          # seq-first: [seq, batch, 3]
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y[-1])


def build():
    return SeqFirstGRU()
"""


@pytest.mark.slow
def test_a_seq_first_gru_with_a_factory_file_and_synthetic_calibration(tmp_path, cli, monkeypatch):
    """factory = "mymodels.py:build" is found next to the pipeline file (run from elsewhere); stateful is skipped
    with its reason instead of failing; int8-static asked to calibrate on noise says so in its row, and the manifest
    counts calibration sequences, not time steps."""
    import importlib.util
    import sys

    import torch

    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "mymodels.py").write_text(FACTORY)
    spec = importlib.util.spec_from_file_location("mymodels_for_test", proj / "mymodels.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.save(mod.build().state_dict(), proj / "weights.pt")
    (proj / "p.toml").write_text(
        '[model]\nsource = "weights.pt"\nfactory = "mymodels.py:build"\ninput_size = 3\n[export]\nseq = 10\n'
        '[quantize]\nprecisions = ["int8-static"]\n[data]\nsynthetic = 20\nseq = 10\ncalibration_synthetic = 40\n'
        '[validate]\ngates = ["rel_l2<=0.2"]\n[bench]\nenabled = false\n[output]\ndir = "out"\n')
    monkeypatch.chdir(tmp_path)  # not the pipeline's folder
    code, stdout, stderr = cli("run", "proj/p.toml", "--json")
    assert code == 0, stderr
    result = json.loads(stdout)
    (skip,) = result["skipped"]
    assert skip["stage"] == "convert --stateful" and "batch_first" in skip["reason"]
    assert "convert --stateful: skipped" in stderr
    row = next(r for r in result["summary"] if r["precision"] == "int8-static")
    assert row["remarks"] == ["calibrated on synthetic data"]
    manifest = json.loads((proj / "out" / "model.int8-static.onnx.json").read_text())
    assert manifest["details"]["quantization"]["calibration"]["samples"] == 40  # sequences, not 40 x 10 steps
    assert "calibrated on synthetic data" in (proj / "out" / "report.md").read_text()
    assert "static INT8 calibrated on 40 sequences of synthetic data" in (proj / "out" / "report.md").read_text()
    sys.modules.pop("mymodels_for_test", None)
    (proj / "p.toml").write_text((proj / "p.toml").read_text().replace("[export]\nseq = 10", "[export]\nseq = 10\nstateful = true"))
    code, _, stderr = cli("run", "proj/p.toml")
    assert code == 2 and "[export].stateful supports batch_first recurrent layers only" in stderr


def test_quantize_refuses_static_int8_without_data_unless_asked(cli, tiny_lstm, tmp_path):
    code, _, stderr = cli("quantize", tiny_lstm.onnx, "-p", "int8", "--mode", "static", "-o", tmp_path / "q.onnx")
    assert code == 2 and "--calib-synthetic N" in stderr and not (tmp_path / "q.onnx").exists()
    code, _, stderr = cli("quantize", tiny_lstm.onnx, "-p", "int8", "--mode", "static", "--calib-synthetic", "20",
                          "-o", tmp_path / "q.onnx")
    assert code == 0, stderr
    cal = json.loads((tmp_path / "q.onnx.json").read_text())["details"]["quantization"]["calibration"]
    assert cal["samples"] == 20 and cal["data"].startswith("synthetic data")


def test_calibration_samples_are_sequences_for_a_seq_first_input():
    from edgelstm.calibration.ort_reader import check_calibration
    from edgelstm.artifacts.iospec import IOSpec, TensorSpec

    io = IOSpec((TensorSpec("x", "float32", ("seq", "batch", 3)),))
    source = [{"x": np.zeros((16, 32, 3), np.float32)}, {"x": np.zeros((16, 4, 3), np.float32)}]
    assert check_calibration(source, io) == (36, 2)  # 36 sequences of 16 steps, not 32 "samples"


# ------------------------------------------------------------ [compare] against: main's artifacts, same run


@pytest.mark.parametrize("version,latency,accuracy", [
    ("same", "not slower", True),       # an unchanged model is not flagged
    ("doubled", "slower", True),        # a no-op duplicated LSTM: twice the time, the same outputs
    ("worse", "not slower", False),     # the head scaled by 1.05: worse than main's on the same data
])
def test_compare_against_main_on_a_fake_clock(tiny_lstm, tmp_path, monkeypatch, version, latency, accuracy):
    """The pipeline's comparison stage on a simulated machine (tests/fake_machine.py: time moves only when a model
    runs), so the verdicts are exact: a latency regression fails its gate with the interval in the message, an
    accuracy regression fails a "vs OLD" gate, an unchanged model passes both."""
    from fake_machine import FakeMachine, costed_open
    from slowdown_models import pr_versions

    from edgelstm.data import synthetic_dataset
    from edgelstm.latency import compare as latency_compare
    from edgelstm.pipeline.against import compare_artifact
    from edgelstm.pipeline.verdict import compare_gates
    from edgelstm.runners import open_runner

    v = pr_versions(tiny_lstm, tmp_path)
    machine = FakeMachine(jitter=0.03, seed=0)
    costed_open(monkeypatch, machine)
    monkeypatch.setattr(latency_compare, "DEFAULT_CLOCK", machine.clock)
    path = tmp_path / "p.toml"
    path.write_text(f'[model]\nsource = "{v.ref}"\n[quantize]\nprecisions = []\n[bench]\nseq = [6]\n[compare]\n'
                    f'against = "{v.old.parent}"\n')
    p = load_pipeline(path)
    ref = open_runner(v.ref)
    val = synthetic_dataset(ref.io, 16, seq=6, seed=0)
    new = SimpleNamespace(name="fp32", path=getattr(v, version))
    paths, result = compare_artifact(ref, new, v.old, val, p, tmp_path / "compare" / "fp32.json")
    assert paths[0].exists()
    gates = compare_gates({"fp32": result["comparison"]})
    lat = [g for g in gates if g["kind"] == "latency vs OLD"]
    acc = [g for g in gates if g["kind"] == "accuracy vs OLD"]
    assert [g["verdict"] for g in lat] == [latency] and lat[0]["passed"] == (latency == "not slower")
    assert all(g["passed"] for g in acc) == accuracy and acc
    if latency == "slower":
        assert lat[0]["message"].startswith(f"{version}.onnx is slower than OLD at batch 1 × seq 6 × 1 "
                                            "thread: NEW/OLD 2.0") and "interval" in lat[0]["message"]
    if not accuracy:
        assert any(g["name"].startswith("vs OLD ") and not g["passed"] for g in acc)
