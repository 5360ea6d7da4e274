"""What the same-run comparison says about its two artifacts and how its result reads: the description of
each side, warnings and notes about the pair, the table rows (console and Markdown) and the one-line verdict.
Works on the JSON dict (LatencyComparison.to_json()), so a stored result renders the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

VERDICT_MARK = {"not slower": "✅", "slower": "❌", "inconclusive": "⚠️"}
TABLE_COLUMNS = ["batch × seq × threads", "NEW p50", "OLD p50", "NEW/OLD", "interval", "pairs", "verdict"]


def describe_side(res: Any) -> dict[str, Any]:
    """One side of the comparison (a bencher ResolvedTarget) as the report shows it."""
    return {"artifact": res.name, "path": None if res.path is None else str(res.path), "sha256": res.sha256,
            "backend": res.backend, "device": res.device, "precision": res.precision, "size_bytes": res.size}


def pair_warnings(new: Any, old: Any) -> list[str]:
    """What makes the ratio compare more than the two models: another backend, device or precision."""
    out = []
    for what in ("backend", "device", "precision"):
        a, b = getattr(new, what), getattr(old, what)
        if a != b:
            out.append(f"NEW runs with {what} {a}, OLD with {b}: the ratio compares the {what}s as well as the models")
    return out


def pair_notes(new: Any, old: Any) -> list[str]:
    if new.sha256 and new.sha256 == old.sha256:
        return [f"NEW and OLD are the same model (sha256 {new.sha256[:12]}…): the comparison measures the noise "
                "floor of this runner"]
    return []


def fmt_ms(v: Any) -> str:
    if not isinstance(v, (int, float)) or v != v:
        return "n/a"
    return f"{v * 1000:.1f} µs" if v < 1 else f"{v:.3f} ms"


def fmt_ratio(v: Any) -> str:
    return "n/a" if not isinstance(v, (int, float)) else f"{v:.3f}×"


def interval_text(ratio: Mapping[str, Any]) -> str:
    lo, hi = ratio.get("low"), ratio.get("high")
    lo_s = "0" if not lo else f"{lo:.3f}"
    hi_s = "∞" if hi is None else f"{hi:.3f}"
    return f"[{lo_s}, {hi_s}]"


def point_label(p: Mapping[str, Any]) -> str:
    return f"{p['batch']} × {p['seq']} × {'default' if p.get('threads') is None else p['threads']}"


def table_rows(payload: Mapping[str, Any], *, marks: bool = False) -> list[list[str]]:
    rows = []
    for p in payload.get("points", []):
        verdict = p["verdict"] + (" (stopped: time budget)" if p.get("stopped") == "max_time" else "")
        rows.append([point_label(p), fmt_ms(p.get("new_p50_ms")), fmt_ms(p.get("old_p50_ms")),
                     fmt_ratio(p["ratio"].get("estimate")), interval_text(p["ratio"]), str(p.get("pairs")),
                     (VERDICT_MARK.get(p["verdict"], "") + " " if marks else "") + verdict])
    return rows


def verdict_line(payload: Mapping[str, Any]) -> str:
    """One line: the verdict, how many points, the worst ratio and what an inconclusive result does."""
    points = payload.get("points", [])
    limit = payload.get("max_slowdown")
    counts: dict[str, int] = {}
    for p in points:
        counts[p["verdict"]] = counts.get(p["verdict"], 0) + 1
    spread = ", ".join(f"{n} {v}" for v, n in counts.items())
    worst = max(points, key=lambda p: p["ratio"].get("estimate") or 0.0, default=None)
    worst_s = (f"; highest NEW/OLD {fmt_ratio(worst['ratio'].get('estimate'))} {interval_text(worst['ratio'])} at "
               f"batch × seq × threads {point_label(worst)}") if worst else ""
    line = f"NEW vs OLD: {payload['verdict']} (max slowdown {limit:g}×; {len(points)} grid point(s): {spread}{worst_s})"
    if payload["verdict"] == "inconclusive":
        line += f"; inconclusive counts as {payload.get('on_inconclusive')}"
    return line


def comparison_markdown(payload: Mapping[str, Any]) -> str:
    """A Markdown section for a CI job summary: verdict, the two artifacts, one table row per grid point."""
    mark = VERDICT_MARK.get(payload["verdict"], "")
    conf = (payload.get("options") or {}).get("confidence", 0.95)
    lines = [f"### edgelstm latency, same run: {mark} {payload['verdict']} "
             f"(NEW may be at most {payload['max_slowdown']:g}× OLD)", ""]

    def side(s: Mapping[str, Any]) -> str:
        sha = f", sha256 {str(s['sha256'])[:12]}…" if s.get("sha256") else ""
        return f"`{Path(str(s.get('path') or s.get('artifact'))).name}` ({s.get('backend')}, {s.get('precision')}{sha})"

    cpu = (payload.get("device") or {}).get("cpu") or {}
    where = ", ".join(str(x) for x in (cpu.get("model"), cpu.get("isa")) if x)
    lines.append(f"**NEW** {side(payload['new'])} vs **OLD** {side(payload['old'])}; timed in one run, blocks "
                 f"interleaved" + (f", on {where}" if where else "") + ".")
    lines += ["", "| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    for row in table_rows(payload, marks=True):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    lines += ["", f"Interval: {conf:.0%} for the whole run (each look at {payload.get('per_look_confidence', conf):.2%})."
              f" Inconclusive counts as **{payload.get('on_inconclusive')}**.", ""]
    for w in payload.get("warnings") or []:
        lines += [f"> ⚠️ {w}", ""]
    for n in payload.get("notes") or []:
        lines += [f"- {n}", ""]
    return "\n".join(lines)


__all__ = ["TABLE_COLUMNS", "comparison_markdown", "describe_side", "pair_notes", "pair_warnings", "table_rows",
           "verdict_line"]
