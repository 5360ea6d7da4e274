"""`edgelstm validate --report OUT.json`: DESIGN.md's schema (reference, candidate, samples, passed,
outputs, task, gates) plus extras (schema, failed_gates, streaming, data, reference_info,
candidate_info, output_map, notes, seconds, versions, baseline)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from edgelstm.fileio import write_text_atomic


def _clean(v: Any) -> Any:
    """JSON-safe: numpy scalars -> Python, NaN/inf -> null (strict JSON has neither)."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if hasattr(v, "item") and callable(v.item) and getattr(v, "ndim", 1) == 0:
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, Path):
        return str(v)
    return v


def report_dict(result) -> dict[str, Any]:
    """The report as a JSON-safe dict (a ValidationResult or an already built dict)."""
    return _clean(result if isinstance(result, dict) else result.to_dict())


def write_validate_report(result, path: str | Path) -> Path:
    text = json.dumps(report_dict(result), indent=2, allow_nan=False, default=str) + "\n"
    return write_text_atomic(path, text)
