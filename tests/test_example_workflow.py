"""examples/github-actions-accuracy.yml runs as shipped: its `run:` steps are executed in order with bash, as an
Actions runner would (tests/actions_runner.py), on a tiny model, for two pull requests: one that keeps accuracy
(the job passes) and one that breaks it (the job fails at the gate step only, junit.xml names the failing gates,
among them the comparison with main's model on the same runner, and the job summary says why). The paths the
workflow names exist, and its OUT_DIR is its pipeline's output folder.

The workspace is a real git clone of an `origin` repository whose `main` holds the good model; the pull request
is a commit on top. The workflow's main step fetches main and runs its pipeline in a worktree beside the checkout,
as it does on GitHub."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import json
from pathlib import Path

import numpy as np
import pytest

from actions_runner import USES, JobRunner

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "github-actions-accuracy.yml"
INSTALL = "Install edgelstm (CPU torch)"
GATE = "Fail on a gate (exit 1) or any other error"

TINY = """
[model]
source = "model.pt"
[export]
seq = 12
stateful = false
[quantize]
precisions = ["int8-dynamic"]
[data]
validation = "val.npz"
[validate]
gates = ["rel_l2<=0.05", "mse<=1.0"]
[bench]
seq = [12]
iters = 3
warmup = 1
[compare]
latency = false   # a latency verdict on this shared machine is no test: tests/test_pipeline_ci.py runs it on a fake clock
[output]
dir = "edgelstm-out"
"""


def load_workflow() -> dict:
    wf = yaml.safe_load(WORKFLOW.read_text())
    assert True in wf or "on" in wf  # YAML 1.1 reads a bare `on:` key as True
    return wf


def test_the_workflow_names_paths_that_exist():
    from edgelstm.pipeline.config import load_pipeline

    env = load_workflow()["env"]
    assert (ROOT / env["PIPELINE"]).is_file(), env["PIPELINE"]
    assert (ROOT / env["MODEL_FILE"]).is_file(), env["MODEL_FILE"]  # hashFiles() skips a missing file silently
    assert load_pipeline(ROOT / env["PIPELINE"]).out_dir.resolve() == (ROOT / env["OUT_DIR"]).resolve()
    steps = load_workflow()["jobs"]["accuracy"]["steps"]
    assert [s["name"] for s in steps if s.get("name") in (INSTALL, GATE)] == [INSTALL, GATE]
    assert {s["uses"].split("@")[0] for s in steps if "uses" in s} <= set(USES)


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    """A briefly trained tiny LSTM regressor checkpoint, a damaged copy of it (its head's bias moved by 3: the task
    error explodes), and 48 labelled sequences of its task."""
    import torch

    from edgelstm.models import zoo

    d = tmp_path_factory.mktemp("wf_files")
    model = zoo.build("lstm_regressor", {"hidden_size": 8}, seed=0)
    zoo.train(model, "lstm_regressor", steps=30, seed=0, seq=12)
    zoo.save_checkpoint(model, d / "good.pt")
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.bias += 3.0
    zoo.save_checkpoint(model, d / "bad.pt")
    x, y = zoo.synthetic_task("lstm_regressor", 48, 12, seed=5)
    np.savez(d / "val.npz", x=x, y=y)
    return d


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com", *args], cwd=cwd, check=True,
                   capture_output=True)


def run_job(tmp_path: Path, files: Path, model: str):
    """The workflow's job in a clone of `origin` (main: the good model) on a pull request whose model is ``model``
    (good.pt: unchanged, bad.pt: broken)."""
    main = tmp_path / "main"
    (main / "ci").mkdir(parents=True)
    (main / "ci" / "pipeline.toml").write_text(TINY)
    shutil.copy(files / "good.pt", main / "ci" / "model.pt")
    shutil.copy(files / "val.npz", main / "ci" / "val.npz")
    git(main, "init", "-q", "-b", "main")
    git(main, "add", ".")
    git(main, "commit", "-q", "-m", "main")
    git(tmp_path, "clone", "-q", "--bare", str(main), "origin.git")
    ws = tmp_path / "ws"
    git(tmp_path, "clone", "-q", (tmp_path / "origin.git").as_uri(), "ws")
    shutil.copy(files / model, ws / "ci" / "model.pt")
    git(ws, "commit", "-q", "--allow-empty", "-am", "the pull request")
    runner = JobRunner(load_workflow(), "accuracy", ws,
                       env={"PIPELINE": "ci/pipeline.toml", "OUT_DIR": "ci/edgelstm-out", "MODEL_FILE": "ci/model.pt",
                            "FORCE_COLOR": "0", "OMP_NUM_THREADS": "1"},  # one torch thread: 2 shared cores here
                       path_prepend=str(Path(sys.executable).parent),
                       replace={INSTALL: "edgelstm doctor"})  # the venv this test runs in is the installed edgelstm
    return runner.run(), ws


@pytest.mark.slow
def test_a_pull_request_that_keeps_accuracy_passes(tmp_path, tiny_files):
    job, ws = run_job(tmp_path, tiny_files, "good.pt")
    assert job.passed, "\n".join(f"{s.name}: {s.returncode}\n{s.output[-2000:]}" for s in job.steps)
    assert all(s.ran for s in job.steps)
    assert "✅ all" in job.summary and "sha256" in job.summary and "batch 1 × seq 12 × 1 thread" in job.summary
    assert "](" not in job.summary  # no image link that a job summary cannot show
    uploaded = job.step("Upload reports").uploaded
    assert {"pipeline-result.json", "ci/edgelstm-out/junit.xml", "ci/edgelstm-out/report.md",
            "ci/edgelstm-out/report.html", "ci/edgelstm-out/bench.json"} <= set(uploaded)
    suites = ET.parse(ws / "ci" / "edgelstm-out" / "junit.xml").getroot()
    assert suites.get("failures") == "0"
    kinds = {g["kind"] for g in json.loads((ws / "pipeline-result.json").read_text())["gates"]}
    assert kinds == {"drift", "accuracy vs OLD"}  # the absolute gates, and the comparison with main's artifacts
    assert "## Against `" in job.summary and "within 1.1x OLD" in job.summary
    assert (tmp_path / "edgelstm-main" / "ci" / "edgelstm-out" / "model.onnx").exists()  # main, built beside
    assert "all gates passed" in job.step(GATE).output


@pytest.mark.slow
def test_a_pull_request_that_breaks_accuracy_fails_at_the_gate(tmp_path, tiny_files):
    job, ws = run_job(tmp_path, tiny_files, "bad.pt")
    failed = [s.name for s in job.steps if s.ran and s.returncode != 0]
    assert failed == [GATE], "\n".join(f"{s.name}: {s.returncode}\n{s.output[-2000:]}" for s in job.steps)
    assert all(s.ran for s in job.steps)  # if: always() steps ran after the failure
    root = ET.parse(ws / "ci" / "edgelstm-out" / "junit.xml").getroot()
    failures = {(case.get("classname"), case.get("name")): case.find("failure").get("message")
                for case in root.iter("testcase") if case.find("failure") is not None}
    budgets = {k: m for k, m in failures.items() if k[0].startswith("edgelstm.validate")}
    assert set(budgets) == {("edgelstm.validate.fp32", "mse:y <= 1"), ("edgelstm.validate.int8_dynamic", "mse:y <= 1")}
    assert all(msg.startswith("mse:y = ") and "budget <= 1" in msg for msg in budgets.values())
    against = {k: m for k, m in failures.items() if k[0].startswith("edgelstm.compare")}
    assert {k[0] for k in against} == {"edgelstm.compare.fp32", "edgelstm.compare.int8_dynamic"}
    assert any(k[1].startswith("vs OLD mse:y <= ") for k in against)  # worse than main's model, same data
    assert "gates failed" in job.summary and "## Failed gates" in job.summary
    assert "**validate fp32**: mse:y = " in job.summary
    out = job.step(GATE).output
    assert "::error title=edgelstm gate failed (validate fp32)::mse:y = " in out
