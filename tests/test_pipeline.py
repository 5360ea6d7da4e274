"""`edgelstm run`: the TOML is validated up front, stages run in order and are cached by content hash,
gates fail the run with exit 1, an interrupted run leaves no partial artifact and resumes from cache."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from edgelstm.errors import BadInput
from edgelstm.pipeline.config import load_pipeline

TINY = """
[model]
zoo = "lstm_regressor"
train_steps = 5
config = {{ hidden_size = 8 }}
[export]
seq_len = 12
stateful = true
[quantize]
precisions = {precisions}
[data]
synthetic = 32
seq = 12
[validate]
gates = [{gate}]
[bench]
seq = [12]
iters = 3
warmup = 1
[output]
dir = "out"
"""


def write(tmp_path: Path, precisions='["fp16", "int8-dynamic"]', gate='"rel_l2<=0.05"') -> Path:
    path = tmp_path / "pipeline.toml"
    path.write_text(TINY.format(precisions=precisions, gate=gate))
    return path


@pytest.mark.slow
def test_run_then_rerun_is_served_from_cache(cli, tmp_path):
    toml = write(tmp_path)
    code, stdout, stderr = cli("run", toml, "--json")
    assert code == 0, stderr
    first = json.loads(stdout)
    assert not any(s["cached"] for s in first["stages"])
    names = [s["stage"] for s in first["stages"]]
    assert names[:3] == ["train", "convert", "convert --stateful"] and names[-2:] == ["bench", "report"]
    out = tmp_path / "out"
    for f in ("model.onnx", "model.stateful.onnx", "model.fp16.onnx", "model.int8-dynamic.onnx", "report.md",
              "report.html", "drift_per_step.png", "latency.png", "bench.json", "validate/fp16.json"):
        assert (out / f).exists(), f
    summary = {r["precision"]: r for r in first["summary"]}
    assert {"fp32", "fp32-stateful", "fp16", "int8-dynamic"} <= set(summary)
    assert summary["fp32"]["rel_l2"] < 1e-5 and summary["fp32"]["gates"] == "pass"
    code, stdout, stderr = cli("run", toml, "--json")
    second = json.loads(stdout)
    assert code == 0 and all(s["cached"] for s in second["stages"])
    assert "served from cache" in stderr
    # change one option: only the stages that depend on it run again
    toml.write_text(toml.read_text().replace('precisions = ["fp16", "int8-dynamic"]', 'precisions = ["fp16"]'))
    third = json.loads(cli("run", toml, "--json")[1])
    ran = {s["stage"] for s in third["stages"] if not s["cached"]}
    assert "train" not in ran and "convert" not in ran and "quantize fp16" not in ran and "report" in ran


@pytest.mark.slow
def test_failed_gate_exits_1_after_writing_the_report(cli, tmp_path):
    toml = write(tmp_path, precisions='["int8-dynamic"]', gate='"rel_l2<=0.0000001"')
    code, _, stderr = cli("run", toml)
    assert code == 1 and "gate failed" in stderr
    md = (tmp_path / "out" / "report.md").read_text()
    assert "3 of 3 gates failed" in md and "**FAIL**" in md


@pytest.mark.parametrize("text,culprit", [
    ('[model]\nzoo = "lstm_regressor"\ntrian_steps = 3\n', "[model].trian_steps"),
    ('[model]\nzoo = "lstm_regressor"\n[quantise]\n', "[quantise]"),
    ('[model]\nzoo = "lstm_regressor"\n[validate]\ngates = ["bogus<=1"]\n', "bogus"),
    ('[model]\nsource = "missing.pt"\n', "missing.pt"),
    ('[model]\nzoo = "lstm_regressor"\n[data]\nvalidation = "nope.npz"\n', "nope.npz"),
    ('[model]\nzoo = "lstm_regressor"\n[quantize]\nprecisions = ["int4"]\n', "int4"),
    ('[model]\nzoo = "lstm_regressor"\n[bench]\niters = "many"\n', "[bench].iters"),
    ('[model\n', "not valid TOML"),
])
def test_bad_pipeline_names_the_culprit(cli, tmp_path, text, culprit):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(BadInput, match=None) as exc:
        load_pipeline(path)
    assert culprit in str(exc.value)
    code, _, stderr = cli("run", path)
    assert code == 2 and culprit in stderr and "Traceback" not in stderr
    assert not (tmp_path / "edgelstm-out").exists()


@pytest.mark.slow
def test_interrupted_run_leaves_no_partial_artifact_and_resumes(tmp_path, monkeypatch):
    from edgelstm.pipeline import flow as pipeline

    p = load_pipeline(write(tmp_path))
    real = pipeline._quantize

    def interrupted(src, out, prec, p_, calib, val):
        if prec == "int8-dynamic":
            out.write_bytes(b"half")  # what a crash mid-write would leave without atomic writes...
            out.unlink()              # ...the real stages write to a temp file and rename
            raise KeyboardInterrupt
        return real(src, out, prec, p_, calib, val)

    monkeypatch.setattr(pipeline, "_quantize", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_pipeline(p)
    out = tmp_path / "out"
    assert not (out / "model.int8-dynamic.onnx").exists()
    assert not list(out.glob(".*.tmp"))
    monkeypatch.setattr(pipeline, "_quantize", real)
    res = pipeline.run_pipeline(p)
    cached = {s["stage"] for s in res.stages if s["cached"]}
    assert {"train", "convert", "convert --stateful", "quantize fp16"} <= cached
    assert "quantize int8-dynamic" not in cached and res.passed


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
def test_html_report_renders_in_headless_chromium_with_its_plots(tmp_path):
    from PIL import Image  # pulled in by matplotlib

    from edgelstm.pipeline import flow as pipeline

    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    res = pipeline.run_pipeline(load_pipeline(write(tmp_path, precisions='["fp16"]')))
    html_path = res.reports["html"]
    text = html_path.read_text()
    assert text.count("data:image/png;base64,") == 2 and "id='drift_per_step'" in text
    shot = tmp_path / "shot.png"
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chrome'}", "--window-size=1100,2400", "--virtual-time-budget=3000",
         "--dump-dom", html_path.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert "Drift along the recurrence" in dom.stdout
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chrome2'}", "--window-size=1100,2400", f"--screenshot={shot}",
         html_path.resolve().as_uri()], capture_output=True, timeout=120)
    img = Image.open(shot).convert("RGB")
    assert img.size == (1100, 2400)
    # the top a reviewer reads first: the verdict (green) and the provenance box (date, version, commit, model
    # sha256, machine and ISA class, data) on its grey panel, both within the first 400 pixels
    for needle in ("all 3 gates passed", "<b>Date</b>", "<b>Commit</b>", "sha256", "ISA class", "<b>Data</b>"):
        assert needle in dom.stdout.split("<h2>")[0], needle
    top = img.crop((0, 0, 1100, 400)).getcolors(maxcolors=1 << 20)
    panel = sum(n for n, c in top if c == (246, 248, 250))       # #provenance background #f6f8fa
    verdict = sum(n for n, (r, g, b) in top if abs(r - 26) < 30 and abs(g - 127) < 30 and abs(b - 55) < 30)
    assert panel > 0.05 * 1100 * 400 and verdict > 200
    # the plots are drawn: the plot lines' colours (matplotlib's default blue/orange/green) appear on screen,
    # and a good share of the page is not white
    colours = img.getcolors(maxcolors=1 << 20)
    non_white = sum(n for n, c in colours if sum(c) < 720)
    assert non_white > 0.03 * img.size[0] * img.size[1]
    blues = sum(n for n, (r, g, b) in colours if b > 150 and r < 80 and 90 < g < 150)   # tab:blue #1f77b4
    greens = sum(n for n, (r, g, b) in colours if g > 130 and r < 80 and b < 80)       # tab:green #2ca02c
    teal = sum(n for n, (r, g, b) in colours if r < 70 and 140 < g < 175 and 125 < b < 160)  # latency bars
    assert blues > 50 and greens > 50 and teal > 500
