"""The results file of one device (`edgelstm device-check -o results.json`, pulled home by `edgelstm remote`):
its schema, its verdict and how it is read back. `edgelstm compare` merges several.

    {"schema": "edgelstm.device-check/1", "device": {...}, "bundle": {...}, "data": {...},
     "artifacts": [{"name", "kind", "backend", "precision", "status", "validate", "bench", "energy", "build"}],
     "gates": [{"artifact", "gate", "metric", "output", "limit", "value", "passed", "exit_code"}],
     "steps": [{"step", "status", "seconds", "error"}], "exit_code", "passed",
     "transport": {...}   # added by `edgelstm remote`: host, steps over SSH, where it stopped}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgelstm.errors import BadInput

SCHEMA = "edgelstm.device-check/1"
#: exit code of a device that could not finish its check (unreachable, lost connection, missing backend)
INCOMPLETE = 3


def gate_rows(artifact: str, gates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate's gate results as results rows: one exit code per gate (0 passed, 1 failed)."""
    return [{"artifact": artifact, "gate": gate_text(g), "metric": g.get("metric"),
             "output": g.get("output"), "limit": g.get("limit"), "value": g.get("value"),
             "passed": bool(g.get("passed")), "exit_code": 0 if g.get("passed") else 1} for g in gates]


def gate_text(g: dict[str, Any]) -> str:
    """rel_l2:y<=0.01, as a gate is written on the command line."""
    out = f":{g['output']}" if g.get("output") else ""
    return f"{g.get('metric')}{out}{g.get('op') or '<='}{g.get('limit'):g}" if isinstance(g.get("limit"), (int, float)) \
        else f"{g.get('metric')}{out}{g.get('op') or '<='}{g.get('limit')}"


def verdict(artifacts: list[dict[str, Any]], gates: list[dict[str, Any]], steps: list[dict[str, Any]]) -> int:
    """The device's exit code: the highest error code of a step or an artifact (2 bad input, 3 backend missing,
    4 internal) when something could not run; else 1 when a gate failed; else 0."""
    errors = [int(x.get("exit_code") or 4) for x in (*steps, *artifacts) if x.get("status") == "error"]
    if errors:
        return max(errors)
    return 1 if any(not g["passed"] for g in gates) else 0


def incomplete(name: str, *, host: str | None, transport: dict[str, Any], bundle: dict[str, Any] | None = None,
               partial: dict[str, Any] | None = None) -> dict[str, Any]:
    """The results of a device whose check did not come home (what the local report says about it)."""
    base = dict(partial or {})
    base.update({"schema": SCHEMA, "device": {**(base.get("device") or {}), "name": name, "host": host},
                 "bundle": base.get("bundle") or bundle or {}, "artifacts": base.get("artifacts") or [],
                 "gates": base.get("gates") or [], "steps": base.get("steps") or [],
                 "exit_code": INCOMPLETE, "passed": False, "transport": transport})
    return base


def load_results(path: str | Path) -> dict[str, Any]:
    """A results file, checked enough to merge: BadInput in one line for anything else."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{p} does not exist" if not p.exists() else f"{p} is not a file")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadInput(f"{p.name} is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise BadInput(f"{p.name} is not an edgelstm device-check results file (schema {SCHEMA}); make one with "
                       "`edgelstm device-check BUNDLE -o results.json` or `edgelstm remote`")
    if not isinstance(data.get("device"), dict) or not isinstance(data.get("artifacts"), list):
        raise BadInput(f"{p.name}: a results file needs a device block and an artifact list")
    data.setdefault("gates", [])
    data.setdefault("steps", [])
    return data
