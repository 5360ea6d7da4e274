"""One artifact on the device: build it (engines), validate it against the recorded reference with its gates, bench
it with the plan, and measure its energy per inference (Jetson). Each returns a JSON-ready dict; an EdgeLSTMError
becomes the artifact's error (status "error" with its exit code), so that one artifact cannot hide the others."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from edgelstm.errors import EdgeLSTMError

Say = Callable[[str], None]
OUTPUT_METRICS = ("rel_l2", "max_abs", "mean_abs", "rmse", "cosine")


def guarded(entry: dict[str, Any], key: str, fn: Callable[[], Any]) -> Any:
    """entry[key] = fn(); an EdgeLSTMError marks the artifact as failed with its message and exit code."""
    try:
        entry[key] = fn()
        return entry[key]
    except EdgeLSTMError as exc:
        entry.update(status="error", error=f"{key}: {exc}", exit_code=exc.exit_code)
        return None


def build_engine_on_device(step: dict[str, Any], root: Path, engine_dir: Path, calib: Path | None,
                           say: Say) -> tuple[Path | None, dict[str, Any]]:
    """Build one engine of the bundle's plan here, with a timing cache shared by all builds."""
    from edgelstm import stages

    info: dict[str, Any] = {"onnx": step["onnx"], "precision": step["precision"], "batch": step["batch"],
                            "seq": step["seq"]}
    if step.get("needs_calib_data") and calib is None:
        return None, {**info, "status": "skipped", "reason": "an INT8 build from a float model needs calibration "
                                                              "data here: pass --calib DATA.npz"}
    options = stages.BuildOptions(precision=step["precision"], batch=tuple(step["batch"]), seq=tuple(step["seq"]),
                                  timing_cache=engine_dir / "timing.cache",
                                  calib_cache=root / step["calib_cache"] if step.get("calib_cache") else None)
    out = engine_dir / step["engine"]
    t0 = time.perf_counter()
    result = stages.build_engine(root / step["onnx"], out, options, on_step=lambda m: say(f"  build: {m}"),
                                 **({"calib": calib} if calib is not None and step["precision"] == "int8" else {}))
    info.update(seconds=round(time.perf_counter() - t0, 3), tensorrt=result.tensorrt_version, route=result.route,
                gpu=result.gpu, timing_cache=result.timing_cache)
    return out, info


def validate_on_device(reference: Any, path: Path, gates: list[str], data: Path, backend: str | None, *,
                       batch_size: int = 32) -> dict[str, Any]:
    """Drift of the artifact against the recorded reference outputs on the bundled data, and the gate verdicts."""
    from edgelstm.validation.gates import parse_gates
    from edgelstm.validation.validate import DataRequest, ValidateOptions, validate_artifacts

    result = validate_artifacts(reference, path, DataRequest(path=data),
                                ValidateOptions(gates=tuple(parse_gates(gates)), candidate_backend=backend,
                                                batch_size=batch_size))
    d = result.to_dict()
    outputs = {name: {k: m.get(k) for k in OUTPUT_METRICS if k in m} for name, m in d["outputs"].items()}
    out = {"passed": d["passed"], "samples": d["samples"], "outputs": outputs, "task": d.get("task") or {},
           "gates": d["gates"], "failed_gates": d.get("failed_gates", []), "seconds": d.get("seconds")}
    if d.get("streaming"):
        out["streaming"] = {k: v for k, v in d["streaming"].items() if k != "per_chunk"}
    if d.get("warnings"):
        out["warnings"] = d["warnings"]
    return out


def bench_on_device(path: Path, plan: dict[str, Any], backend: str | None, *,
                    iters: int | None = None) -> list[dict[str, Any]]:
    """Latency of the artifact over the bundle's bench plan (batch x seq x threads), as bench rows; with the plan's
    ``batch_parallel`` also the batch-parallel rows of an ONNX / OpenVINO artifact (after the plain ones)."""
    from edgelstm.latency import BenchGrid, BenchOptions, BenchTarget, TimingPolicy, bench_artifacts

    grid = BenchGrid(batches=tuple(plan["batch"]), seqs=tuple(plan["seq"]), threads=tuple(plan["threads"]))
    policy = TimingPolicy(warmup=int(plan["warmup"]), iters=int(iters or plan["iters"]))
    options = BenchOptions(policy=policy, measure_memory=False, batch_parallel=bool(plan.get("batch_parallel")))
    report = bench_artifacts([BenchTarget(path, backend=backend)], grid, options).to_dict()
    keys = ("mode", "batch", "seq", "threads", "iters", "warmup", "latency_ms", "throughput_seq_per_s", "provider",
            "clock", "timer", "backend", "precision", "variant")
    return [{k: row.get(k) for k in keys} for row in report["results"]]


def energy_on_device(path: Path, plan: dict[str, Any], backend: str | None, sampler: Any,
                     seconds: float) -> dict[str, Any]:
    """Energy per inference at the plan's first point (batch, seq, threads), tegrastats sampling the rails."""
    import numpy as np

    from edgelstm.artifacts.feeds import random_feeds
    from edgelstm.fleet.energy import measure_energy
    from edgelstm.runners import open_runner

    batch, seq, threads = int(plan["batch"][0]), int(plan["seq"][0]), int(plan["threads"][0])
    runner = open_runner(path, backend=backend, threads=threads)
    try:
        feeds = random_feeds(runner.io, batch, seq, np.random.default_rng(0))
        result = measure_energy(lambda: runner.run(feeds), sampler, seconds=seconds, warmup=int(plan["warmup"]))
    finally:
        runner.close()
    return {"batch": batch, "seq": seq, "threads": threads, **result}


def summary_line(entry: dict[str, Any]) -> str:
    """`pass rel_l2 3.1e-03, p50 0.41 ms, 1.2 mJ` for the progress stream."""
    parts = []
    v = entry.get("validate")
    if v:
        rel = max((o.get("rel_l2") or 0.0 for o in v["outputs"].values()), default=0.0)
        parts.append(f"{'pass' if v['passed'] else 'FAIL ' + ', '.join(v['failed_gates'])} rel_l2 {rel:.2e}")
    rows = [r for r in entry.get("bench") or [] if r.get("mode") == "window"]
    if rows:
        parts.append(f"p50 {rows[0]['latency_ms']['p50']:.4g} ms")
    e = (entry.get("energy") or {}).get("total")
    if e:
        parts.append(f"{e['mj_per_inference']:.3g} mJ/inference")
    if entry.get("status") == "error":
        parts.append(f"error: {entry.get('error')}")
    return ", ".join(parts) or entry.get("status", "")
