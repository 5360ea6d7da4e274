"""`edgelstm validate --report OUT.json`: ARCHITECTURE.md's schema (reference, candidate, samples, passed,
outputs, task, gates) plus extras (schema, failed_gates, streaming, data, reference_info,
candidate_info, output_map, notes, seconds, versions, baseline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgelstm.console import json_safe
from edgelstm.fileio import write_text_atomic


def report_problem(data: Any) -> str | None:
    """Why parsed JSON is not a validate report that a baseline comparison can read, or None: 'outputs' (and
    'streaming'.outputs) must be tables of per-output metric tables, 'task' and 'streaming' tables or absent."""
    if not isinstance(data, dict) or not isinstance(data.get("outputs"), dict):
        return "no 'outputs'"
    streaming = data.get("streaming")
    if any(not isinstance(data.get(k), (dict, type(None))) for k in ("task", "streaming")):
        return "'task' and 'streaming' must be tables"
    for table in (data["outputs"], (streaming.get("outputs") or {}) if isinstance(streaming, dict) else {}):
        if not isinstance(table, dict) or not all(isinstance(m, dict) for m in table.values()):
            return "every output must be a table of metrics"
    return None


def report_dict(result) -> dict[str, Any]:
    """The report as a JSON-safe dict (a ValidationResult or an already built dict)."""
    return json_safe(result if isinstance(result, dict) else result.to_dict())


def write_validate_report(result, path: str | Path) -> Path:
    text = json.dumps(report_dict(result), indent=2, allow_nan=False, default=str) + "\n"
    return write_text_atomic(path, text)
