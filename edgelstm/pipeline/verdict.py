"""What a pipeline run concluded, in one list: every gate (drift gates, drift against a baseline run, latency
against a baseline report, against OLD, the check on devices), and the summary rows (one per artifact). The run
passes when every gate passes; `run --json`, report.md/html and junit.xml all read this list. The devices gate
comes after the reports (the check runs on the finished output): `run --json` and the exit code have it, and
`[output].dir/devices/fleet.md|html|json` tell its story."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgelstm.latency.summary import shape_words


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def drift_gate(artifact: str, g: dict[str, Any]) -> dict[str, Any]:
    """A validate report's gate (budget, baseline or "vs OLD" change) as one of the run's gates."""
    target = f"{g.get('metric')}" + (f":{g['output']}" if g.get("output") else "")
    limit = f"{g.get('op', '<=')} {_fmt(g.get('limit'))}"
    source = g.get("source")
    name = {"baseline": f"{target} {limit} (baseline {_fmt(g.get('baseline'))} + tolerance)",
            "against": f"vs OLD {target} {limit} (OLD {_fmt(g.get('baseline'))} + tolerance)"}.get(source,
                                                                                                 f"{target} {limit}")
    message = g.get("message") or f"{artifact}: {target} = {_fmt(g.get('value'))}, limit {limit}"
    return {"suite": f"validate {artifact}", "kind": "drift baseline" if source == "baseline" else "drift",
            "artifact": artifact,
            "name": name, "passed": bool(g.get("passed")), "value": g.get("value"), "limit": g.get("limit"),
            "message": message if not g.get("passed") else ""}


def _latency_gate(row: dict[str, Any], max_slowdown: float) -> dict[str, Any]:
    ratio = row.get("confirmed_ratio") or row.get("ratio")
    message = (f"{row['row']}: p50 {_fmt(row.get('current_p50_ms'))} ms vs {_fmt(row.get('baseline_p50_ms'))} ms in the "
               f"baseline = {ratio:.2f}x, limit {max_slowdown:g}x ({row.get('note') or 'not re-measured'})")
    return {"suite": "bench baseline", "kind": "latency baseline", "artifact": row.get("artifact"),
            "name": f"{row['row']}: p50 <= {max_slowdown:g}x baseline", "passed": not row.get("regressed"),
            "value": ratio, "limit": max_slowdown, "message": message if row.get("regressed") else ""}


def _point_gate(name: str, artifact: str, latency: dict[str, Any], pt: dict[str, Any]) -> dict[str, Any]:
    limit = latency["max_slowdown"]
    r = pt["ratio"]
    where = shape_words(pt["batch"], pt["seq"], pt["threads"])
    passed = pt["verdict"] == "not slower" or (pt["verdict"] == "inconclusive" and latency["on_inconclusive"] != "fail")

    def num(v: Any) -> str:
        return "?" if v is None else f"{v:.3f}"

    message = (f"{artifact} is {pt['verdict']} than OLD at {where}: NEW/OLD {num(r['estimate'])} "
               f"({r['confidence']:.1%} interval {num(r['low'])}–{num(r['high'])}, {r['pairs']} pairs), "
               f"limit {limit:g}x")
    return {"suite": f"compare {name}", "kind": "latency vs OLD", "artifact": name,
            "name": f"vs OLD latency at {where}: NEW/OLD <= {limit:g}x", "passed": passed, "value": r["estimate"],
            "limit": limit, "verdict": pt["verdict"], "message": "" if passed and pt["verdict"] == "not slower"
            else message}


def compare_gates(comparisons: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name, c in comparisons.items():
        for g in c["accuracy"]["changes"]:
            out.append({**drift_gate(name, g), "suite": f"compare {name}", "kind": "accuracy vs OLD"})
        latency = c.get("latency")
        for pt in (latency or {}).get("points", []):
            out.append(_point_gate(name, Path(c["new"]).name, latency, pt))
    return out


def devices_gate(devices: dict[str, Any]) -> dict[str, Any]:
    """The [devices] fleet check as one gate: every device finished its check and passed its gates."""
    return {"suite": "devices", "kind": "devices", "artifact": None,
            "name": f"every device passes its check ({', '.join(devices.get('devices') or []) or 'none'})",
            "passed": bool(devices.get("passed")), "value": devices.get("exit_code"), "limit": 0,
            "message": "" if devices.get("passed") else str(devices.get("headline") or "a device check failed")}


def collect_gates(res) -> list[dict[str, Any]]:
    """Every gate of the run, in report order: the artifacts' drift gates, latency against the baseline, the
    comparison with another run ([compare] against), then the check on devices ([devices])."""
    out = [drift_gate(name, g) for name, v in res.validations.items() for g in v.get("gates", [])]
    reg = (res.bench or {}).get("regression")
    if reg:
        out += [_latency_gate(r, reg["max_slowdown"]) for r in reg.get("rows", [])]
    out += compare_gates(getattr(res, "comparisons", {}))
    devices = getattr(res, "devices", None)
    return out + ([devices_gate(devices)] if devices is not None else [])


def headline_point(bench: dict[str, Any] | None) -> tuple[int, int, int | None] | None:
    """The grid point the summary's p50 column shows: the first batch x seq x threads timed."""
    rows = [r for r in (bench or {}).get("results", []) if r.get("mode", "window") == "window"]
    return (rows[0]["batch"], rows[0]["seq"], rows[0].get("threads")) if rows else None


@dataclass
class SummaryRow:
    """One row of the run's summary (the report's table, ``run --json``'s `summary`)."""

    artifact: str
    precision: str                 # the artifact's pipeline name: fp32, fp16, int8-dynamic ... (torch: fp32)
    size_bytes: int
    rel_l2: float | None
    task: str | None
    gates: str                     # reference | pass | FAIL | -
    p50_ms: float | None
    speedup: float | None
    shape: str | None
    remarks: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"artifact": self.artifact, "precision": self.precision, "size_bytes": self.size_bytes,
                "rel_l2": self.rel_l2, "task": self.task, "gates": self.gates, "p50_ms": self.p50_ms,
                "speedup": self.speedup, "shape": self.shape, "remarks": self.remarks}


def summary_rows(res) -> list[dict[str, Any]]:
    """One row per artifact (and one for torch eager, and one per streaming step): size, drift, gates, and p50
    with the speed-up over torch eager at the headline grid point (``shape`` says which); as JSON."""
    return [row.to_json() for row in summary(res)]


def summary(res) -> list[SummaryRow]:
    """The rows of ``summary_rows``, typed."""
    from edgelstm.latency import summarize

    point = headline_point(res.bench)
    bench_rows = [r for r in (summarize(res.bench) if res.bench else [])
                  if point is None or (r["batch"], r["seq"], r["threads"]) == point or r["mode"] == "step"]
    shape = shape_words(*point) if point else None
    rows = []
    torch_p50 = next((r["p50_ms"] for r in bench_rows if r["backend"] == "torch" and r["mode"] == "window"), None)
    if torch_p50 is not None and res.model_path is not None:
        rows.append(SummaryRow("torch (eager)", "fp32", res.model_path.stat().st_size, 0.0, None, "reference",
                               torch_p50, 1.0, shape, []))
    for a in res.artifacts:
        v = res.validations.get(a.name, {})
        outputs = v.get("outputs", {})
        rel = max((o.get("rel_l2", 0.0) for o in outputs.values()), default=None)
        b = next((r for r in bench_rows if r["artifact"] == a.path.name and r["mode"] == "window"
                  and not r.get("variant")), None)   # the plain row; a batch-parallel one is in the grid table
        row = SummaryRow(a.path.name, a.name, a.size_bytes, rel, _task_value(v.get("task") or {}),
                         ("pass" if v.get("passed") else "FAIL") if v else "-",
                         b["p50_ms"] if b else None, b["speedup"] if b else None, shape if b else None,
                         list(res.remarks.get(a.name, [])))
        rows.append(row)
        step = next((r for r in bench_rows if r["artifact"] == a.path.name and r["mode"] == "step"), None)
        if step is not None:  # streaming: one new sample costs one step, not a re-run of the window
            rows.append(replace(row, artifact=f"{a.path.name} (1 step, state carried)", p50_ms=step["p50_ms"],
                                shape=shape_words(step["batch"], None, step["threads"]),
                                speedup=(torch_p50 / step["p50_ms"]) if torch_p50 and step["p50_ms"] else None,
                                remarks=list(row.remarks)))
    return rows


def _task_value(task: dict[str, Any]) -> str | None:
    for key in ("mse", "accuracy"):
        if key in task:
            return f"{key}={task[key]:.4g}"
    return None
