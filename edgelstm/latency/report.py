"""Writers for bench reports: JSON (ARCHITECTURE.md's schema plus extras), CSV (one line per row) and a
Markdown table. All writes are atomic. Every row says how it was timed: its clock (wall / cuda-events) and
whether H2D/D2H copies (and numpy conversions) were inside the timed region."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Mapping

from edgelstm.fileio import write_text_atomic

CSV_COLUMNS = ["artifact", "backend", "device", "precision", "variant", "mode", "batch", "seq", "threads", "iters",
               "p50_ms", "p90_ms", "p99_ms", "mean_ms", "min_ms", "throughput_seq_per_s", "throughput_steps_per_s",
               "model_size_bytes", "load_rss_mb", "peak_run_mb", "gpu_peak_mb", "timer", "timing_path", "sha256",
               "rel_l2", "clock", "copies_included", "provider"]


def as_dict(report: Any) -> dict[str, Any]:
    return report.to_dict() if hasattr(report, "to_dict") else dict(report)


def write_json(report: Any, path: str | Path) -> Path:
    return write_text_atomic(path, json.dumps(as_dict(report), indent=2, default=str) + "\n")


def csv_rows(report: Any) -> list[dict[str, Any]]:
    out = []
    for r in as_dict(report)["results"]:
        lat, mem, extras = r["latency_ms"], r.get("memory") or {}, r.get("extras") or {}
        drift = extras.get("drift") or {}
        out.append({
            "artifact": r["artifact"], "backend": r["backend"], "device": r.get("device", "cpu"),
            "precision": r["precision"], "variant": r.get("variant", ""), "mode": r.get("mode", "window"),
            "batch": r["batch"], "seq": r["seq"], "threads": "" if r.get("threads") is None else r["threads"],
            "iters": r["iters"], "p50_ms": lat["p50"], "p90_ms": lat["p90"], "p99_ms": lat["p99"],
            "mean_ms": lat["mean"], "min_ms": lat["min"], "throughput_seq_per_s": r["throughput_seq_per_s"],
            "throughput_steps_per_s": r.get("throughput_steps_per_s"), "model_size_bytes": r.get("model_size_bytes"),
            "load_rss_mb": mem.get("load_rss_mb"), "peak_run_mb": mem.get("peak_run_mb"),
            "gpu_peak_mb": mem.get("gpu_peak_mb"), "timer": r.get("timer"), "timing_path": r.get("timing_path"),
            "sha256": r.get("sha256"), "rel_l2": drift.get("rel_l2") if isinstance(drift, Mapping) else None,
            "clock": r.get("clock"), "copies_included": r.get("copies_included"), "provider": r.get("provider"),
        })
    return out


def write_csv(report: Any, path: str | Path) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(report):
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return write_text_atomic(path, buf.getvalue())


def _ms(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v * 1000:.1f} µs" if v < 1 else f"{v:.2f} ms"


def markdown_table(report: Any, *, reference: str | None = None) -> str:
    """A Markdown table of the rows with the speed-up against torch eager (or `reference`)."""
    from edgelstm.latency.summary import summarize

    data = as_dict(report)
    lines = ["| artifact | backend | precision | mode | batch | seq | threads | p50 | p99 | seq/s | clock | speed-up "
             "| rel_l2 | size |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for s in summarize(data, reference=reference):
        drift = s.get("drift") or {}
        rel = drift.get("rel_l2") if isinstance(drift, Mapping) else None
        lines.append("| " + " | ".join([
            s["artifact"], s["backend"] + (f" ({s['variant']})" if s["variant"] else ""), s["precision"], s["mode"],
            str(s["batch"]), str(s["seq"]), "default" if s["threads"] is None else str(s["threads"]),
            _ms(s["p50_ms"]), _ms(s["p99_ms"]), f"{s['seq_per_s']:.0f}", s["clock"],
            "–" if s["speedup"] is None else f"{s['speedup']:.2f}×",
            "–" if rel is None else f"{rel:.2e}",
            "–" if s["size_mb"] is None else f"{s['size_mb'] * 1024:.0f} KiB"]) + " |")
    return "\n".join(lines) + "\n"


def stream_table(report: Any) -> str:
    data = as_dict(report)
    if not data.get("stream"):
        return ""
    lines = ["| artifact | backend | batch | threads | window | one step (p50) | whole window (p50) | step is cheaper by |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for s in data["stream"]:
        lines.append(f"| {s['artifact']} | {s['backend']} | {s['batch']} | "
                     f"{'default' if s['threads'] is None else s['threads']} | {s['window']} | {_ms(s['step_p50_ms'])} | "
                     f"{_ms(s['window_p50_ms'])} | {s['speedup']:.1f}× |")
    return "\n".join(lines) + "\n"


def device_line(device: Mapping[str, Any]) -> str:
    cpu = device.get("cpu") or {}
    isa = f", int8 class {cpu['isa']}" if cpu.get("isa") else ""
    parts = [f"{cpu.get('model')} ({cpu.get('usable_cores') or cpu.get('logical_cores')} cores, {cpu.get('arch')}{isa})",
             f"{device.get('memory_gb')} GB RAM", str(device.get("os"))]
    if device.get("gpu"):
        parts.append(f"GPU {device['gpu'].get('name')} (sm {device['gpu'].get('capability')})")
    if device.get("jetson"):
        parts.append(f"Jetson {device['jetson'].get('model')} (L4T {device['jetson'].get('l4t')})")
    versions = device.get("versions") or {}
    libs = ", ".join(f"{k} {v}" for k, v in versions.items() if v and k != "edgelstm")
    return "; ".join(parts) + (f"; {libs}" if libs else "")


CLOCK_NOTE = ("Clock: `wall` = the host's clock around each call, `cuda-events` = CUDA events around each "
              "enqueue on the GPU; `+copies`: the timed call also moves inputs and outputs (numpy in and out, "
              "host-device copies on a GPU), otherwise inputs were staged once and outputs stay bound.")


def write_markdown(report: Any, path: str | Path, *, title: str = "edgelstm benchmark",
                   preamble: str = "") -> Path:
    from edgelstm.machine.provenance import provenance, provenance_lines

    data = as_dict(report)
    when = provenance_lines(provenance(where=Path(path).resolve().parent, device=data["device"]))[0]
    text = [f"# {title}", "", when, f"Machine: {device_line(data['device'])}", "", preamble.strip(), "",
            markdown_table(data), CLOCK_NOTE, ""]
    st = stream_table(data)
    if st:
        text += ["## Streaming: one step with the state carried vs re-running the window", "", st]
    if data.get("skipped"):
        text += ["## Skipped", ""] + [f"- {s.get('what')}: {s.get('reason')}" for s in data["skipped"]] + [""]
    return write_text_atomic(path, "\n".join(t for t in text if t is not None) + "\n")
