"""Which CPU engine wins at which shape: torch eager, onnxruntime FP32 / INT8 (portable 7-bit and 8-bit), OpenVINO
FP32 / BF16 / INT8, and at 2 threads their batch-parallel twins ("-bp": one single-threaded copy per thread, the
batch split between them; edgelstm.runners.batch_parallel), on the zoo models, at batch 1 × 60 and 32 × 256
(``--grid targets``) or over batch 1–64 × threads 1, 2 (``--grid throughput``), with each artifact's drift against
torch.

Timing is interleaved so that a shared, loaded machine still gives usable *ratios*: at each point every runner is
opened first, then R rounds each time a block of iterations of every artifact in turn (the order rotates per
round); an artifact's time is the lowest of its block medians (disturbance only adds time; the median is kept
beside it), and each ratio (vs torch eager, vs ORT FP32, vs OpenVINO FP32) is the median of the per-round ratios,
i.e. of blocks timed seconds apart in the same process.
Absolute microseconds on a loaded machine are not the CPU's speed; the ratios are the result.

    python benchmarks/cpu_engines.py --grid targets                   # the issue-22 targets, all zoo models
    python benchmarks/cpu_engines.py --grid throughput --models lstm_regressor
    python benchmarks/cpu_engines.py --quick                          # a smoke run (small rounds, 2 models)

Results: benchmarks/results/cpu_engines-<grid>-<machine>.{json,md} (never over an existing file without --replace).
The process's AMX facts (edgelstm.machine.amx) are recorded: on an x86-amx CPU run it under
``edgelstm-noamx --`` as well to see INT8 without AMX (benchmarks/amx_int8.py does that A/B on its own).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, result_stem, trained_zoo_model  # noqa: E402

MODELS = ("lstm_regressor", "stacked_lstm", "gru", "bilstm_attention")
GRIDS = {"targets": [(1, 60, 1), (32, 256, 1), (32, 256, 2)],
         "throughput": [(b, 60, t) for t in (1, 2) for b in (1, 2, 4, 8, 16, 32, 64)]}
DRIFT_BUDGET = 0.01   # rel_l2 against torch: "within 1% drift"
PARALLEL_TWINS = ("ort-fp32", "ort-int8-portable", "ov-fp32", "ov-bf16")  # also timed batch-parallel at threads >= 2


@dataclass
class Engine:
    name: str                 # torch-eager, ort-fp32, ort-int8-portable, ort-int8-8bit, ov-fp32, ov-bf16, ov-int8
    path: Path | None = None  # None: the torch module
    parallel: bool = False    # batch-parallel (name ends in "-bp"): timed at points with threads >= 2 only
    drift: float | None = None
    note: str = ""
    samples: dict[tuple, list[float]] = field(default_factory=dict)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_engines(name: str, trained: Any, work: Path) -> tuple[list[Engine], list[dict[str, str]]]:
    """The artifacts of one model, each made by the project's stages; what cannot be made is skipped with why."""
    from edgelstm import stages
    from edgelstm.artifacts.openvino import openvino_facts
    from edgelstm.options import PrecisionSpec

    src = trained.onnx_path
    engines = [Engine("torch-eager"), Engine("ort-fp32", src)]
    skipped: list[dict[str, str]] = []

    def attempt(kind: str, make: Callable[[], Path]) -> None:
        try:
            engines.append(Engine(kind, make()))
        except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
            skipped.append({"what": f"{name}:{kind}", "why": str(exc).splitlines()[0][:200]})

    def int8(target: str) -> Path:
        out = work / f"{name}.int8-{target}.onnx"
        opts = stages.default_options(PrecisionSpec.parse("int8-dynamic"), target=target)
        r = stages.quantize(src, out, "int8-dynamic", opts)
        if not r.counts().get("int8"):
            raise RuntimeError("no node became int8 (onnxruntime has no int8 kernel for it)")
        return out

    attempt("ort-int8-portable", lambda: int8("portable"))
    attempt("ort-int8-8bit", lambda: int8("native"))
    facts = openvino_facts()
    for prec in ("fp32", "bf16", "int8"):
        if prec == "bf16" and not facts["bf16"]:
            skipped.append({"what": f"{name}:ov-bf16", "why": "no BF16 on this CPU"})
            continue
        attempt(f"ov-{prec}", lambda prec=prec: stages.build_openvino(
            src, work / f"{name}.{prec}.xml", stages.OpenVinoOptions(precision=prec),
            calib=trained.calib if prec == "int8" else None).path)
    # batch-parallel twins (edgelstm.runners.batch_parallel): one single-threaded copy per thread, the batch split
    engines += [Engine(f"{e.name}-bp", e.path, parallel=True) for e in list(engines)
                if e.name in PARALLEL_TWINS]
    return engines, skipped


def int8_reaches_the_core(engines: list[Engine]) -> bool | None:
    """Whether the portable INT8 file quantizes the recurrent layer itself (DynamicQuantizeLSTM); onnxruntime has
    no int8 GRU kernel, so a GRU model's INT8 file only quantizes the dense layers around it."""
    import onnx

    e = next((e for e in engines if e.name == "ort-int8-portable"), None)
    if e is None:
        return None
    return any(n.op_type == "DynamicQuantizeLSTM" for n in onnx.load(str(e.path)).graph.node)


def measure_drift(engine: Engine, trained: Any) -> None:
    from edgelstm.runners import open_runner

    if engine.path is None:
        engine.drift = 0.0
        return
    # a batch-parallel twin's drift is its own: 2 shards (a dynamic INT8 file picks a scale per shard)
    runner = open_runner(engine.path, threads=2 if engine.parallel else 1, batch_parallel=engine.parallel)
    try:
        y = runner.run({"x": trained.x})[runner.io.outputs[0].name]
    finally:
        runner.close()
    ref = np.asarray(trained.y_torch, np.float64)
    engine.drift = float(np.linalg.norm(y - ref) / max(np.linalg.norm(ref), 1e-12))


def _call(engine: Engine, trained: Any, feeds: dict[str, np.ndarray], threads: int) -> tuple[Callable, Any]:
    """A zero-argument call of one inference on staged inputs (the bench's fast paths), and the runner."""
    from edgelstm.latency.adapters import fast_path
    from edgelstm.runners import open_runner

    runner = open_runner(trained.model if engine.path is None else engine.path, threads=threads,
                         **({"batch_parallel": True} if engine.parallel else {}))
    return fast_path(runner, feeds).call, runner


def time_point(engines: list[Engine], trained: Any, point: tuple[int, int, int], rounds: int,
               block_s: float) -> None:
    """Interleaved rounds at one (batch, seq, threads) point; samples[point] = one median per round."""
    import torch

    batch, seq, threads = point
    x = np.random.default_rng(batch * 1000 + seq).standard_normal((batch, seq, trained.x.shape[2])).astype(np.float32)
    torch.set_num_threads(threads)
    calls = []
    for e in engines:
        if e.parallel and threads < 2:
            continue
        call, runner = _call(e, trained, {"x": x}, threads)
        for _ in range(3):
            call()
        t0 = time.perf_counter()
        call()
        one = max(time.perf_counter() - t0, 1e-6)
        calls.append((e, call, runner, max(3, min(200, int(block_s / one)))))
    for r in range(rounds):
        order = calls[r % len(calls):] + calls[:r % len(calls)]
        for e, call, _, n in order:
            times = []
            for _ in range(n):
                t0 = time.perf_counter_ns()
                call()
                times.append((time.perf_counter_ns() - t0) / 1e6)
            e.samples.setdefault(point, []).append(statistics.median(times))
    for _, _, runner, _ in calls:
        runner.close()


def summarize_point(engines: list[Engine], point: tuple) -> list[dict[str, Any]]:
    """Per engine: the lowest and the median of its block medians (on a loaded machine disturbance only adds time,
    so the lowest is the closest to the undisturbed speed: engines are ranked by it), and per-round ratios (median)
    against torch eager, ORT FP32 and OpenVINO FP32."""
    by = {e.name: e for e in engines if point in e.samples}
    rows = []
    for e in by.values():
        s = e.samples[point]
        row: dict[str, Any] = {"engine": e.name, "ms": min(s), "median_ms": statistics.median(s), "rounds": len(s),
                               "drift": e.drift}
        for ref in ("torch-eager", "ort-fp32", "ov-fp32"):
            if ref in by and ref != e.name:
                row[f"x_{ref}"] = statistics.median(a / b for a, b in zip(by[ref].samples[point], s))
        rows.append(row)
    rows.sort(key=lambda r: r["ms"])
    ok = [r for r in rows if r["drift"] is not None and r["drift"] <= DRIFT_BUDGET]
    if ok:
        ok[0]["best_within_budget"] = True
    return rows


def machine_facts() -> dict[str, Any]:
    from edgelstm.latency.amx_guard import process_facts
    from edgelstm.machine.device import describe_device

    dev = describe_device(gpu=False)
    dev["process"] = process_facts()
    dev["loadavg_start"] = list(os.getloadavg())
    return dev


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/cpu_engines.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", choices=sorted(GRIDS), default="targets")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds per point (default 7)")
    ap.add_argument("--block", type=float, default=0.05, help="seconds per timed block (default 0.05)")
    ap.add_argument("--train-steps", type=int, default=150)
    ap.add_argument("--quick", action="store_true", help="3 rounds, 0.02 s blocks, 30 training steps, 2 models")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--replace", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.block, args.train_steps = 3, 0.02, 30
        args.models = "lstm_regressor,gru" if args.models == ",".join(MODELS) else args.models
    from cpu_engines_report import write_results

    device = machine_facts()
    stem = result_stem(args.out, f"cpu_engines-{args.grid}{'-quick' if args.quick else ''}-{device['machine']}",
                       (".json", ".md"), args.replace)
    log(f"cpu engines, grid {args.grid}, on {device['machine']} (load {device['loadavg_start'][0]:.1f}); -> {stem}.*")
    results: dict[str, Any] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgelstm-cpu-engines-") as tmp:
        for name in [m for m in args.models.split(",") if m]:
            work = Path(tmp) / name
            work.mkdir()
            trained = trained_zoo_model(name, args.train_steps, 128, work)
            engines, skipped = make_engines(name, trained, work)
            for e in engines:
                measure_drift(e, trained)
            log(f"  {name}: {', '.join(f'{e.name} ({e.drift:.2g})' for e in engines)}")
            points = {}
            for point in GRIDS[args.grid]:
                time_point(engines, trained, point, args.rounds, args.block)
                points["x".join(map(str, point[:2])) + f"-t{point[2]}"] = summarize_point(engines, point)
                best = points["x".join(map(str, point[:2])) + f"-t{point[2]}"][0]
                log(f"    b{point[0]}×{point[1]} t{point[2]}: fastest {best['engine']} {best['ms'] * 1e3:.0f} µs")
            results[name] = {"points": points, "skipped": skipped, "int8_recurrent": int8_reaches_the_core(engines),
                             "drift": {e.name: e.drift for e in engines}}
    device["loadavg_end"] = list(os.getloadavg())
    write_results(stem, args, device, results, time.perf_counter() - started)
    log(f"wrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
