"""examples/github-actions-devices.yml, run here: a small local runner executes its `run:` steps job by job, the
matrix expanded (three device labels: this machine plays each self-hosted runner), artifacts passed between jobs
through a local folder, `${{ matrix.* }}` substituted, GITHUB_OUTPUT/GITHUB_STEP_SUMMARY as files. The install
steps are skipped (this environment has edgelstm) and the pipeline is a tiny one (PIPELINE/OUT_DIR overridden)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

try:
    import fleet_testbed
except ImportError:  # tests/ is a package in some layouts
    from tests import fleet_testbed  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "github-actions-devices.yml"
SKIP = {"Install edgelstm (CPU torch)", "Install edgelstm"}


class LocalRunner:
    """Runs a workflow's jobs in order in one workspace; `uses:` steps that move artifacts are emulated, the others
    (checkout, setup-python) are no-ops here."""

    def __init__(self, workflow: dict, workspace: Path, env: dict[str, str]):
        self.wf, self.ws = workflow, workspace
        self.artifacts = workspace.parent / "artifacts"
        self.env = {**os.environ, **{k: str(v) for k, v in workflow.get("env", {}).items()}, **env}
        self.summary = workspace.parent / "summary.md"
        self.log: list[tuple[str, str, int]] = []

    def expand(self, text: str, matrix: dict[str, str]) -> str:
        def sub(m: re.Match) -> str:
            key = m.group(1).strip()
            if key.startswith("matrix."):
                return matrix[key[len("matrix."):]]
            raise AssertionError(f"the local runner does not know ${{{{ {key} }}}}")
        return re.sub(r"\$\{\{(.*?)\}\}", sub, text)

    def uses(self, step: dict, matrix: dict[str, str]) -> None:
        action = step["uses"].split("@")[0]
        w = {k: self.expand(str(v), matrix) for k, v in (step.get("with") or {}).items()}
        if action == "actions/upload-artifact":
            dest = self.artifacts / w["name"]
            for p in w["path"].split():
                src = self.ws / p
                if src.is_dir():
                    shutil.copytree(src, dest, dirs_exist_ok=True)
                elif src.is_file():
                    dest.mkdir(parents=True, exist_ok=True)
                    shutil.copy(src, dest / src.name)
        elif action == "actions/download-artifact":
            names = [w["name"]] if "name" in w else sorted(p.name for p in self.artifacts.glob(w["pattern"]))
            for n in names:
                target = self.ws / w["path"] if w.get("merge-multiple") or "name" in w else self.ws / w["path"] / n
                shutil.copytree(self.artifacts / n, target, dirs_exist_ok=True)

    def job(self, name: str, matrix: dict[str, str]) -> int:
        job = self.wf["jobs"][name]
        output = self.ws.parent / "github_output"
        code = 0
        for step in job["steps"]:
            if "uses" in step:
                self.uses(step, matrix)
                continue
            if step.get("name") in SKIP:
                continue
            if code and "always()" not in str(step.get("if", "")):
                continue
            env = {**self.env, **{k: str(v) for k, v in (job.get("env") or {}).items()},
                   "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(self.summary)}
            p = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                                self.expand(step["run"], matrix)], cwd=self.ws, env=env, capture_output=True,
                               text=True, timeout=600)
            self.log.append((f"{name} {matrix} {step.get('name')}", p.stdout + p.stderr, p.returncode))
            code = code or p.returncode
        return code

    def run(self) -> dict[str, int]:
        codes = {}
        for name, job in self.wf["jobs"].items():
            matrix = (job.get("strategy") or {}).get("matrix") or {}
            combos = [dict(zip(matrix, values)) for values in zip(*matrix.values())] if matrix else [{}]
            for combo in combos:
                codes[f"{name}{'-' + '-'.join(combo.values()) if combo else ''}"] = self.job(name, combo)
        return codes


@pytest.mark.slow
def test_the_device_matrix_workflow_runs_and_merges(tmp_path):
    wf = yaml.safe_load(WORKFLOW.read_text())
    assert wf["jobs"]["check"]["runs-on"] == ["self-hosted", "${{ matrix.device }}"]
    labels = wf["jobs"]["check"]["strategy"]["matrix"]["device"]
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "tiny.toml").write_text(fleet_testbed.tiny_pipeline(samples=16, stateful=False, out="edgelstm-out/tiny"))
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # edgelstm, python3 = this env
    runner = LocalRunner(wf, ws, {"PIPELINE": "tiny.toml", "OUT_DIR": "edgelstm-out/tiny", "PATH": path})
    codes = runner.run()
    assert codes == {"bundle": 0, **{f"check-{lab}": 0 for lab in labels}, "compare": 0}, runner.log
    report = json.loads((ws / "fleet.json").read_text())
    assert [d["name"] for d in report["devices"]] == sorted(labels) and report["passed"]
    for lab in labels:
        r = json.loads((runner.artifacts / f"results-{lab}" / f"{lab}.json").read_text())
        assert r["device"]["labels"] == [lab] and r["edgelstm"]["from"] == "bundle wheel"
    assert "all gates passed on 3 device(s)" in runner.summary.read_text()
    assert (runner.artifacts / "device-report" / "fleet.html").is_file()


def test_a_missing_device_fails_the_compare_job(tmp_path):
    """A runner that never reported (offline): compare reports the others and the job exits 3 naming it."""
    wf = yaml.safe_load(WORKFLOW.read_text())
    ws = tmp_path / "ws"
    (ws / "results").mkdir(parents=True)
    art = tmp_path / "artifacts" / "results-x86-avx2"
    art.mkdir(parents=True)
    from edgelstm.fleet.results import SCHEMA

    (art / "x86-avx2.json").write_text(json.dumps({"schema": SCHEMA, "device": {"name": "x86-avx2"}, "artifacts": [],
                                                   "gates": [], "steps": [], "exit_code": 0, "passed": True}))
    runner = LocalRunner(wf, ws, {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    assert runner.job("compare", {}) == 3
    assert "no results from: orin-nano xavier-nx" in runner.summary.read_text()
