"""Which artifact wins at each shape: per (batch, seq, threads) point of a bench report, the fastest row (lowest p50),
the runner-up and the margin; with a drift budget, only rows whose drift is known and within it compete (the torch
reference always does: it is what drift is measured against). ``pick_fastest`` answers "what do I ship for batch
32 × 256?" from the same rows (the pipeline's ``[bench] pick``)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from edgelstm.errors import BadInput


def row_drift(row: Mapping[str, Any], metric: str = "rel_l2") -> float | None:
    """The drift a row carries (bench targets' extras: ``{"drift": {"rel_l2": ...}}``), None when unknown."""
    drift = ((row.get("extras") or {}).get("drift") or {}).get(metric)
    return float(drift) if isinstance(drift, (int, float)) else None


def _eligible(row: Mapping[str, Any], max_drift: float | None, metric: str) -> tuple[bool, str]:
    if max_drift is None or row.get("backend") == "torch":
        return True, ""
    d = row_drift(row, metric)
    if d is None:
        return False, "drift unknown"
    return (d <= max_drift), (f"{metric} {d:.3g} > {max_drift:g}" if d > max_drift else "")


def fastest_per_shape(rows: Iterable[Mapping[str, Any]], *, max_drift: float | None = None,
                      metric: str = "rel_l2") -> list[dict[str, Any]]:
    """One entry per (device, batch, seq, threads) of the window rows, in the report's order."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r.get("mode", "window") != "window":
            continue
        groups.setdefault((r.get("device", "cpu"), r["batch"], r["seq"], r.get("threads")), []).append(r)
    out = []
    for (device, batch, seq, threads), group in groups.items():
        ok, excluded = [], []
        for r in group:
            fine, why = _eligible(r, max_drift, metric)
            (ok if fine else excluded).append((r, why))
        ranked = sorted((r for r, _ in ok), key=lambda r: r["latency_ms"]["p50"])
        entry: dict[str, Any] = {"device": device, "batch": batch, "seq": seq, "threads": threads,
                                 "candidates": len(group),
                                 "excluded": [{"artifact": r["artifact"], "why": why} for r, why in excluded]}
        if ranked:
            best = ranked[0]
            entry.update({"artifact": best["artifact"], "backend": best["backend"], "precision": best["precision"],
                          "variant": best.get("variant", ""), "p50_ms": best["latency_ms"]["p50"],
                          "drift": row_drift(best, metric)})
            if len(ranked) > 1:
                second = ranked[1]
                entry["runner_up"] = {"artifact": second["artifact"], "backend": second["backend"],
                                      "variant": second.get("variant", ""), "p50_ms": second["latency_ms"]["p50"]}
                entry["margin"] = second["latency_ms"]["p50"] / best["latency_ms"]["p50"]
        out.append(entry)
    return out


def with_variant(entry: Mapping[str, Any], key: str = "artifact") -> str:
    """An entry's artifact (or ``key``: backend) with its variant: ``model.onnx (batch-parallel)``; "" when empty."""
    variant = entry.get("variant") or ""
    return f"{entry.get(key, '')}" + (f" ({variant})" if variant else "")


def parse_shape(text: str) -> tuple[int, int]:
    """``32x256`` (batch × seq) -> (32, 256)."""
    head, sep, tail = str(text).lower().replace("×", "x").partition("x")
    try:
        batch, seq = int(head), int(tail)
    except ValueError:
        batch = seq = 0
    if not sep or batch < 1 or seq < 1:
        raise BadInput(f"a shape is BATCHxSEQ with positive integers, e.g. 32x256; got {text!r}")
    return batch, seq


def pick_fastest(rows: Iterable[Mapping[str, Any]], shape: tuple[int, int], *, max_drift: float | None = None,
                 metric: str = "rel_l2", threads: int | None = None) -> dict[str, Any]:
    """The fastest row at ``shape`` (batch, seq) within the drift budget; BadInput when no row was timed there."""
    batch, seq = shape
    entries = [e for e in fastest_per_shape(rows, max_drift=max_drift, metric=metric)
               if e["batch"] == batch and e["seq"] == seq and (threads is None or e["threads"] == threads)]
    if not entries:
        raise BadInput(f"no bench row at batch {batch} × seq {seq}: add it to the bench grid to pick for it")
    with_winner = [e for e in entries if "artifact" in e]
    if not with_winner:
        raise BadInput(f"no artifact at batch {batch} × seq {seq} keeps {metric} <= {max_drift:g}")
    return min(with_winner, key=lambda e: e["p50_ms"])


__all__ = ["fastest_per_shape", "pick_fastest", "parse_shape", "row_drift", "with_variant"]
