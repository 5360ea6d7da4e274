"""`merge_results(results) -> report`: several devices' results files as one cross-device report (artifacts x
devices): the gate verdicts, drift against the reference, latency p50/p99 at the plan's first point, energy per
inference, and per device what it is and how its check ended. `edgelstm compare results/*.json` and
`edgelstm remote` both end here; files from a CI matrix of self-hosted runners merge the same way.

The report's exit code is the worst device's: 0 all passed, 1 a gate failed somewhere, 2-4 a device could not
finish (3: unreachable, lost connection, a missing backend); the report names the device and where it stopped.
"""

from __future__ import annotations

from typing import Any

REPORT_SCHEMA = "edgelstm.fleet-report/1"


def _rel_l2(validate: dict[str, Any] | None) -> float | None:
    outs = (validate or {}).get("outputs") or {}
    vals = [o.get("rel_l2") for o in outs.values() if o.get("rel_l2") is not None]
    return max(vals) if vals else None


def _first_window(bench: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    return next((r for r in bench or [] if r.get("mode", "window") == "window"), None)


def cell(artifact: dict[str, Any], gates: list[dict[str, Any]]) -> dict[str, Any]:
    """One artifact on one device: its verdict and numbers."""
    v = artifact.get("validate")
    row = _first_window(artifact.get("bench"))
    energy = artifact.get("energy") or {}
    failed = [g for g in gates if g["artifact"] == artifact["name"] and not g["passed"]]
    status = artifact.get("status", "ok")
    c: dict[str, Any] = {"status": status, "passed": bool(v and v.get("passed")) and status == "ok",
                         "rel_l2": _rel_l2(v), "task": (v or {}).get("task") or {},
                         "failed_gates": [{"gate": g["gate"], "value": g["value"]} for g in failed],
                         "p50_ms": row["latency_ms"]["p50"] if row else None,
                         "p99_ms": row["latency_ms"].get("p99") if row else None,
                         "point": {k: row.get(k) for k in ("batch", "seq", "threads")} if row else None,
                         "mj": (energy.get("total") or {}).get("mj_per_inference"),
                         "dynamic_mj": (energy.get("total") or {}).get("dynamic_mj_per_inference"),
                         "compute_mj": (energy.get("compute") or {}).get("mj_per_inference")}
    if status != "ok":
        c["reason"] = artifact.get("error") or artifact.get("reason")
    if energy.get("error"):
        c["energy_error"] = energy["error"]
    return c


def device_row(results: dict[str, Any], source: str | None) -> dict[str, Any]:
    d = results.get("device") or {}
    jet = d.get("jetson") or {}
    t = results.get("transport") or {}
    code = int(results.get("exit_code", 4))
    status = ("incomplete" if t.get("failed_step") else "passed" if code == 0 else "gate failed" if code == 1
              else "error")
    return {"name": d.get("name"), "host": d.get("host") or t.get("host"), "labels": d.get("labels") or [],
            "kind": d.get("kind"), "slug": d.get("slug"), "isa": d.get("isa"),
            "cpu": (d.get("cpu") or {}).get("model"), "gpu": (d.get("gpu") or {}).get("name"),
            "jetson": {k: jet.get(k) for k in ("model", "l4t", "jetpack", "nvpmodel", "jetson_clocks", "clocks")
                       } if jet else None,
            "exit_code": code, "status": status, "failed_step": t.get("failed_step"), "error": t.get("error"),
            "last_progress": t.get("last_progress"), "cleanup": t.get("cleanup"), "source": source,
            "errors": [f"{s['step']}: {s.get('error')}" for s in results.get("steps", []) if s.get("status") == "error"]}


def merge_results(results: list[dict[str, Any]], sources: list[str] | None = None) -> dict[str, Any]:
    """The cross-device report of several results (device-check files, as `results.load_results` reads them)."""
    sources = sources or [None] * len(results)  # type: ignore[list-item]
    devices = [device_row(r, s) for r, s in zip(results, sources)]
    names = [d["name"] for d in devices]
    for i, n in enumerate(names):  # two files from one device name: keep both, told apart
        if names.count(n) > 1:
            devices[i]["name"] = f"{n} ({i + 1})"
    artifacts: list[str] = []
    cells: dict[str, dict[str, Any]] = {}
    failed: list[dict[str, Any]] = []
    for dev, r in zip(devices, results):
        for a in r.get("artifacts", []):
            if a["name"] not in artifacts:
                artifacts.append(a["name"])
            cells.setdefault(a["name"], {})[dev["name"]] = cell(a, r.get("gates", []))
        failed += [{"device": dev["name"], "artifact": g["artifact"], "gate": g["gate"], "value": g["value"]}
                   for g in r.get("gates", []) if not g["passed"]]
    spread = {}
    for name in artifacts:
        vals = [c["rel_l2"] for c in cells[name].values() if c["rel_l2"] is not None]
        spread[name] = (max(vals) - min(vals)) if len(vals) > 1 else None
    bundles = {(r.get("bundle") or {}).get("sha256") for r in results if (r.get("bundle") or {}).get("sha256")}
    first = next((r.get("bundle") for r in results if r.get("bundle")), {}) or {}
    return {"schema": REPORT_SCHEMA, "bundle": first, "mixed_bundles": len(bundles) > 1, "devices": devices,
            "artifacts": artifacts, "cells": cells, "drift_spread": spread, "failed_gates": failed,
            "energy": any(c.get("mj") is not None for row in cells.values() for c in row.values()),
            "exit_code": max([d["exit_code"] for d in devices] or [0]),
            "passed": all(d["exit_code"] == 0 for d in devices)}
