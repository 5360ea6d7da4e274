"""The same-run latency comparison (`edgelstm bench NEW --against OLD`), measured for real under load: does it
catch a latency regression, and does it leave an unchanged model alone on a busy machine?

    python benchmarks/same_run_compare.py                 # -> benchmarks/results/same_run_compare-<machine>.{json,md}
    python benchmarks/same_run_compare.py --quick         # a smoke run (fewer runs), written as ...-quick.*
    python benchmarks/same_run_compare.py --no-load       # without the CPU hogs (the machine may still be shared)

OLD is the zoo model lstm_regressor (hidden 64) exported with edgelstm's verified exporter. The PR's models:
- `same.onnx`: OLD's file copied (another path, the same bytes): must never be flagged;
- `doubled.onnx`: OLD plus a duplicated LSTM whose result is multiplied by 0 and added to the output
  (tests/slowdown_models.py): the recurrence runs twice, outputs are bit-identical (checked here);
- two smaller regressions for the sensitivity sweep: a chain of k Tanh nodes on the output, multiplied by 0
  and added (about 0.5 us each), k chosen so that the measured ratio is near 1.05x and 1.2x at batch 1 x seq 60
  (measured here by a 32-pair interleaved run, not assumed).

Load (unless --no-load), for the whole measurement: one busy loop pinned to the last CPU ("the other core")
and one bursty busy loop (busy, then idle, each 50 ms to 3 s, log-uniform at random) free to run anywhere, both
at normal priority, on top of whatever else the machine runs. Every comparison is `edgelstm.latency.compare.compare_latency` with its defaults (max slowdown 1.10,
95% for the whole run, 16 pairs first, up to 128, 60 s per point) at batch 1 and 8 x seq 60 x 1 thread.

Measured: false alarms over --runs comparisons of same.onnx against OLD (target 0; "inconclusive" is counted
apart), detection over --detect-runs comparisons of doubled.onnx, and the sweep. Beside it, what a
before/after measurement says on the same machine at the same time (bench OLD, then bench NEW, p50 ratio
against 1.10), to show why the comparison interleaves.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import multiprocessing as mp
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from benchmarks.common import RESULTS, result_stem  # noqa: E402

SWEEP_TARGETS = (1.05, 1.2)
SWEEP_TOLERANCES = (1.10, 1.03)


# ------------------------------------------------------------------------------------------------ load


def _steady_hog(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    while True:
        pass


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return lo * (hi / lo) ** rng.random()


def _bursty_hog(seed: int) -> None:
    """Busy, then idle, each for 50 ms to 3 s (log-uniform): spikes inside one block as well as bursts that
    cover a whole before/after measurement."""
    rng = random.Random(seed)
    while True:
        time.sleep(_log_uniform(rng, 0.05, 3.0))
        end = time.perf_counter() + _log_uniform(rng, 0.05, 3.0)
        while time.perf_counter() < end:
            pass


def start_load() -> list[mp.Process]:
    cpus = sorted(os.sched_getaffinity(0))
    hogs = [mp.Process(target=_steady_hog, args=(cpus[-1] if len(cpus) > 1 else None,), daemon=True),
            mp.Process(target=_bursty_hog, args=(1234,), daemon=True)]
    for h in hogs:
        h.start()
    return hogs


def stop_load(hogs: list[mp.Process]) -> None:
    for h in hogs:
        h.terminate()
    for h in hogs:
        h.join(timeout=5)


# ------------------------------------------------------------------------------------------------ models


def make_models(work: Path) -> dict[str, Path]:
    import onnxruntime as ort

    from edgelstm import stages
    from edgelstm.models import zoo
    from slowdown_models import slow_down_onnx

    old = work / "old" / "model.onnx"
    old.parent.mkdir()
    stages.export(zoo.build("lstm_regressor", seed=0), old, stages.ExportOptions(seq_len=16))
    (work / "pr").mkdir()
    same = work / "pr" / "same.onnx"
    shutil.copy2(old, same)
    doubled = slow_down_onnx(old, work / "pr" / "doubled.onnx", 1.0)
    x = np.random.default_rng(0).standard_normal((8, 60, 1)).astype(np.float32)
    y_old = ort.InferenceSession(str(old)).run(None, {"x": x})[0]
    y_new = ort.InferenceSession(str(doubled)).run(None, {"x": x})[0]
    if not np.array_equal(y_old, y_new):
        raise SystemExit("the slowed-down model changed the outputs")
    return {"old": old, "same": same, "doubled": doubled}


def calibrate_sweep(old: Path, work: Path, grid: Any, log) -> list[dict[str, Any]]:
    """The measured ratio of each no-op Tanh chain length (the sweep picks the lengths nearest its targets)."""
    from edgelstm.latency.compare import CompareOptions, compare_latency
    from slowdown_models import slow_down_onnx

    tried: list[dict[str, Any]] = []
    for chain in (2, 4, 6, 8, 12, 16, 24, 32, 48, 64):
        path = slow_down_onnx(old, work / "pr" / f"chain-{chain}.onnx", 0.0, chain=chain)
        r = compare_latency(path, old, CompareOptions(min_pairs=32, max_pairs=32), grid=grid)
        tried.append({"chain_nodes": chain, "path": path, "measured_ratio": r.points[0].ratio,
                      "interval": [round(r.points[0].interval.low, 4), round(r.points[0].interval.high, 4)]})
        log(f"  calibration: a chain of {chain} no-op Tanh nodes -> {r.points[0].ratio:.3f}x")
    return tried


# ------------------------------------------------------------------------------------------------ runs


def one_comparison(new: Path, old: Path, grid: Any, max_slowdown: float = 1.10) -> dict[str, Any]:
    from edgelstm.latency.compare import CompareOptions, compare_latency

    t0 = time.perf_counter()
    r = compare_latency(new, old, CompareOptions(max_slowdown=max_slowdown), grid=grid)
    return {"verdict": str(r.verdict), "seconds": round(time.perf_counter() - t0, 2),
            "loadavg_1min": round(os.getloadavg()[0], 2),
            "points": [{"batch": p.batch, "seq": p.seq, "threads": p.threads, "verdict": str(p.verdict),
                        "ratio": round(p.ratio, 4), "low": round(p.interval.low, 4),
                        "high": round(p.interval.high, 4) if np.isfinite(p.interval.high) else None,
                        "pairs": len(p.new_block_ms), "stopped": p.stopped, "seconds": round(p.seconds, 2)}
                       for p in r.points]}


def before_after(new: Path, old: Path, grid: Any) -> float:
    """What a user gets from two bench runs one after the other: p50(NEW) / p50(OLD), 1 s of timing each."""
    from edgelstm.latency import BenchOptions, TimingPolicy, bench_artifacts

    options = BenchOptions(policy=TimingPolicy(warmup=10, min_time=1.0))
    p_old = bench_artifacts([old], grid, options).results[0].p50
    p_new = bench_artifacts([new], grid, options).results[0].p50
    return p_new / p_old


def count(runs: list[dict[str, Any]]) -> dict[str, int]:
    out = {"not slower": 0, "slower": 0, "inconclusive": 0}
    for r in runs:
        out[r["verdict"]] += 1
    return out


# ------------------------------------------------------------------------------------------------ report


def markdown(res: dict[str, Any]) -> str:
    fa, det = res["false_alarm"], res["detection"]
    cpu = res["device"].get("cpu") or {}
    lines = [f"# Same-run comparison (`edgelstm bench NEW --against OLD`), measured for real", "",
             f"Machine: {cpu.get('model')} ({cpu.get('logical_cores')} cores, ISA class {cpu.get('isa')}), "
             f"{res['when']}. Load: {res['load']}. 1-minute load average during the runs: "
             f"{res['loadavg']['min']:.1f}–{res['loadavg']['max']:.1f} on {cpu.get('logical_cores')} cores.", "",
             f"Model: {res['model']}; grid {res['grid']}; every comparison with the defaults "
             f"(max slowdown 1.10, 95% for the whole run, 16–128 pairs, ≤ 60 s per point).", "",
             "| what | runs | not slower | inconclusive | slower | ratio (median of runs) |",
             "|---|---|---|---|---|---|"]

    def row(label: str, block: dict[str, Any]) -> None:
        c = block["counts"]
        ratios = [p["ratio"] for r in block["runs"] for p in r["points"]]
        lines.append(f"| {label} | {len(block['runs'])} | {c['not slower']} | {c['inconclusive']} | {c['slower']} | "
                     f"{np.median(ratios):.3f}× |")

    row("unchanged model (same bytes, another file): false alarms = slower", fa)
    row("doubled model (duplicated LSTM, same outputs): detections = slower", det)
    for s in res["sweep"]:
        row(f"{s['measured_ratio']:.3f}× model (target {s['target']}×), max slowdown {s['max_slowdown']}", s)
    ba = res["before_after"]
    lines += ["", f"**False alarms: {fa['counts']['slower']} of {len(fa['runs'])}** unchanged-model runs (each "
              f"judged at {len(res['grid_points'])} grid points); **detection: {det['counts']['slower']} of "
              f"{len(det['runs'])}** doubled-model runs. Median time per comparison: unchanged "
              f"{np.median([r['seconds'] for r in fa['runs']]):.1f} s, doubled "
              f"{np.median([r['seconds'] for r in det['runs']]):.1f} s. With the default `--on-inconclusive fail` an "
              f"inconclusive run fails the job too: {fa['counts']['inconclusive']} of {len(fa['runs'])} unchanged runs "
              "were inconclusive.", "",
              f"Before/after on the same machine at the same time (bench OLD for 1 s, then NEW for 1 s, p50 ratio, "
              f"batch 1 × seq 60): unchanged model ratios {min(ba):.3f}–{max(ba):.3f}, "
              f"{sum(r > 1.10 for r in ba)} of {len(ba)} above 1.10 and {sum(r < 1 / 1.10 for r in ba)} below "
              "1/1.10 (a gate on a before/after ratio would have failed or hidden a regression there). The "
              "interleaved comparison cancels load that lasts longer than a pair of blocks. Widest unchanged-model "
              f"interval: [{res['widest'][0]:.3f}, {res['widest'][1]:.3f}] (the margin to 1.10).", "",
              "Sensitivity models: the calibration runs (32 pairs, batch 1 × seq 60) measured these ratios for a chain "
              "of k no-op Tanh nodes: "
              + ", ".join(f"k={c['chain_nodes']} → {c['measured_ratio']:.3f}×" for c in res["calibration_all"])
              + ".", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--replace", action="store_true", help="overwrite an earlier result of the same name")
    ap.add_argument("--runs", type=int, default=20, help="unchanged-model comparisons (false alarms)")
    ap.add_argument("--detect-runs", type=int, default=10, help="doubled-model comparisons (detection)")
    ap.add_argument("--sweep-runs", type=int, default=5, help="comparisons per sweep model and tolerance")
    ap.add_argument("--no-load", action="store_true", help="no CPU hogs")
    ap.add_argument("--quick", action="store_true", help="3 / 2 / 1 runs, written as <name>-quick")
    args = ap.parse_args(argv)
    if args.quick:
        args.runs, args.detect_runs, args.sweep_runs = 3, 2, 1

    from edgelstm.latency import BenchGrid
    from edgelstm.machine.device import describe_device, machine_slug

    device = describe_device()
    stem = result_stem(args.out, f"same_run_compare-{machine_slug(device)}" + ("-quick" if args.quick else ""),
                       (".json", ".md"), args.replace)
    print(f"writing {stem}.json / .md", flush=True)
    grid = BenchGrid((1, 8), (60,), (1,))
    one_point = BenchGrid((1,), (60,), (1,))
    loads: list[float] = []

    def log(msg: str) -> None:
        loads.append(os.getloadavg()[0])
        print(msg, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = make_models(work)
        hogs = [] if args.no_load else start_load()
        try:
            time.sleep(1.0)
            calibration_all = calibrate_sweep(models["old"], work, one_point, log)
            calibration = [{"target": t, **min(calibration_all, key=lambda c: abs(c["measured_ratio"] - t))}
                           for t in SWEEP_TARGETS]
            false_alarm, detection, ba = [], [], []
            for i in range(args.runs):
                false_alarm.append(one_comparison(models["same"], models["old"], grid))
                ba.append(round(before_after(models["same"], models["old"], one_point), 4))
                log(f"unchanged {i + 1}/{args.runs}: {false_alarm[-1]['verdict']} "
                    f"{[p['ratio'] for p in false_alarm[-1]['points']]}; before/after {ba[-1]:.3f}")
            for i in range(args.detect_runs):
                detection.append(one_comparison(models["doubled"], models["old"], grid))
                log(f"doubled {i + 1}/{args.detect_runs}: {detection[-1]['verdict']} "
                    f"{[p['ratio'] for p in detection[-1]['points']]}")
            sweep = []
            for cal in calibration:
                for tol in SWEEP_TOLERANCES:
                    runs = [one_comparison(cal["path"], models["old"], one_point, tol) for _ in range(args.sweep_runs)]
                    sweep.append({"target": cal["target"], "measured_ratio": round(cal["measured_ratio"], 4),
                                  "chain_nodes": cal["chain_nodes"], "max_slowdown": tol,
                                  "runs": runs, "counts": count(runs)})
                    log(f"sweep {cal['measured_ratio']:.3f}x at {tol}: {count(runs)}")
        finally:
            stop_load(hogs)
    res = {
        "benchmark": "same_run_compare", "when": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": device, "model": "lstm_regressor (hidden 64), ONNX fp32, onnxruntime",
        "grid": "batch 1, 8 x seq 60 x 1 thread", "grid_points": grid.points(),
        "load": "none added (--no-load); the machine is shared" if args.no_load else
                "LOADED: one busy loop pinned to the other core + one bursty busy loop (on and off 50 ms to 3 s "
                "each, log-uniform) anywhere, on a machine shared with other jobs",
        "loadavg": {"min": min(loads), "max": max(loads)},
        "calibration": [{k: v for k, v in c.items() if k != "path"} for c in calibration],
        "calibration_all": [{k: v for k, v in c.items() if k != "path"} for c in calibration_all],
        "false_alarm": {"runs": false_alarm, "counts": count(false_alarm)},
        "detection": {"runs": detection, "counts": count(detection)},
        "sweep": sweep, "before_after": ba,
    }
    highs = [(p["low"], p["high"] or float("inf")) for r in false_alarm for p in r["points"]]
    res["widest"] = max(highs, key=lambda lh: lh[1], default=(float("nan"), float("nan")))
    for c in (*res["calibration"], *res["calibration_all"]):
        c["measured_ratio"] = round(c["measured_ratio"], 4)
    args.out.mkdir(parents=True, exist_ok=True)
    Path(f"{stem}.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    Path(f"{stem}.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
