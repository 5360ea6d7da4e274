"""Summaries of a bench report for people: one line per row with the speed-up against a reference row,
a speed-up between two artifacts, and streaming (one step with the state carried) against re-running the
window. They read report objects and report dicts alike."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from edgelstm.latency.schema import BenchReport, BenchRow, clock_label, rows_of


def shape_words(batch: int, seq: int | None, threads: int | None) -> str:
    """Where a latency figure was measured, in the words every report uses: ``batch 1 × seq 60 × 1 thread``
    (``seq`` None: one streaming step)."""
    t = "default threads" if threads is None else f"{threads} thread{'' if threads == 1 else 's'}"
    return f"batch {batch} × {'one step' if seq is None else f'seq {seq}'} × {t}"


def stream_summary(rows: Sequence[BenchRow]) -> list[dict[str, Any]]:
    """Pair each step row with the window rows of the same artifact/backend/batch/threads: the cost of
    carrying the state one step vs re-running the whole window for one new sample."""
    out = []
    for step in (r for r in rows if r.mode == "step"):
        for win in rows:
            if (win.mode == "window" and win.artifact == step.artifact and win.backend == step.backend
                    and win.device == step.device and win.variant == step.variant and win.batch == step.batch
                    and win.threads == step.threads):
                out.append({
                    "artifact": step.artifact, "backend": step.backend, "device": step.device,
                    "precision": step.precision, "batch": step.batch, "threads": step.threads, "window": win.seq,
                    "step_p50_ms": step.p50, "step_min_ms": step.latency_ms["min"],
                    "window_p50_ms": win.p50, "window_min_ms": win.latency_ms["min"],
                    "speedup": win.p50 / step.p50 if step.p50 > 0 else float("inf"),
                    "step_clock": clock_label(step.to_dict()), "window_clock": clock_label(win.to_dict()),
                })
    return out


def summarize(report: BenchReport | Mapping[str, Any], *, reference: str | None = None) -> list[dict[str, Any]]:
    """One line per row for people: artifact, backend, precision, shape, threads, size (MB), p50 (ms), how it
    was timed (clock, copies), and the speed-up against the reference row with the same batch/seq/threads/mode
    (and extras["model"], when rows carry one) — by default the first torch row on the same device, i.e. torch
    eager; or the row whose artifact is `reference`."""
    rows = rows_of(report)

    def group(r: Mapping[str, Any]) -> Any:  # suite rows of several models: compare within one model
        return (r.get("extras") or {}).get("model")

    def ref_for(r: Mapping[str, Any]) -> Mapping[str, Any] | None:
        for cand in rows:
            if (cand["batch"], cand["seq"], cand.get("threads"), cand.get("mode", "window"), group(cand)) != (
                    r["batch"], r["seq"], r.get("threads"), r.get("mode", "window"), group(r)):
                continue
            if reference is not None and cand["artifact"] == reference:
                return cand
            if reference is None and cand["backend"] == "torch" and not cand.get("variant") \
                    and cand.get("device", "cpu") == r.get("device", "cpu"):
                return cand
        return None

    out = []
    for r in rows:
        ref = ref_for(r)
        p50 = r["latency_ms"]["p50"]
        out.append({
            "artifact": r["artifact"], "backend": r["backend"], "precision": r["precision"],
            "variant": r.get("variant", ""), "mode": r.get("mode", "window"), "batch": r["batch"], "seq": r["seq"],
            "threads": r.get("threads"),
            "size_mb": round(r["model_size_bytes"] / 1024 ** 2, 4) if r.get("model_size_bytes") else None,
            "p50_ms": p50, "p99_ms": r["latency_ms"]["p99"], "seq_per_s": r["throughput_seq_per_s"],
            "clock": clock_label(r),
            "speedup": (ref["latency_ms"]["p50"] / p50) if ref is not None and p50 > 0 else None,
            "reference": ref["artifact"] if ref is not None else None,
            **({"drift": r["extras"]["drift"]} if "drift" in r.get("extras", {}) else {}),
        })
    return out


def speedup(report: BenchReport | Mapping[str, Any], artifact: str, reference: str, **match: Any) -> float | None:
    """p50(reference) / p50(artifact) for the first pair of rows that agree on batch/seq/threads/mode and
    on every field in `match` (e.g. batch=1, seq=60, threads=1)."""
    rows = rows_of(report)
    for r in rows:
        if r["artifact"] != artifact or any(r.get(k) != v for k, v in match.items()):
            continue
        for ref in rows:
            if ref["artifact"] == reference and all(ref.get(k) == r.get(k) for k in ("batch", "seq", "threads", "mode")):
                return ref["latency_ms"]["p50"] / r["latency_ms"]["p50"]
    return None
