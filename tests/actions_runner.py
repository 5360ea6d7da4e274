"""Run a GitHub Actions job's steps locally, the way a runner does, for tests of the example workflows.

What it does as Actions does (docs.github.com, "Workflow syntax" and "Workflow commands"):
- each `run:` step is a bash script: `bash -e {0}` when no shell is given, `bash --noprofile --norc -eo pipefail {0}`
  for `shell: bash`; the working directory is the workspace (or `working-directory:`);
- environment: the workflow's, the job's and the step's `env:`, plus `GITHUB_OUTPUT`, `GITHUB_ENV`,
  `GITHUB_STEP_SUMMARY` (a fresh file per step; the job summary is their concatenation), `GITHUB_WORKSPACE`,
  `GITHUB_ACTIONS=true`, `CI=true`, `RUNNER_OS=Linux`;
- `${{ ... }}` expressions are substituted before the script runs: `env.X`, `steps.ID.outputs.Y`, `runner.os`,
  `github.*` (a pull request context); anything else is an error here, so a workflow that uses more makes the test
  fail instead of passing untested;
- `if:`: no condition means `success()` (the step runs only while every earlier step succeeded); `always()`,
  `success()`, `failure()`, `cancelled()` and their negation are understood;
- `key=value` and `key<<DELIM` lines written to `$GITHUB_OUTPUT` become `steps.ID.outputs`, those in `$GITHUB_ENV`
  the environment of later steps.

`uses:` steps cannot run here: each one the workflow names must have a handler (``USES``): checkout and setup-python
are what the test prepared (the workspace, the venv on PATH), cache is a miss, upload-artifact resolves its paths
and records which files it would upload. A step can be replaced by another script (the install step by the
already installed venv)."""

from __future__ import annotations

import glob
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class StepResult:
    name: str
    ran: bool
    returncode: int = 0
    output: str = ""
    uploaded: list[str] = field(default_factory=list)


@dataclass
class JobResult:
    steps: list[StepResult]
    summary: str

    @property
    def passed(self) -> bool:
        return all(s.returncode == 0 for s in self.steps if s.ran)

    def step(self, name: str) -> StepResult:
        return next(s for s in self.steps if s.name == name)


def step_name(step: dict[str, Any]) -> str:
    return step.get("name") or step.get("uses") or step.get("id") or "run"


class JobRunner:
    def __init__(self, workflow: dict[str, Any], job: str, workspace: Path, *, env: dict[str, str] | None = None,
                 path_prepend: str | None = None, replace: dict[str, str] | None = None,
                 github: dict[str, str] | None = None, timeout: float = 600):
        self.workflow, self.job = workflow, workflow["jobs"][job]
        self.workspace = workspace
        self.env_overrides = env or {}
        self.path_prepend = path_prepend
        self.replace = replace or {}
        self.github = {"workflow": workflow.get("name", "workflow"), "ref": "refs/pull/1/merge",
                       "event_name": "pull_request", "base_ref": "main", "head_ref": "feature", "sha": "0" * 40,
                       **(github or {})}
        self.timeout = timeout
        self.outputs: dict[str, dict[str, str]] = {}
        self.extra_env: dict[str, str] = {}
        self.status = "success"

    # ------------------------------------------------------------------------------------------ expressions

    def value(self, expr: str, env: dict[str, str]) -> str:
        expr = expr.strip()
        if expr.startswith("env."):
            return env.get(expr[4:], "")
        m = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expr)
        if m:
            return self.outputs.get(m.group(1), {}).get(m.group(2), "")
        if expr == "runner.os":
            return "Linux"
        if expr.startswith("github."):
            return self.github.get(expr[7:], "")
        if expr.startswith("hashFiles("):
            return "hash"  # only cache keys use it; the emulated cache always misses
        raise AssertionError(f"the workflow uses an expression this emulator does not know: ${{{{ {expr} }}}}")

    def substitute(self, text: str, env: dict[str, str]) -> str:
        return EXPR.sub(lambda m: self.value(m.group(1), env), text)

    def condition(self, cond: Any) -> bool:
        if cond is None:
            return self.status == "success"
        text = EXPR.sub(lambda m: m.group(1), str(cond)).strip()
        functions = {"always()": True, "success()": self.status == "success", "failure()": self.status == "failure",
                     "cancelled()": False}
        negated = text.startswith("!")
        key = text[1:].strip() if negated else text
        if key not in functions:
            raise AssertionError(f"the workflow uses a condition this emulator does not know: if: {cond}")
        return functions[key] != negated

    # ----------------------------------------------------------------------------------------------- steps

    def base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.path_prepend:
            env["PATH"] = self.path_prepend + os.pathsep + env.get("PATH", "")
        env.update({"GITHUB_ACTIONS": "true", "CI": "true", "RUNNER_OS": "Linux",
                    "GITHUB_WORKSPACE": str(self.workspace), "GITHUB_EVENT_NAME": self.github["event_name"],
                    "GITHUB_REF": self.github["ref"], "GITHUB_BASE_REF": self.github["base_ref"],
                    "GITHUB_HEAD_REF": self.github["head_ref"], "GITHUB_SHA": self.github["sha"]})
        for scope in (self.workflow.get("env") or {}, self.job.get("env") or {}):
            for k, v in scope.items():
                env[k] = self.substitute(str(v), env)
        env.update(self.env_overrides)
        env.update(self.extra_env)
        return env

    def run(self, uses: dict[str, Callable[..., StepResult]] | None = None) -> JobResult:
        handlers = {**USES, **(uses or {})}
        results, summary = [], []
        for i, step in enumerate(self.job["steps"]):
            name = step_name(step)
            if not self.condition(step.get("if")):
                results.append(StepResult(name, ran=False))
                continue
            env = self.base_env()
            for k, v in (step.get("env") or {}).items():
                env[k] = self.substitute(str(v), env)
            files = {key: self.workspace / f".runner-{i}-{key.lower()}" for key in ("OUTPUT", "ENV", "STEP_SUMMARY")}
            for key, path in files.items():
                path.write_text("")
                env[f"GITHUB_{key}"] = str(path)
            if "uses" in step and name not in self.replace:
                action = step["uses"].split("@")[0]
                if action not in handlers:
                    raise AssertionError(f"step {name!r} uses {action}, which this emulator cannot stand in for")
                with_ = {k: self.substitute(str(v), env) for k, v in (step.get("with") or {}).items()}
                res = handlers[action](self, name, with_)
            else:
                res = self._script(step, name, env)
            results.append(res)
            if res.returncode != 0 and not step.get("continue-on-error"):
                self.status = "failure"
            self._collect(step, files)
            summary.append(files["STEP_SUMMARY"].read_text())
        return JobResult(results, "".join(summary))

    def _script(self, step: dict[str, Any], name: str, env: dict[str, str]) -> StepResult:
        script = self.replace.get(name, step.get("run"))
        assert script is not None, f"step {name!r} has neither run: nor uses:"
        path = self.workspace / f".runner-{name.replace(' ', '_').replace('/', '_')}.sh"
        path.write_text(self.substitute(script, env))
        shell = step.get("shell") or (self.workflow.get("defaults") or {}).get("run", {}).get("shell")
        argv = (["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)] if shell == "bash" else
                ["bash", "-e", str(path)])
        assert shell in (None, "bash"), f"step {name!r}: shell {shell!r} is not emulated"
        cwd = self.workspace / step.get("working-directory", ".")
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=self.timeout)
        return StepResult(name, ran=True, returncode=proc.returncode, output=proc.stdout + proc.stderr)

    def _collect(self, step: dict[str, Any], files: dict[str, Path]) -> None:
        if step.get("id"):
            self.outputs[step["id"]] = parse_kv(files["OUTPUT"].read_text())
        self.extra_env.update(parse_kv(files["ENV"].read_text()))


def parse_kv(text: str) -> dict[str, str]:
    """`key=value` lines and `key<<DELIM` ... `DELIM` blocks (the $GITHUB_OUTPUT / $GITHUB_ENV format)."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delim = line.split("<<", 1)
            end = lines.index(delim, i + 1)
            out[key] = "\n".join(lines[i + 1:end])
            i = end + 1
            continue
        if "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
        i += 1
    return out


# ----------------------------------------------------------------------------------------- uses: handlers


def _prepared(what: str) -> Callable[..., StepResult]:
    def handler(runner: JobRunner, name: str, with_: dict[str, str]) -> StepResult:
        return StepResult(name, ran=True, output=f"(emulated: {what})")

    return handler


def _upload(runner: JobRunner, name: str, with_: dict[str, str]) -> StepResult:
    found: list[str] = []
    for pattern in (p.strip() for p in with_.get("path", "").splitlines()):
        if pattern and not pattern.startswith("!"):
            found += sorted(str(Path(f).relative_to(runner.workspace))
                            for f in glob.glob(str(runner.workspace / pattern), recursive=True) if Path(f).is_file())
    missing = not found and with_.get("if-no-files-found", "warn") == "error"
    return StepResult(name, ran=True, returncode=1 if missing else 0, uploaded=found,
                      output=f"(emulated upload of {len(found)} file(s))")


USES: dict[str, Callable[..., StepResult]] = {
    "actions/checkout": _prepared("the workspace is the checkout"),
    "actions/setup-python": _prepared("the test's venv is on PATH"),
    "actions/cache": _prepared("a cache miss"),
    "actions/upload-artifact": _upload,
}
